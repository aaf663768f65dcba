//! Webhooks: the endpoints events are sent to, and one delivery per event and endpoint with
//! its attempts. The delivery job fans outbox events out into deliveries and marks them
//! delivered from the outbox's point of view in the same transaction.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::flag;
use crate::{Error, Reader, WriteTx, from_micros, to_micros};

/// A webhook endpoint as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// Its id.
    pub id: i64,
    /// What people call it.
    pub name: String,
    /// Where events are posted.
    pub url: String,
    /// The signing secret, sealed by the vault.
    pub secret: Vec<u8>,
    /// The event types sent; empty sends every one.
    pub events: Vec<String>,
    /// The CAs whose events are sent; empty sends every CA's.
    pub ca_filter: Vec<i64>,
    /// Headers added to each request.
    pub custom_headers: BTreeMap<String, String>,
    /// Whether events are sent to it.
    pub enabled: bool,
    /// The last outbox event raised before it was registered; it receives later ones only.
    pub after_event: i64,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// A webhook endpoint to write.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// What people call it.
    pub name: String,
    /// Where events are posted.
    pub url: String,
    /// The signing secret, sealed by the vault.
    pub secret: Vec<u8>,
    /// The event types sent; empty sends every one.
    pub events: Vec<String>,
    /// The CAs whose events are sent; empty sends every CA's.
    pub ca_filter: Vec<i64>,
    /// Headers added to each request.
    pub custom_headers: BTreeMap<String, String>,
    /// Whether events are sent to it.
    pub enabled: bool,
}

/// An outbox event not yet fanned out.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    /// Its id, in the order events were raised.
    pub id: i64,
    /// What happened, e.g. `certificate_issued`.
    pub event_type: String,
    /// The kind of thing it happened to.
    pub resource_type: String,
    /// Its id.
    pub resource_id: String,
    /// Details.
    pub payload: serde_json::Value,
    /// When it was raised.
    pub created_at: OffsetDateTime,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Its id.
    pub id: i64,
    /// The endpoint.
    pub endpoint_id: i64,
    /// The outbox event.
    pub event_id: i64,
    /// Its type.
    pub event_type: String,
    /// The request body sent.
    pub payload: String,
    /// `pending`, `failed` (to be tried again), `delivered` or `dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due.
    pub next_attempt_at: OffsetDateTime,
    /// The HTTP status of the last answer.
    pub last_status_code: Option<i64>,
    /// How long the last attempt took.
    pub latency_ms: Option<i64>,
    /// The start of the last answer's body.
    pub response_excerpt: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When the receiver took it.
    pub delivered_at: Option<OffsetDateTime>,
}

/// How an attempt went.
#[derive(Debug, Clone)]
pub struct DeliveryAttempt {
    /// The status it leaves the delivery in.
    pub status: &'static str,
    /// When the next attempt is due.
    pub next_attempt_at: OffsetDateTime,
    /// The HTTP status answered, if any.
    pub status_code: Option<i64>,
    /// How long it took.
    pub latency_ms: i64,
    /// The start of the answer's body.
    pub response_excerpt: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<OffsetDateTime>,
}

const WEBHOOK_COLUMNS: &str = "id, name, url, secret, events, ca_filter, custom_headers, \
     enabled, after_event, created_at, updated_at";

const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_id, event_type, payload, status, \
     attempts, next_attempt_at, last_status_code, latency_ms, response_excerpt, last_error, \
     created_at, delivered_at";

fn json_column<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, Error> {
    let text: String = row.try_get(column)?;
    Ok(serde_json::from_str(&text)?)
}

