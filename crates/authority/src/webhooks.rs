//! Webhooks: events from the outbox posted to the endpoints administrators register, signed
//! with each endpoint's secret.
//!
//! The `webhook_delivery` job fans each new outbox event out into one delivery per matching
//! endpoint, then sends what is due: at least once, each endpoint's events in order (an
//! endpoint's next event waits until the one before is delivered or dead), retried with
//! exponential backoff and jitter, [`MAX_ATTEMPTS`] attempts before a delivery is `dead`.
//!
//! Trust boundary: the URL is an administrator's, but the request goes from the server's
//! network; like every outbound connection it is held to the [`AddressPolicy`], checked on
//! the addresses a name resolves to (and on an address given in the URL), so a webhook
//! cannot reach loopback, private or link-local targets unless `[webhooks]
//! allow_private_targets` says so. Redirects are not followed, no proxy is used, and only
//! the first [`EXCERPT_BYTES`] of an answer are read.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use aws_lc_rs::hmac;
use serde_json::{Value, json};
use store::{DeliveryAttempt, DeliveryRow, NewWebhook, OutboxEvent, WebhookRow};
use time::{Duration, OffsetDateTime};

use crate::audit::Event;
use crate::outbound::{self, AddressPolicy, PolicyResolver};
use crate::{Authority, Error, Permission, Principal, Result};

/// The event types an endpoint may ask for, with what they announce.
pub const EVENTS: [(&str, &str); 14] = [
    ("certificate_issued", "A certificate was issued"),
    (
        "certificate_renewed",
        "A certificate was issued renewing another",
    ),
    (
        "certificate_revoked",
        "A certificate was revoked or put on hold",
    ),
    ("certificate_released", "A certificate on hold was released"),
    (
        "certificate_renewal_failed",
        "An automatic renewal failed; it is retried with backoff",
    ),
    ("certificate_expiring", "A certificate is about to expire"),
    ("certificate_expired", "A certificate expired"),
    ("ca_created", "A CA was created"),
    ("ca_expiring", "A CA's certificate is about to expire"),
    ("ca_expired", "A CA's certificate expired"),
    ("crl_published", "A CRL was published"),
    ("csr_submitted", "A CSR was added to the inventory"),
    ("acme_order_finalized", "An ACME order was finalized"),
    (
        "user_login_failed_lockout",
        "Failed logins locked a user's account",
    ),
];
/// The version of the payload schema, sent as `version`.
pub const PAYLOAD_VERSION: u32 = 1;
/// Attempts at a delivery before it is dead.
pub const MAX_ATTEMPTS: i64 = 5;
/// The longest a request may take, connection included.
pub const DELIVERY_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// Bytes of an answer kept with the delivery (and all that is read of it).
pub const EXCERPT_BYTES: usize = 512;
/// The first retry's delay; each next one doubles it.
const FIRST_BACKOFF: Duration = Duration::seconds(30);
/// Headers an endpoint may add.
const MAX_HEADERS: usize = 10;
/// Headers certmint sets, which custom headers may not replace.
const RESERVED_HEADERS: [&str; 8] = [
    "x-certmint-signature",
    "x-certmint-event",
    "idempotency-key",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
];
/// Events fanned out per transaction.
const BATCH: i64 = 500;
/// Deliveries read per page and recorded per transaction. A node that stops mid-page sends
/// at most this many again: at least once, never lost.
const SEND_BATCH: i64 = 100;
/// How long one run of the delivery job keeps fanning out and sending: a large backlog
/// drains over several runs instead of holding back the jobs after it on this node.
const DELIVERY_BUDGET: StdDuration = StdDuration::from_secs(20);

/// How long an event stays in the outbox once fanned out: each delivery keeps its own copy,
/// and the audit log the record of the change.
const EVENT_RETENTION: Duration = Duration::days(7);

/// Events removed per transaction, so that a backlog never holds the writer for long.
const PRUNE_BATCH: i64 = 5_000;
/// The vault context secrets are sealed under.
pub(crate) const SECRET_CONTEXT: &str = "webhook-secret";

