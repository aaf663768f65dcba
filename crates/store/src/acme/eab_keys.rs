//! External account binding keys, made by administrators and bound to one account each.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::{Arg, Filter};
use crate::{Error, Reader, WriteTx, from_micros, to_micros};

/// An external account binding key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeEabKeyRow {
    /// Integer id.
    pub id: i64,
    /// The key identifier the client sends as `kid`.
    pub key_id: String,
    /// The profile it registers accounts on.
    pub profile_id: i64,
    /// The HMAC key, sealed by the vault.
    pub hmac_key: Vec<u8>,
    /// Free text.
    pub description: String,
    /// The account it was bound to.
    pub account_id: Option<i64>,
    /// The user who made it.
    pub created_by: Option<i64>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When an account used it.
    pub used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

const EAB_COLUMNS: &str = "id, key_id, profile_id, hmac_key, description, account_id, \
    created_by, created_at, used_at, revoked_at";

fn eab_key(row: &AnyRow) -> Result<AcmeEabKeyRow, Error> {
    Ok(AcmeEabKeyRow {
        id: row.try_get("id")?,
        key_id: row.try_get("key_id")?,
        profile_id: row.try_get("profile_id")?,
        hmac_key: row.try_get("hmac_key")?,
        description: row.try_get("description")?,
        account_id: row.try_get("account_id")?,
        created_by: row.try_get("created_by")?,
        created_at: from_micros(row.try_get("created_at")?),
        used_at: row.try_get::<Option<i64>, _>("used_at")?.map(from_micros),
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(from_micros),
    })
}

impl Reader {
    /// The external account binding key the client calls `key_id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_eab_key(&self, key_id: &str) -> Result<Option<AcmeEabKeyRow>, Error> {
        Filter::new("key_id = ?", [Arg::Text(key_id.to_owned())])
            .fetch_row(self, EAB_COLUMNS, "acme_eab_keys", eab_key)
            .await
    }

    /// External account binding key `id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_eab_key_by_id(&self, id: i64) -> Result<Option<AcmeEabKeyRow>, Error> {
        Filter::new("id = ?", [Arg::Int(id)])
            .fetch_row(self, EAB_COLUMNS, "acme_eab_keys", eab_key)
            .await
    }

    /// The external account binding keys of `profile_id`, newest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_eab_keys(&self, profile_id: i64) -> Result<Vec<AcmeEabKeyRow>, Error> {
        let sql = format!(
            "SELECT {EAB_COLUMNS} FROM acme_eab_keys WHERE profile_id = $1 ORDER BY id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(profile_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(eab_key).collect()
    }
}

impl WriteTx {
    /// Stores an external account binding key (its HMAC key sealed) and returns its id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the key id is taken; [`Error::Database`] or
    /// [`Error::Unavailable`].
    pub async fn insert_acme_eab_key(
        &mut self,
        key_id: &str,
        profile_id: i64,
        sealed_hmac: &[u8],
        description: &str,
        created_by: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "INSERT INTO acme_eab_keys (key_id, profile_id, hmac_key, description, created_by, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(key_id.to_owned())
        .bind(profile_id)
        .bind(sealed_hmac.to_vec())
        .bind(description.to_owned())
        .bind(created_by)
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Revokes external account binding key `id`. Returns false when it does not exist or
    /// was revoked before.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn revoke_acme_eab_key(
        &mut self,
        id: i64,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE acme_eab_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Binds unused, unrevoked key `id` to `account_id`. Returns false when it was used or
    /// revoked meanwhile, so that one key registers one account.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn bind_acme_eab_key(
        &mut self,
        id: i64,
        account_id: i64,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE acme_eab_keys SET account_id = $1, used_at = $2 \
             WHERE id = $3 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(account_id)
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
