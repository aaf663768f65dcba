//! Replay nonces: the key every node derives them from, and the ones already used.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{Error, Store, WriteTx, to_micros};

impl Store {
    /// The nonce key (sealed), storing `candidate` first when there is none yet: every node
    /// ends up with the same key, whichever stored it.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_nonce_key(&self, candidate: Vec<u8>) -> Result<Vec<u8>, Error> {
        sqlx::query("UPDATE acme_state SET nonce_key = $1 WHERE id = 1 AND nonce_key IS NULL")
            .bind(candidate)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT nonce_key FROM acme_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        row.try_get::<Option<Vec<u8>>, _>("nonce_key")?
            .ok_or_else(|| Error::Corrupt("the ACME nonce key was not stored".into()))
    }

    /// Forgets used nonces that have expired (they are refused for their age anyway).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn purge_used_nonces(&self, now: OffsetDateTime) -> Result<u64, Error> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM acme_used_nonces WHERE expires_at < $1")
            .bind(to_micros(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

impl WriteTx {
    /// Marks nonces used. Returns those that were not used before, in no particular order
    /// (a nonce twice in `nonces` comes back once): one statement for a whole batch.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn use_nonces(
        &mut self,
        nonces: &[(String, OffsetDateTime)],
    ) -> Result<Vec<String>, Error> {
        let rows = self
            .insert_rows(
                "INSERT INTO acme_used_nonces (nonce, expires_at)",
                2,
                " ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
                nonces,
                |q, (nonce, expires)| q.bind(nonce.clone()).bind(to_micros(*expires)),
            )
            .await?;
        rows.iter()
            .map(|row| row.try_get("nonce").map_err(Error::from))
            .collect()
    }
}