/// An endpoint as people see it: everything but the secret.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Its id.
    pub id: i64,
    /// What people call it.
    pub name: String,
    /// Where events are posted.
    pub url: String,
    /// The event types sent; empty sends every one.
    pub events: Vec<String>,
    /// The CAs whose events are sent; empty sends every CA's.
    pub ca_filter: Vec<i64>,
    /// Headers added to each request.
    pub custom_headers: BTreeMap<String, String>,
    /// Whether events are sent to it.
    pub enabled: bool,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            url: row.url,
            events: row.events,
            ca_filter: row.ca_filter,
            custom_headers: row.custom_headers,
            enabled: row.enabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// An endpoint with its secret, shown once: at creation and when it is made anew.
#[derive(Debug, Clone)]
pub struct WebhookWithSecret {
    /// The endpoint.
    pub webhook: Webhook,
    /// Its signing secret.
    pub secret: String,
}

/// An endpoint to create, or a change to one; `None` leaves a field as it is (or, at
/// creation, takes the default: a generated secret, every event, every CA, no headers,
/// enabled).
#[derive(Debug, Clone, Default)]
pub struct WebhookInput {
    /// What people call it (required at creation).
    pub name: Option<String>,
    /// Where events are posted (required at creation).
    pub url: Option<String>,
    /// The signing secret.
    pub secret: Option<String>,
    /// The event types sent.
    pub events: Option<Vec<String>>,
    /// The CAs whose events are sent.
    pub ca_filter: Option<Vec<i64>>,
    /// Headers added to each request.
    pub custom_headers: Option<BTreeMap<String, String>>,
    /// Whether events are sent to it.
    pub enabled: Option<bool>,
}

/// How a test delivery went.
#[derive(Debug, Clone)]
pub struct TestDelivery {
    /// Whether the receiver answered 2xx.
    pub delivered: bool,
    /// The HTTP status answered.
    pub status_code: Option<u16>,
    /// How long it took.
    pub latency_ms: i64,
    /// The start of the answer's body.
    pub response_excerpt: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Authority {
    /// Where webhooks may connect: public addresses only unless `policy` says otherwise. Set
    /// once, at start; without it webhooks reach public addresses only.
    ///
    /// # Errors
    /// [`Error::Conflict`] when it was set already.
    pub fn configure_webhooks(&self, policy: AddressPolicy) -> Result<()> {
        self.webhook_policy
            .set(policy)
            .map_err(|_| Error::Conflict("webhooks are already configured".into()))
    }

    fn webhook_address_policy(&self) -> AddressPolicy {
        self.webhook_policy
            .get()
            .cloned()
            .unwrap_or_else(AddressPolicy::public_only)
    }

    /// The event types an endpoint may ask for, with what each announces.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`.
    pub fn webhook_event_types(
        &self,
        principal: &Principal,
    ) -> Result<&'static [(&'static str, &'static str)]> {
        principal.require(Permission::AdminSystem, "reading webhooks")?;
        Ok(&EVENTS)
    }

