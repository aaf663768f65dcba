use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::{Arg, Filter, first, ids_by_refid};
use crate::{Error, KeyId, Reader, WriteTx, from_micros, to_micros};

pub(crate) const KEY_COLUMNS: &str = "id, refid, key_type, backend, sealed, public_key, created_at";

/// Where a key in a PKCS#11 token is: its provider, and the object's `CKA_ID` and `CKA_LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenObject {
    /// The HSM provider whose token holds it.
    pub provider_id: i64,
    /// `CKA_ID`, which finds the private and the public key object.
    pub object_id: Vec<u8>,
    /// `CKA_LABEL`.
    pub label: String,
}

/// A private key as stored: sealed by the vault (software keys) or a reference into an HSM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// Integer id.
    pub id: KeyId,
    /// Public identifier.
    pub refid: String,
    /// Algorithm and size, e.g. `EC P-256`.
    pub key_type: String,
    /// `software` (sealed here) or the name of an HSM backend.
    pub backend: String,
    /// The vault-sealed PKCS#8 of a software key.
    pub sealed: Option<Vec<u8>>,
    /// Public key, DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// The token object of a key in an HSM, as [`Reader::key`] and the HSM key lists read it.
    pub hsm: Option<TokenObject>,
}

/// A key to store.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Public identifier.
    pub refid: String,
    /// Algorithm and size.
    pub key_type: String,
    /// Backend name.
    pub backend: String,
    /// Sealed PKCS#8.
    pub sealed: Option<Vec<u8>>,
    /// Public key.
    pub public_key: Vec<u8>,
    /// The token object, for a key in an HSM.
    pub hsm: Option<TokenObject>,
}

pub(crate) fn key(row: &AnyRow) -> Result<KeyRow, Error> {
    Ok(KeyRow {
        id: row.try_get("id")?,
        refid: row.try_get("refid")?,
        key_type: row.try_get("key_type")?,
        backend: row.try_get("backend")?,
        sealed: row.try_get("sealed")?,
        public_key: row.try_get("public_key")?,
        created_at: from_micros(row.try_get("created_at")?),
        hsm: None,
    })
}

/// The token object of a key row joined with `hsm_keys` (as `hsm_provider_id`,
/// `hsm_object_id`, `hsm_label`), if it has one.
pub(crate) fn token_object(row: &AnyRow) -> Result<Option<TokenObject>, Error> {
    let Some(provider_id) = row.try_get::<Option<i64>, _>("hsm_provider_id")? else {
        return Ok(None);
    };
    Ok(Some(TokenObject {
        provider_id,
        object_id: row
            .try_get::<Option<Vec<u8>>, _>("hsm_object_id")?
            .unwrap_or_default(),
        label: row
            .try_get::<Option<String>, _>("hsm_label")?
            .unwrap_or_default(),
    }))
}

/// The backend name of keys in a PKCS#11 token, which have a row in `hsm_keys`.
pub const PKCS11: &str = "pkcs11";

impl Reader {
    /// The key with this id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn key(&self, id: KeyId) -> Result<Option<KeyRow>, Error> {
        let Some(mut row) = Filter::new("id = ?", [Arg::Int(id.0)])
            .fetch_row(self, KEY_COLUMNS, "keys", key)
            .await?
        else {
            return Ok(None);
        };
        // Only a key in a token has a row there: software keys never read the table, so an
        // older schema without it still serves them.
        if row.backend == PKCS11 {
            let found = sqlx::query(
                "SELECT provider_id AS hsm_provider_id, object_id AS hsm_object_id, \
                 label AS hsm_label FROM hsm_keys WHERE key_id = $1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            row.hsm = found.as_ref().map(token_object).transpose()?.flatten();
        }
        Ok(Some(row))
    }
}

impl WriteTx {
    /// Stores a key and returns its id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_key(&mut self, k: &NewKey, now: OffsetDateTime) -> Result<KeyId, Error> {
        first(self.insert_keys(&[(k, now)]).await?)
    }

    /// Stores keys, each created at its time; returns their ids in the same order.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_keys(
        &mut self,
        keys: &[(&NewKey, OffsetDateTime)],
    ) -> Result<Vec<KeyId>, Error> {
        let returned = self
            .insert_rows(
                "INSERT INTO keys (refid, key_type, backend, sealed, public_key, created_at)",
                6,
                " RETURNING id, refid",
                keys,
                |q, (k, now)| {
                    q.bind(k.refid.clone())
                        .bind(k.key_type.clone())
                        .bind(k.backend.clone())
                        .bind(k.sealed.clone())
                        .bind(k.public_key.clone())
                        .bind(to_micros(*now))
                },
            )
            .await?;
        let ids = ids_by_refid(&returned, keys.iter().map(|(k, _)| k.refid.as_str()))?;
        for (id, (k, _)) in ids.iter().zip(keys) {
            if let Some(object) = &k.hsm {
                self.insert_token_object(KeyId(*id), object).await?;
            }
        }
        Ok(ids.into_iter().map(KeyId).collect())
    }
}

impl WriteTx {
    /// Deletes key `id`, its sealed material with it, unless a certificate, CA or CSR still
    /// uses it: a renewal that kept its key, or a CSR signed into a certificate, shares it.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_key(&mut self, id: KeyId) -> Result<(), Error> {
        sqlx::query(
            "DELETE FROM keys WHERE id = $1 \
               AND NOT EXISTS (SELECT 1 FROM certificates WHERE key_id = $1) \
               AND NOT EXISTS (SELECT 1 FROM cas WHERE key_id = $1) \
               AND NOT EXISTS (SELECT 1 FROM csrs WHERE key_id = $1)",
        )
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
