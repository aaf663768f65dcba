//! The syslog forwarder's cursor over the audit table: one row, moved forward only after the
//! records up to it were written to the syslog server.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{Error, Reader, Store, WriteTx, from_micros, to_micros};

/// Where forwarding stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogCursor {
    /// The newest audit record the syslog server took; those after it are still to send.
    pub after_id: i64,
    /// Records forwarded since forwarding started.
    pub forwarded: i64,
    /// When records were last written to the server.
    pub last_sent_at: Option<OffsetDateTime>,
    /// Attempts that failed since the last one that succeeded.
    pub failures: i64,
    /// Why the last failed attempt failed.
    pub last_error: Option<String>,
    /// When it failed.
    pub last_error_at: Option<OffsetDateTime>,
    /// No attempt before this time (backoff after failures).
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl Reader {
    /// The cursor, or `None` before forwarding was first turned on.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn syslog_cursor(&self) -> Result<Option<SyslogCursor>, Error> {
        let row = sqlx::query(
            "SELECT after_id, forwarded, last_sent_at, failures, last_error, last_error_at, \
             next_attempt_at FROM syslog_forwarding WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let time = |row: &sqlx::any::AnyRow, column: &str| -> Result<_, Error> {
            Ok(row.try_get::<Option<i64>, _>(column)?.map(from_micros))
        };
        row.map(|row| {
            Ok(SyslogCursor {
                after_id: row.try_get("after_id")?,
                forwarded: row.try_get("forwarded")?,
                last_sent_at: time(&row, "last_sent_at")?,
                failures: row.try_get("failures")?,
                last_error: row.try_get("last_error")?,
                last_error_at: time(&row, "last_error_at")?,
                next_attempt_at: time(&row, "next_attempt_at")?,
            })
        })
        .transpose()
    }
}

impl Store {
    /// Moves the cursor from `from` to `to` after `count` records were written to the server
    /// at `at`, and clears the backoff. Returns `false`, moving nothing, when the cursor is no
    /// longer at `from` (another node forwarded meanwhile).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn syslog_advance(
        &self,
        from: i64,
        to: i64,
        count: i64,
        at: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE syslog_forwarding SET after_id = $1, forwarded = forwarded + $2, \
             last_sent_at = $3, failures = 0, next_attempt_at = NULL \
             WHERE id = 1 AND after_id = $4",
        )
        .bind(to)
        .bind(count)
        .bind(to_micros(at))
        .bind(from)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt at `at` and when the next may be made.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn syslog_failed(
        &self,
        error: &str,
        at: OffsetDateTime,
        next_attempt_at: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE syslog_forwarding SET failures = failures + 1, last_error = $1, \
             last_error_at = $2, next_attempt_at = $3 WHERE id = 1",
        )
        .bind(error.to_owned())
        .bind(to_micros(at))
        .bind(to_micros(next_attempt_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl WriteTx {
    /// Starts the cursor at the newest audit record committed before this transaction, the
    /// first time forwarding is turned on; later, keeps it where it is (records written while
    /// forwarding was off are sent once it is on again). Either way the next attempt may be
    /// made at once. Call it before this transaction's own audit records.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn syslog_start(&mut self) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO syslog_forwarding (id, after_id) \
             SELECT 1, last_id FROM audit_head WHERE id = 1 \
             ON CONFLICT (id) DO UPDATE SET next_attempt_at = NULL",
        )
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