    /// Every endpoint, without secrets.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn webhooks(&self, principal: &Principal) -> Result<Vec<Webhook>> {
        principal.require(Permission::AdminSystem, "reading webhooks")?;
        Ok(self
            .store
            .webhooks()
            .await?
            .into_iter()
            .map(Webhook::from)
            .collect())
    }

    async fn webhook_row(&self, id: i64) -> Result<WebhookRow> {
        self.store
            .webhook(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("webhook {id} not found")))
    }

    /// Endpoint `id`, without its secret.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; store errors.
    pub async fn webhook(&self, principal: &Principal, id: i64) -> Result<Webhook> {
        principal.require(Permission::AdminSystem, "reading webhooks")?;
        Ok(self.webhook_row(id).await?.into())
    }

    /// Registers an endpoint; its secret is in the answer, and never again. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a missing or bad
    /// name or URL, a target the address policy refuses, unknown events, more than
    /// [`MAX_HEADERS`] headers or one certmint sets; store errors.
    pub async fn create_webhook(
        &self,
        principal: &Principal,
        input: WebhookInput,
    ) -> Result<WebhookWithSecret> {
        principal.require(Permission::AdminSystem, "creating a webhook")?;
        let secret = match input.secret.clone() {
            Some(secret) => secret,
            None => crate::token::new_token("whsec_")?,
        };
        let webhook = self.checked_webhook(
            NewWebhook {
                name: String::new(),
                url: String::new(),
                secret: Vec::new(),
                events: Vec::new(),
                ca_filter: Vec::new(),
                custom_headers: BTreeMap::new(),
                enabled: true,
            },
            input,
        )?;
        let webhook = NewWebhook {
            secret: self.vault.seal(secret.as_bytes(), SECRET_CONTEXT)?,
            ..webhook
        };
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let id = tx.insert_webhook(&webhook, now).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "webhook_created",
                "webhook",
                id,
                format!("'{}' to {}", webhook.name, webhook.url),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(WebhookWithSecret {
            webhook: self.webhook_row(id).await?.into(),
            secret,
        })
    }

    /// Changes endpoint `id`. Audited.
    ///
    /// # Errors
    /// As [`Authority::create_webhook`], and [`Error::NotFound`].
    pub async fn update_webhook(
        &self,
        principal: &Principal,
        id: i64,
        input: WebhookInput,
    ) -> Result<Webhook> {
        principal.require(Permission::AdminSystem, "changing a webhook")?;
        let current = self.webhook_row(id).await?;
        let secret = match &input.secret {
            Some(secret) => self.vault.seal(secret.as_bytes(), SECRET_CONTEXT)?,
            None => current.secret.clone(),
        };
        let base = NewWebhook {
            name: current.name,
            url: current.url,
            secret,
            events: current.events,
            ca_filter: current.ca_filter,
            custom_headers: current.custom_headers,
            enabled: current.enabled,
        };
        let webhook = self.checked_webhook(base, input)?;
        self.write_webhook(principal, id, &webhook, "webhook_updated")
            .await?;
        self.webhook(principal, id).await
    }

    /// Turns endpoint `id` on or off. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; store errors.
    pub async fn toggle_webhook(
        &self,
        principal: &Principal,
        id: i64,
        enabled: Option<bool>,
    ) -> Result<Webhook> {
        principal.require(Permission::AdminSystem, "changing a webhook")?;
        let current = self.webhook_row(id).await?;
        let enabled = enabled.unwrap_or(!current.enabled);
        self.update_webhook(
            principal,
            id,
            WebhookInput {
                enabled: Some(enabled),
                ..WebhookInput::default()
            },
        )
        .await
    }

    /// Gives endpoint `id` a new secret, shown in the answer and never again. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; store errors.
    pub async fn regenerate_webhook_secret(
        &self,
        principal: &Principal,
        id: i64,
    ) -> Result<WebhookWithSecret> {
        principal.require(Permission::AdminSystem, "changing a webhook")?;
        let current = self.webhook_row(id).await?;
        let secret = crate::token::new_token("whsec_")?;
        let webhook = NewWebhook {
            name: current.name,
            url: current.url,
            secret: self.vault.seal(secret.as_bytes(), SECRET_CONTEXT)?,
            events: current.events,
            ca_filter: current.ca_filter,
            custom_headers: current.custom_headers,
            enabled: current.enabled,
        };
        self.write_webhook(principal, id, &webhook, "webhook_secret_regenerated")
            .await?;
        Ok(WebhookWithSecret {
            webhook: self.webhook_row(id).await?.into(),
            secret,
        })
    }

    async fn write_webhook(
        &self,
        principal: &Principal,
        id: i64,
        webhook: &NewWebhook,
        action: &'static str,
    ) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        if !tx.update_webhook(id, webhook, self.now()).await? {
            return Err(Error::NotFound(format!("webhook {id} not found")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                action,
                "webhook",
                id,
                format!(
                    "'{}' to {}, {}",
                    webhook.name,
                    webhook.url,
                    if webhook.enabled {
                        "enabled"
                    } else {
                        "disabled"
                    }
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes endpoint `id` with its delivery log. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; store errors.
    pub async fn delete_webhook(&self, principal: &Principal, id: i64) -> Result<()> {
        principal.require(Permission::AdminSystem, "removing a webhook")?;
        let current = self.webhook_row(id).await?;
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_webhook(id).await? {
            return Err(Error::NotFound(format!("webhook {id} not found")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "webhook_deleted",
                "webhook",
                id,
                format!("'{}' to {}", current.name, current.url),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Endpoint `id`'s latest deliveries (at most `limit`), newest first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; store errors.
    pub async fn webhook_deliveries(
        &self,
        principal: &Principal,
        id: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>> {
        principal.require(Permission::AdminSystem, "reading webhook deliveries")?;
        self.webhook_row(id).await?;
        Ok(self
            .store
            .webhook_deliveries(id, limit.clamp(1, 500))
            .await?)
    }

    /// Puts dead delivery `delivery_id` of endpoint `id` back in the queue, for the next run
    /// of the delivery job. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; [`Error::Conflict`]
    /// unless the delivery is dead; store errors.
    pub async fn requeue_webhook_delivery(
        &self,
        principal: &Principal,
        id: i64,
        delivery_id: i64,
    ) -> Result<DeliveryRow> {
        principal.require(Permission::AdminSystem, "requeuing a webhook delivery")?;
        let missing =
            || Error::NotFound(format!("delivery {delivery_id} of webhook {id} not found"));
        self.store
            .webhook_delivery(id, delivery_id)
            .await?
            .ok_or_else(missing)?;
        let mut tx = self.store.begin_write().await?;
        if !tx.requeue_delivery(id, delivery_id, self.now()).await? {
            return Err(Error::Conflict(format!(
                "delivery {delivery_id} is not dead: only dead deliveries are requeued"
            )));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "webhook_delivery_requeued",
                "webhook",
                id,
                format!("delivery {delivery_id}"),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.store
            .webhook_delivery(id, delivery_id)
            .await?
            .ok_or_else(missing)
    }

    /// Sends a `test` event to endpoint `id` now and says how the receiver answered. The
    /// test is not recorded among the deliveries.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; store errors.
    pub async fn test_webhook(&self, principal: &Principal, id: i64) -> Result<TestDelivery> {
        principal.require(Permission::AdminSystem, "testing a webhook")?;
        let row = self.webhook_row(id).await?;
        let now = self.now();
        let event_id = format!("test-{}", crate::token::refid()?);
        let body = payload(
            &event_id,
            "test",
            now,
            json!({"webhook_id": id, "message": "a test event from certmint"}),
        );
        let sent = self.send(&row, &event_id, "test", &body).await?;
        Ok(TestDelivery {
            delivered: sent.status_code.is_some_and(|c| (200..300).contains(&c)),
            status_code: sent.status_code,
            latency_ms: sent.latency_ms,
            response_excerpt: sent.excerpt,
            error: sent.error,
        })
    }

    /// The `webhook_delivery` job: fans new events out, then sends every endpoint its open
    /// deliveries, the endpoints side by side, each one's in event order.
    pub(crate) async fn deliver_webhooks(&self) -> Result<String> {
        let deadline = Instant::now() + DELIVERY_BUDGET;
        let mut fanned = 0;
        loop {
            let (events, queued) = self.fan_out_events().await?;
            fanned += queued;
            if events < usize::try_from(BATCH).unwrap_or(usize::MAX) || Instant::now() >= deadline {
                break;
            }
        }
        let pruned = self.prune_events(deadline).await?;
        let endpoints = self.store.webhooks().await?;
        let drained =
            futures_util::future::join_all(endpoints.iter().map(|e| self.drain(e, deadline))).await;
        let (mut delivered, mut failed) = (0, 0);
        for outcome in drained {
            let (sent, refused) = outcome?;
            delivered += sent;
            failed += refused;
        }
        Ok(format!(
            "{fanned} events queued, {delivered} deliveries made, {failed} failed, \
             {pruned} old events removed"
        ))
    }

    /// Removes the events fanned out more than [`EVENT_RETENTION`] ago, a batch per
    /// transaction, until none is left or `deadline` passed; returns how many.
    async fn prune_events(&self, deadline: Instant) -> Result<u64> {
        let before = self.now() - EVENT_RETENTION;
        let mut pruned = 0;
        loop {
            let mut tx = self.store.begin_write().await?;
            let removed = tx.prune_events(before, PRUNE_BATCH).await?;
            tx.commit().await?;
            pruned += removed;
            if removed < PRUNE_BATCH.unsigned_abs() || Instant::now() >= deadline {
                return Ok(pruned);
            }
        }
    }

    /// Sends `endpoint` its open deliveries in event order, a page at a time, until one
    /// fails or waits for its retry (the later ones wait behind it), none is left or
    /// `deadline` passed. Each page's attempts are recorded in one transaction. Returns how
    /// many were delivered and how many failed.
    async fn drain(&self, endpoint: &WebhookRow, deadline: Instant) -> Result<(usize, usize)> {
        let (mut delivered, mut failed) = (0, 0);
        loop {
            let open = self.store.open_deliveries(endpoint.id, SEND_BATCH).await?;
            let mut done = open.len() < usize::try_from(SEND_BATCH).unwrap_or(usize::MAX);
            let mut attempts = Vec::with_capacity(open.len());
            for delivery in &open {
                if delivery.next_attempt_at > self.now() || Instant::now() >= deadline {
                    done = true;
                    break;
                }
                let sent = self
                    .send(
                        endpoint,
                        &delivery.event_id.to_string(),
                        &delivery.event_type,
                        &delivery.payload,
                    )
                    .await?;
                let attempt = attempt(delivery, sent, self.now())?;
                let ok = attempt.delivered_at.is_some();
                attempts.push((delivery.id, attempt));
                if ok {
                    delivered += 1;
                } else {
                    failed += 1;
                    done = true;
                    break;
                }
            }
            if !attempts.is_empty() {
                let mut tx = self.store.begin_write().await?;
                for (id, attempt) in &attempts {
                    tx.record_delivery_attempt(*id, attempt).await?;
                }
                tx.commit().await?;
            }
            if done {
                return Ok((delivered, failed));
            }
        }
    }

    /// Turns new outbox events into deliveries to the endpoints they match, and marks them
    /// fanned out, in one transaction. Returns how many events it read and how many
    /// deliveries it queued.
    async fn fan_out_events(&self) -> Result<(usize, usize)> {
        let events = self.store.undelivered_events(BATCH).await?;
        let Some(last) = events.last().map(|e| e.id) else {
            return Ok((0, 0));
        };
        let endpoints: Vec<WebhookRow> = self
            .store
            .webhooks()
            .await?
            .into_iter()
            .filter(|w| w.enabled)
            .collect();
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let mut queued = 0;
        for event in &events {
            let body = event_payload(event);
            for endpoint in endpoints.iter().filter(|w| matches(w, event)) {
                tx.insert_delivery(endpoint.id, event, &body, now).await?;
                queued += 1;
            }
        }
        tx.mark_events_delivered(last, now).await?;
        tx.commit().await?;
        Ok((events.len(), queued))
    }

    /// Posts `body` to `endpoint`, signed. An `Err` is the server's own failure; the
    /// receiver's (no connection, a refused address, a timeout) is in the answer.
    async fn send(
        &self,
        endpoint: &WebhookRow,
        event_id: &str,
        event_type: &str,
        body: &str,
    ) -> Result<Sent> {
        let secret = self.vault.open(&endpoint.secret, SECRET_CONTEXT)?;
        let timestamp = self.now().unix_timestamp();
        let signature = sign(&secret, timestamp, body);
        let started = Instant::now();
        let outcome = self
            .post(endpoint, event_id, event_type, body, timestamp, &signature)
            .await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        Ok(match outcome {
            Ok((code, excerpt)) => Sent {
                status_code: Some(code),
                latency_ms,
                excerpt: Some(excerpt),
                error: None,
            },
            Err(error) => Sent {
                status_code: None,
                latency_ms,
                excerpt: None,
                error: Some(error),
            },
        })
    }

    async fn post(
        &self,
        endpoint: &WebhookRow,
        event_id: &str,
        event_type: &str,
        body: &str,
        timestamp: i64,
        signature: &str,
    ) -> std::result::Result<(u16, String), String> {
        let policy = self.webhook_address_policy();
        check_target(&policy, &endpoint.url).map_err(|e| e.to_string())?;
        let client = self.webhook_client(policy).map_err(|e| e.to_string())?;
        let mut request = client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("x-certmint-event", event_type)
            .header("idempotency-key", event_id)
            .header(
                "x-certmint-signature",
                format!("t={timestamp},v1={signature}"),
            )
            .body(body.to_owned());
        for (name, value) in &endpoint.custom_headers {
            request = request.header(name, value);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| outbound::describe(e, DELIVERY_TIMEOUT))?;
        let code = response.status().as_u16();
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        excerpt.truncate(EXCERPT_BYTES);
        Ok((code, String::from_utf8_lossy(&excerpt).into_owned()))
    }

    /// The client webhooks are sent with, made once.
    fn webhook_client(&self, policy: AddressPolicy) -> Result<&reqwest::Client> {
        if let Some(client) = self.webhook_client.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .connect_timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver::new(policy)))
            .user_agent(concat!("certmint-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Internal(format!("the webhook client: {e}")))?;
        Ok(self.webhook_client.get_or_init(|| client))
    }

    /// Checks an endpoint to be written and applies `input` over `base`.
    fn checked_webhook(&self, base: NewWebhook, input: WebhookInput) -> Result<NewWebhook> {
        let name = input.name.map(|n| n.trim().to_owned()).unwrap_or(base.name);
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::Invalid(
                "a webhook's name has 1 to 100 characters".into(),
            ));
        }
        let url = input.url.map(|u| u.trim().to_owned()).unwrap_or(base.url);
        if url.is_empty() || url.len() > 2000 {
            return Err(Error::Invalid(
                "a webhook's url has 1 to 2000 characters".into(),
            ));
        }
        check_target(&self.webhook_address_policy(), &url)?;
        if let Some(secret) = &input.secret
            && !(16..=256).contains(&secret.len())
        {
            return Err(Error::Invalid(
                "a webhook's secret has 16 to 256 characters".into(),
            ));
        }
        let events = input.events.unwrap_or(base.events);
        if let Some(unknown) = events
            .iter()
            .find(|e| !EVENTS.iter().any(|(name, _)| name == e))
        {
            return Err(Error::Invalid(format!(
                "'{unknown}' is not an event type; GET /api/v2/webhooks/events lists them"
            )));
        }
        let ca_filter = input.ca_filter.unwrap_or(base.ca_filter);
        if ca_filter.len() > 100 {
            return Err(Error::Invalid("a CA filter names at most 100 CAs".into()));
        }
        let custom_headers = input.custom_headers.unwrap_or(base.custom_headers);
        check_headers(&custom_headers)?;
        Ok(NewWebhook {
            name,
            url,
            secret: base.secret,
            events,
            ca_filter,
            custom_headers,
            enabled: input.enabled.unwrap_or(base.enabled),
        })
    }
}

/// What a send got: the receiver's answer, or why there was none.
struct Sent {
    status_code: Option<u16>,
    latency_ms: i64,
    excerpt: Option<String>,
    error: Option<String>,
}

/// Checks that `url` is an http(s) URL with a host, without credentials, and not an address
/// the policy refuses. A name is judged by what it resolves to, when a delivery is made.
fn check_target(policy: &AddressPolicy, url: &str) -> Result<()> {
    let parsed =
        url::Url::parse(url).map_err(|e| Error::Invalid(format!("'{url}' is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Invalid(format!(
            "a webhook URL is http:// or https://, not {}://",
            parsed.scheme()
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::Invalid(
            "a webhook URL carries no credentials; use a custom header".into(),
        ));
    }
    let refused = |range: crate::outbound::Reserved| {
        Error::Invalid(format!(
            "the webhook URL points to a {range} address, which webhooks do not reach \
             (unless [webhooks] allow_private_targets is set)"
        ))
    };
    match parsed.host() {
        None => Err(Error::Invalid("a webhook URL names a host".into())),
        Some(url::Host::Ipv4(ip)) => policy.check(IpAddr::V4(ip)).map_err(refused),
        Some(url::Host::Ipv6(ip)) => policy.check(IpAddr::V6(ip)).map_err(refused),
        Some(url::Host::Domain(_)) => Ok(()),
    }
}

fn check_headers(headers: &BTreeMap<String, String>) -> Result<()> {
    if headers.len() > MAX_HEADERS {
        return Err(Error::Invalid(format!(
            "a webhook adds at most {MAX_HEADERS} headers"
        )));
    }
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(Error::Invalid(format!(
                "the header {name} is certmint's to set; a webhook may not replace it"
            )));
        }
        let name_ok = !name.is_empty()
            && name.len() <= 100
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        let value_ok = value.len() <= 1000
            && value
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        if !name_ok || !value_ok {
            return Err(Error::Invalid(format!(
                "'{name}' is not a header name and printable value of at most 100 and 1000 characters"
            )));
        }
    }
    Ok(())
}

/// Whether `endpoint` takes `event`: raised after it was registered, its type among the
/// events asked for (or none asked for), and its CA among the CAs filtered on (or none
/// filtered on).
fn matches(endpoint: &WebhookRow, event: &OutboxEvent) -> bool {
    if event.id <= endpoint.after_event {
        return false;
    }
    let type_ok = endpoint.events.is_empty() || endpoint.events.contains(&event.event_type);
    let ca_ok = endpoint.ca_filter.is_empty()
        || event.payload["ca_id"]
            .as_i64()
            .is_some_and(|ca| endpoint.ca_filter.contains(&ca));
    type_ok && ca_ok
}

/// The request body of an outbox event.
fn event_payload(event: &OutboxEvent) -> String {
    let mut data = match &event.payload {
        Value::Object(map) => map.clone(),
        other => {
            let mut map = serde_json::Map::new();
            map.insert("value".into(), other.clone());
            map
        }
    };
    data.insert("resource_type".into(), event.resource_type.clone().into());
    data.insert("resource_id".into(), event.resource_id.clone().into());
    payload(
        &event.id.to_string(),
        &event.event_type,
        event.created_at,
        Value::Object(data),
    )
}

/// The versioned payload: `{"id", "type", "version", "created_at", "data"}`.
fn payload(id: &str, event_type: &str, created_at: OffsetDateTime, data: Value) -> String {
    json!({
        "id": id,
        "type": event_type,
        "version": PAYLOAD_VERSION,
        "created_at": crate::rfc3339(created_at),
        "data": data,
    })
    .to_string()
}

/// The `v1` signature: hex HMAC-SHA256 of `"<timestamp>.<body>"` under the secret.
pub fn sign(secret: &[u8], timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body.as_bytes());
    hex::encode(context.sign())
}

/// What an attempt at `delivery` that got `sent` leaves in the log: delivered on a 2xx,
/// else failed, or dead after [`MAX_ATTEMPTS`], with when to try again.
fn attempt(delivery: &DeliveryRow, sent: Sent, now: OffsetDateTime) -> Result<DeliveryAttempt> {
    let ok = sent.status_code.is_some_and(|c| (200..300).contains(&c));
    let attempts = delivery.attempts + 1;
    let status = if ok {
        "delivered"
    } else if attempts >= MAX_ATTEMPTS {
        "dead"
    } else {
        "failed"
    };
    let error = match (sent.error, sent.status_code) {
        (Some(e), _) => Some(e),
        (None, Some(code)) if !ok => Some(format!("the receiver answered {code}")),
        _ => None,
    };
    Ok(DeliveryAttempt {
        status,
        next_attempt_at: now + backoff(attempts)?,
        status_code: sent.status_code.map(i64::from),
        latency_ms: sent.latency_ms,
        response_excerpt: sent.excerpt,
        error,
        delivered_at: ok.then_some(now),
    })
}

/// The wait before attempt `attempts + 1`: 30 s doubled for each attempt made, with up to a
/// quarter more at random so that endpoints that failed together do not retry together.
fn backoff(attempts: i64) -> Result<Duration> {
    let base = FIRST_BACKOFF * 2_i32.pow(u32::try_from(attempts.clamp(1, 10) - 1).unwrap_or(0));
    let [r] = crate::token::random_bytes::<1>()?;
    Ok(base + base * (f64::from(r) / 255.0 / 4.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed with: python3 -c 'import hmac,hashlib;
        //   print(hmac.new(b"secret", b"1700000000.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(b"secret", 1_700_000_000, "{}"),
            "b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter() -> Result<()> {
        for (attempts, base) in [(1, 30), (2, 60), (3, 120), (4, 240)] {
            let wait = backoff(attempts)?;
            assert!(
                wait >= Duration::seconds(base) && wait <= Duration::milliseconds(base * 1250),
                "{attempts}: {wait}"
            );
        }
        Ok(())
    }

    #[test]
    fn reserved_headers_and_private_targets_are_refused() {
        let public = AddressPolicy::public_only();
        assert!(check_target(&public, "https://hooks.example.com/x").is_ok());
        assert!(check_target(&public, "http://127.0.0.1:8080/").is_err());
        assert!(
            check_target(&public, "http://localhost/").is_ok(),
            "judged at delivery"
        );
        assert!(check_target(&public, "http://[::1]/").is_err());
        assert!(check_target(&public, "ftp://example.com/").is_err());
        assert!(check_target(&public, "https://user:pw@example.com/").is_err());
        let lab = AddressPolicy::dangerous_allow_private();
        assert!(check_target(&lab, "http://127.0.0.1:8080/").is_ok());
        let mut headers = BTreeMap::new();
        headers.insert("X-Team".to_owned(), "pki".to_owned());
        assert!(check_headers(&headers).is_ok());
        headers.insert("Idempotency-Key".to_owned(), "x".to_owned());
        assert!(check_headers(&headers).is_err());
    }
}
