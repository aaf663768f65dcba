use sqlx::Row;
use time::OffsetDateTime;

use crate::{Error, Reader, WriteTx, to_micros};

/// An event to announce once the change that raised it has committed.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// What happened, e.g. `certificate.issued`.
    pub event_type: String,
    /// The kind of thing it happened to.
    pub resource_type: String,
    /// Its id.
    pub resource_id: String,
    /// Details, JSON.
    pub payload: serde_json::Value,
}

impl WriteTx {
    /// Queues an event in this transaction, so it exists exactly when the change does.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn queue_event(&mut self, e: &NewEvent, now: OffsetDateTime) -> Result<(), Error> {
        self.queue_events(&[(e, now)]).await
    }

    /// Queues events, each raised at its time, in this transaction.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn queue_events(
        &mut self,
        events: &[(&NewEvent, OffsetDateTime)],
    ) -> Result<(), Error> {
        self.insert_rows(
            "INSERT INTO outbox (event_type, resource_type, resource_id, payload, created_at)",
            5,
            "",
            events,
            |q, (e, now)| {
                q.bind(e.event_type.clone())
                    .bind(e.resource_type.clone())
                    .bind(e.resource_id.clone())
                    .bind(e.payload.to_string())
                    .bind(to_micros(*now))
            },
        )
        .await?;
        Ok(())
    }
}

impl WriteTx {
    /// Removes up to `limit` events fanned out before `before`, oldest first, and returns how
    /// many. The newest event always stays, so that no id is handed out twice: SQLite gives a
    /// new row the largest id plus one, and webhook endpoints remember events by id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn prune_events(&mut self, before: OffsetDateTime, limit: i64) -> Result<u64, Error> {
        let done = sqlx::query(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
             WHERE delivered_at IS NOT NULL AND delivered_at < $1 \
             AND id < (SELECT MAX(id) FROM outbox) ORDER BY delivered_at, id LIMIT $2)",
        )
        .bind(to_micros(before))
        .bind(limit)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }
}

impl Reader {
    /// Undelivered events of a type, oldest first, with their ids (`resource_id`, payload).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn pending_events(
        &self,
        event_type: &str,
        limit: i64,
    ) -> Result<Vec<(i64, String, serde_json::Value)>, Error> {
        let rows = sqlx::query(
            "SELECT id, resource_id, payload FROM outbox \
             WHERE delivered_at IS NULL AND event_type = $1 ORDER BY id LIMIT $2",
        )
        .bind(event_type.to_owned())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get("payload")?;
                Ok((
                    r.try_get("id")?,
                    r.try_get("resource_id")?,
                    serde_json::from_str(&payload)?,
                ))
            })
            .collect()
    }
}
