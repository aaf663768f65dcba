use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::{Arg, Filter, flag};
use crate::{Error, Reader, Store, WriteTx, from_micros, to_micros};

/// An API key as stored. The secret itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// Integer id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// A label.
    pub name: String,
    /// The first characters of the secret, to tell keys apart in lists.
    pub key_prefix: String,
    /// Permission strings, a subset of the owner's.
    pub permissions: Vec<String>,
    /// Disabled keys do not authenticate.
    pub enabled: bool,
    /// The key stops working then.
    pub expires_at: Option<OffsetDateTime>,
    /// Last successful use (updated at most once a minute).
    pub last_used_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// An API key to create.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Owner.
    pub user_id: i64,
    /// A label.
    pub name: String,
    /// The first characters of the secret.
    pub key_prefix: String,
    /// SHA-256 of the secret, hex.
    pub key_hash: String,
    /// Permission strings.
    pub permissions: Vec<String>,
    /// Expiry.
    pub expires_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, user_id, name, key_prefix, permissions, enabled, expires_at, \
                       last_used_at, created_at, updated_at";

fn api_key(row: &AnyRow) -> Result<ApiKeyRow, Error> {
    let permissions: String = row.try_get("permissions")?;
    Ok(ApiKeyRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        key_prefix: row.try_get("key_prefix")?,
        permissions: serde_json::from_str(&permissions)?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        expires_at: row
            .try_get::<Option<i64>, _>("expires_at")?
            .map(from_micros),
        last_used_at: row
            .try_get::<Option<i64>, _>("last_used_at")?
            .map(from_micros),
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

impl Reader {
    /// The key whose secret hashes to `key_hash`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRow>, Error> {
        Filter::new("key_hash = ?", [Arg::Text(key_hash.to_owned())])
            .fetch_row(self, COLUMNS, "api_keys", api_key)
            .await
    }

    /// One of `user_id`'s keys.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn api_key(&self, user_id: i64, id: i64) -> Result<Option<ApiKeyRow>, Error> {
        Filter::new("id = ? AND user_id = ?", [Arg::Int(id), Arg::Int(user_id)])
            .fetch_row(self, COLUMNS, "api_keys", api_key)
            .await
    }

    /// All of `user_id`'s keys, by id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn api_keys(&self, user_id: i64) -> Result<Vec<ApiKeyRow>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(api_key).collect()
    }
}

impl Store {
    /// Marks a key as used. Bookkeeping, not a state change: it is not audited.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn touch_api_key(&self, id: i64, now: OffsetDateTime) -> Result<(), Error> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(to_micros(now))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl WriteTx {
    /// Creates a key and returns its id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_api_key(
        &mut self,
        k: &NewApiKey,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let now = to_micros(now);
        let row = sqlx::query(
            "INSERT INTO api_keys (user_id, name, key_prefix, key_hash, permissions, enabled, \
             expires_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $7) RETURNING id",
        )
        .bind(k.user_id)
        .bind(k.name.clone())
        .bind(k.key_prefix.clone())
        .bind(k.key_hash.clone())
        .bind(serde_json::to_string(&k.permissions)?)
        .bind(k.expires_at.map(to_micros))
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Renames, enables or disables one of `user_id`'s keys. Returns false when there is no such key.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn update_api_key(
        &mut self,
        user_id: i64,
        id: i64,
        name: Option<&str>,
        enabled: Option<bool>,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        self.credentials_change();
        let done = sqlx::query(
            "UPDATE api_keys SET name = COALESCE($1, name), enabled = COALESCE($2, enabled), \
             updated_at = $3 WHERE id = $4 AND user_id = $5",
        )
        .bind(name.map(str::to_owned))
        .bind(enabled.map(flag))
        .bind(to_micros(now))
        .bind(id)
        .bind(user_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces the secret of one of `user_id`'s keys. Returns false when there is no such key.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn replace_api_key_secret(
        &mut self,
        user_id: i64,
        id: i64,
        key_prefix: &str,
        key_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        self.credentials_change();
        let done = sqlx::query(
            "UPDATE api_keys SET key_prefix = $1, key_hash = $2, updated_at = $3 \
             WHERE id = $4 AND user_id = $5",
        )
        .bind(key_prefix.to_owned())
        .bind(key_hash.to_owned())
        .bind(to_micros(now))
        .bind(id)
        .bind(user_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes one of `user_id`'s keys. Returns false when there is no such key.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_api_key(&mut self, user_id: i64, id: i64) -> Result<bool, Error> {
        self.credentials_change();
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
