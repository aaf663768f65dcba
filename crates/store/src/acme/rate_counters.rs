//! Rate-limit counters, shared by every node through the database.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{Error, Store, to_micros};

impl Store {
    /// Counts one more event against `key` in the window starting at `window_start`, and
    /// returns the count so far. Windows before `window_start` are dropped now and then by
    /// [`Store::purge_rate_counters`].
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn count_rate(&self, key: &str, window_start: OffsetDateTime) -> Result<i64, Error> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_relaxed().await?;
        let row = sqlx::query(
            "INSERT INTO acme_rate_counters (key, window_start, count) VALUES ($1, $2, 1) \
             ON CONFLICT (key, window_start) DO UPDATE SET count = acme_rate_counters.count + 1 \
             RETURNING count",
        )
        .bind(key.to_owned())
        .bind(to_micros(window_start))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.try_get("count")?)
    }

    /// Drops rate-limit windows that started before `before`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn purge_rate_counters(&self, before: OffsetDateTime) -> Result<u64, Error> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM acme_rate_counters WHERE window_start < $1")
            .bind(to_micros(before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
