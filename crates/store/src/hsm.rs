//! PKCS#11 providers (a module and a token in it) and the keys certmint keeps in their tokens.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::keys::{KEY_COLUMNS, PKCS11, key, token_object};
use crate::{CaId, Error, KeyId, KeyRow, Reader, WriteTx, from_micros, to_micros};

/// A provider as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmProviderRow {
    /// Integer id.
    pub id: i64,
    /// Its fields.
    pub fields: HsmProviderFields,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

/// A provider's fields, to create or replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmProviderFields {
    /// Unique name.
    pub name: String,
    /// `softhsm2`, `opensc`, `yubihsm2` or `pkcs11`.
    pub provider_type: String,
    /// The PKCS#11 module (shared library).
    pub module_path: String,
    /// The token's label, which finds its slot.
    pub token_label: Option<String>,
    /// The slot, when no label is given.
    pub slot_id: Option<i64>,
    /// The environment variable holding the user PIN.
    pub pin_env: Option<String>,
    /// The user PIN, sealed by the vault.
    pub pin: Option<Vec<u8>>,
    /// Sessions opened at most, which bounds the signatures in flight.
    pub max_sessions: i64,
    /// Whether software CA keys may be moved into this token.
    pub allow_key_import: bool,
    /// Disabled providers sign nothing.
    pub enabled: bool,
}

/// A key in a token with the CA it signs for, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmKeyRow {
    /// The key.
    pub key: KeyRow,
    /// The CA whose key it is.
    pub ca: Option<(CaId, String)>,
}

const COLUMNS: &str = "id, name, provider_type, module_path, token_label, slot_id, pin_env, \
                       pin, max_sessions, allow_key_import, enabled, created_at, updated_at";