fn webhook_row(row: &AnyRow) -> Result<WebhookRow, Error> {
    Ok(WebhookRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        secret: row.try_get("secret")?,
        events: json_column(row, "events")?,
        ca_filter: json_column(row, "ca_filter")?,
        custom_headers: json_column(row, "custom_headers")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        after_event: row.try_get("after_event")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

fn delivery_row(row: &AnyRow) -> Result<DeliveryRow, Error> {
    Ok(DeliveryRow {
        id: row.try_get("id")?,
        endpoint_id: row.try_get("endpoint_id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        payload: row.try_get("payload")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: from_micros(row.try_get("next_attempt_at")?),
        last_status_code: row.try_get("last_status_code")?,
        latency_ms: row.try_get("latency_ms")?,
        response_excerpt: row.try_get("response_excerpt")?,
        last_error: row.try_get("last_error")?,
        created_at: from_micros(row.try_get("created_at")?),
        delivered_at: row
            .try_get::<Option<i64>, _>("delivered_at")?
            .map(from_micros),
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    Ok(serde_json::to_string(value)?)
}

impl Reader {
    /// Every webhook endpoint, by id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`]; [`Error::Corrupt`] for damaged JSON.
    pub async fn webhooks(&self) -> Result<Vec<WebhookRow>, Error> {
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(webhook_row).collect()
    }

    /// Webhook endpoint `id`, if there is one.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`]; [`Error::Corrupt`] for damaged JSON.
    pub async fn webhook(&self, id: i64) -> Result<Option<WebhookRow>, Error> {
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(webhook_row).transpose()
    }

    /// Outbox events not yet fanned out, oldest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`]; [`Error::Corrupt`] for damaged JSON.
    pub async fn undelivered_events(&self, limit: i64) -> Result<Vec<OutboxEvent>, Error> {
        let rows = sqlx::query(
            "SELECT id, event_type, resource_type, resource_id, payload, created_at FROM outbox \
             WHERE delivered_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEvent {
                    id: r.try_get("id")?,
                    event_type: r.try_get("event_type")?,
                    resource_type: r.try_get("resource_type")?,
                    resource_id: r.try_get("resource_id")?,
                    payload: json_column(r, "payload")?,
                    created_at: from_micros(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// Endpoint `endpoint_id`'s open (pending or failed) deliveries, oldest event first, at
    /// most `limit`: the order the endpoint is sent them in. Read along the
    /// `webhook_deliveries_queue` index, which holds open deliveries only, so a page costs
    /// the same however many were delivered before.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn open_deliveries(
        &self,
        endpoint_id: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, Error> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
             WHERE endpoint_id = $1 AND status IN ('pending', 'failed') \
             ORDER BY event_id LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(endpoint_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery_row).collect()
    }

    /// Endpoint `endpoint_id`'s deliveries, newest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn webhook_deliveries(
        &self,
        endpoint_id: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, Error> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 \
             ORDER BY event_id DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(endpoint_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery_row).collect()
    }

    /// Delivery `id` of endpoint `endpoint_id`, if there is one.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn webhook_delivery(
        &self,
        endpoint_id: i64,
        id: i64,
    ) -> Result<Option<DeliveryRow>, Error> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 AND id = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(endpoint_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery_row).transpose()
    }
}

impl WriteTx {
    /// Records an attempt at delivery `id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn record_delivery_attempt(
        &mut self,
        id: i64,
        attempt: &DeliveryAttempt,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, \
             next_attempt_at = $2, last_status_code = $3, latency_ms = $4, \
             response_excerpt = $5, last_error = $6, delivered_at = $7 WHERE id = $8",
        )
        .bind(attempt.status)
        .bind(to_micros(attempt.next_attempt_at))
        .bind(attempt.status_code)
        .bind(attempt.latency_ms)
        .bind(attempt.response_excerpt.clone())
        .bind(attempt.error.clone())
        .bind(attempt.delivered_at.map(to_micros))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Adds a webhook endpoint; returns its id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_webhook(
        &mut self,
        webhook: &NewWebhook,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "INSERT INTO webhook_endpoints (name, url, secret, events, ca_filter, \
             custom_headers, enabled, after_event, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT COALESCE(MAX(id), 0) FROM outbox), \
             $8, $8) RETURNING id",
        )
        .bind(webhook.name.clone())
        .bind(webhook.url.clone())
        .bind(webhook.secret.clone())
        .bind(to_json(&webhook.events)?)
        .bind(to_json(&webhook.ca_filter)?)
        .bind(to_json(&webhook.custom_headers)?)
        .bind(flag(webhook.enabled))
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Replaces webhook endpoint `id`. Returns false when there is none.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn update_webhook(
        &mut self,
        id: i64,
        webhook: &NewWebhook,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET name = $1, url = $2, secret = $3, events = $4, \
             ca_filter = $5, custom_headers = $6, enabled = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(webhook.name.clone())
        .bind(webhook.url.clone())
        .bind(webhook.secret.clone())
        .bind(to_json(&webhook.events)?)
        .bind(to_json(&webhook.ca_filter)?)
        .bind(to_json(&webhook.custom_headers)?)
        .bind(flag(webhook.enabled))
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes webhook endpoint `id` with its deliveries. Returns false when there is none.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_webhook(&mut self, id: i64) -> Result<bool, Error> {
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Queues event `event` (whose request body is `payload`) for endpoint `endpoint_id`,
    /// due at `now`; an event already queued for the endpoint is left as it is.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_delivery(
        &mut self,
        endpoint_id: i64,
        event: &OutboxEvent,
        payload: &str,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload, \
             status, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', $5, $5) \
             ON CONFLICT (endpoint_id, event_id) DO NOTHING",
        )
        .bind(endpoint_id)
        .bind(event.id)
        .bind(event.event_type.clone())
        .bind(payload.to_owned())
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Marks outbox events up to `last_id` (inclusive) delivered: they have been fanned out.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn mark_events_delivered(
        &mut self,
        last_id: i64,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query("UPDATE outbox SET delivered_at = $1 WHERE delivered_at IS NULL AND id <= $2")
            .bind(to_micros(now))
            .bind(last_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Puts dead delivery `id` of endpoint `endpoint_id` back in the queue, due at `now`
    /// with its attempts counted afresh. Returns false unless it was dead.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn requeue_delivery(
        &mut self,
        endpoint_id: i64,
        id: i64,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, \
             next_attempt_at = $1 WHERE endpoint_id = $2 AND id = $3 AND status = 'dead'",
        )
        .bind(to_micros(now))
        .bind(endpoint_id)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