fn provider(row: &AnyRow) -> Result<HsmProviderRow, Error> {
    Ok(HsmProviderRow {
        id: row.try_get("id")?,
        fields: HsmProviderFields {
            name: row.try_get("name")?,
            provider_type: row.try_get("provider_type")?,
            module_path: row.try_get("module_path")?,
            token_label: row.try_get("token_label")?,
            slot_id: row.try_get("slot_id")?,
            pin_env: row.try_get("pin_env")?,
            pin: row.try_get("pin")?,
            max_sessions: row.try_get("max_sessions")?,
            allow_key_import: row.try_get::<i64, _>("allow_key_import")? != 0,
            enabled: row.try_get::<i64, _>("enabled")? != 0,
        },
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

fn hsm_key(row: &AnyRow) -> Result<HsmKeyRow, Error> {
    let ca = match row.try_get::<Option<i64>, _>("ca_id")? {
        Some(id) => Some((CaId(id), row.try_get::<String, _>("ca_name")?)),
        None => None,
    };
    let mut stored = key(row)?;
    stored.hsm = token_object(row)?;
    Ok(HsmKeyRow { key: stored, ca })
}

/// The columns of a key in a token with its CA, from `hsm_keys h JOIN keys k LEFT JOIN cas c`.
fn hsm_key_columns() -> String {
    let key_columns = KEY_COLUMNS
        .split(',')
        .map(|c| format!("k.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{key_columns}, h.provider_id AS hsm_provider_id, h.object_id AS hsm_object_id, \
         h.label AS hsm_label, c.id AS ca_id, c.name AS ca_name \
         FROM hsm_keys h JOIN keys k ON k.id = h.key_id LEFT JOIN cas c ON c.key_id = k.id"
    )
}

impl Reader {
    /// Every provider, by name.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn hsm_providers(&self) -> Result<Vec<HsmProviderRow>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM hsm_providers ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(provider).collect()
    }

    /// One provider.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn hsm_provider(&self, id: i64) -> Result<Option<HsmProviderRow>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM hsm_providers WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(provider).transpose()
    }

    /// The keys in tokens, of one provider or of all, by id, with the CA each signs for.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn hsm_keys(&self, provider_id: Option<i64>) -> Result<Vec<HsmKeyRow>, Error> {
        let of_provider = if provider_id.is_some() {
            " WHERE h.provider_id = $1"
        } else {
            ""
        };
        let sql = format!("SELECT {}{of_provider} ORDER BY k.id", hsm_key_columns());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(id) = provider_id {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(hsm_key).collect()
    }

    /// One key in a token, with the CA it signs for.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn hsm_key(&self, id: KeyId) -> Result<Option<HsmKeyRow>, Error> {
        let sql = format!("SELECT {} WHERE h.key_id = $1", hsm_key_columns());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(hsm_key).transpose()
    }
}

impl WriteTx {
    /// Stores a new provider and returns its id, or `None` when the name is taken.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_hsm_provider(
        &mut self,
        p: &HsmProviderFields,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, Error> {
        let row = sqlx::query(
            "INSERT INTO hsm_providers (name, provider_type, module_path, token_label, slot_id, \
             pin_env, pin, max_sessions, allow_key_import, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(p.name.clone())
        .bind(p.provider_type.clone())
        .bind(p.module_path.clone())
        .bind(p.token_label.clone())
        .bind(p.slot_id)
        .bind(p.pin_env.clone())
        .bind(p.pin.clone())
        .bind(p.max_sessions)
        .bind(i64::from(p.allow_key_import))
        .bind(i64::from(p.enabled))
        .bind(to_micros(now))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| r.try_get("id").map_err(Error::from))
            .transpose()
    }

    /// Replaces provider `id`'s fields; false when there is no such provider.
    ///
    /// # Errors
    /// [`Error::Conflict`] for a name another provider has; [`Error::Database`] or
    /// [`Error::Unavailable`].
    pub async fn update_hsm_provider(
        &mut self,
        id: i64,
        p: &HsmProviderFields,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let taken: Option<i64> =
            sqlx::query_scalar("SELECT id FROM hsm_providers WHERE name = $1 AND id <> $2")
                .bind(p.name.clone())
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await?;
        if taken.is_some() {
            return Err(Error::Conflict(format!(
                "an HSM provider named '{}' exists",
                p.name
            )));
        }
        let done = sqlx::query(
            "UPDATE hsm_providers SET name = $1, provider_type = $2, module_path = $3, \
             token_label = $4, slot_id = $5, pin_env = $6, pin = $7, max_sessions = $8, \
             allow_key_import = $9, enabled = $10, updated_at = $11 WHERE id = $12",
        )
        .bind(p.name.clone())
        .bind(p.provider_type.clone())
        .bind(p.module_path.clone())
        .bind(p.token_label.clone())
        .bind(p.slot_id)
        .bind(p.pin_env.clone())
        .bind(p.pin.clone())
        .bind(p.max_sessions)
        .bind(i64::from(p.allow_key_import))
        .bind(i64::from(p.enabled))
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes provider `id`; false when there is no such provider.
    ///
    /// # Errors
    /// [`Error::Conflict`] while keys in its token are recorded; [`Error::Database`] or
    /// [`Error::Unavailable`].
    pub async fn delete_hsm_provider(&mut self, id: i64) -> Result<bool, Error> {
        let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hsm_keys WHERE provider_id = $1")
            .bind(id)
            .fetch_one(&mut *self.tx)
            .await?;
        if keys > 0 {
            return Err(Error::Conflict(format!(
                "the provider's token holds {keys} key(s) certmint records; delete them first"
            )));
        }
        let done = sqlx::query("DELETE FROM hsm_providers WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the record of key `id` in a token unless a CA, certificate or CSR uses it;
    /// false when it was not removed.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_hsm_key(&mut self, id: KeyId) -> Result<bool, Error> {
        let used: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM keys WHERE id = $1 AND ( \
               EXISTS (SELECT 1 FROM certificates WHERE key_id = $1) \
               OR EXISTS (SELECT 1 FROM cas WHERE key_id = $1) \
               OR EXISTS (SELECT 1 FROM csrs WHERE key_id = $1))",
        )
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        if used.is_some() {
            return Ok(false);
        }
        let done = sqlx::query("DELETE FROM hsm_keys WHERE key_id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM keys WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(true)
    }

    /// Records where key `id` is in a token.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub(crate) async fn insert_token_object(
        &mut self,
        id: KeyId,
        object: &crate::TokenObject,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO hsm_keys (key_id, provider_id, object_id, label) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(object.provider_id)
        .bind(object.object_id.clone())
        .bind(object.label.clone())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Points CA key `id` at a token object in place of its sealed software copy, which is
    /// erased: the key moved into the token. False when there is no such software key.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn move_key_to_token(
        &mut self,
        id: KeyId,
        object: &crate::TokenObject,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE keys SET backend = $1, sealed = NULL WHERE id = $2 AND sealed IS NOT NULL",
        )
        .bind(PKCS11)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.insert_token_object(id, object).await?;
        Ok(true)
    }
}
