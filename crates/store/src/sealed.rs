//! The columns that hold blobs sealed by the vault, for the master-key rotation: counts by
//! the header each blob starts with, batches of the blobs not sealed under a version yet, and
//! their replacement.
//!
//! A blob's first bytes name the master-key version it was sealed under (see the vault), so
//! each question here is a comparison of a prefix, the same on SQLite and PostgreSQL
//! (`substr` takes bytes of a BLOB and of a `bytea` alike).

use sqlx::Row;

use crate::{Error, Reader, WriteTx};

/// A column of sealed blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealedColumn {
    /// Software private keys (`keys.sealed`): of CAs, of certificates, of CSRs.
    Keys,
    /// Webhook signing secrets.
    WebhookSecrets,
    /// ACME external account binding keys.
    AcmeEabKeys,
    /// The key ACME nonces are made with.
    AcmeNonceKey,
    /// Users' TOTP secrets.
    TotpSecrets,
    /// Single sign-on providers' client secrets and bind passwords.
    SsoSecrets,
    /// HSM providers' user PINs.
    HsmPins,
}

impl SealedColumn {
    /// Every column that holds sealed blobs.
    pub const ALL: [Self; 7] = [
        Self::Keys,
        Self::WebhookSecrets,
        Self::AcmeEabKeys,
        Self::AcmeNonceKey,
        Self::TotpSecrets,
        Self::SsoSecrets,
        Self::HsmPins,
    ];

    /// Table and column.
    fn place(self) -> (&'static str, &'static str) {
        match self {
            Self::Keys => ("keys", "sealed"),
            Self::WebhookSecrets => ("webhook_endpoints", "secret"),
            Self::AcmeEabKeys => ("acme_eab_keys", "hmac_key"),
            Self::AcmeNonceKey => ("acme_state", "nonce_key"),
            Self::TotpSecrets => ("user_totp", "secret"),
            Self::SsoSecrets => ("sso_providers", "secret"),
            Self::HsmPins => ("hsm_providers", "pin"),
        }
    }

    /// What a blob of this column is, as [`SealedCount::kind`] names it (`t` is the row).
    fn kind(self) -> &'static str {
        match self {
            // A key serves the first of these that holds it; a certificate's key may also be
            // its CSR's.
            Self::Keys => {
                "CASE WHEN EXISTS (SELECT 1 FROM cas c WHERE c.key_id = t.id) THEN 'ca_key' \
                 WHEN EXISTS (SELECT 1 FROM certificates c WHERE c.key_id = t.id) \
                   THEN 'certificate_key' \
                 WHEN EXISTS (SELECT 1 FROM csrs c WHERE c.key_id = t.id) THEN 'csr_key' \
                 ELSE 'other_key' END"
            }
            Self::WebhookSecrets => "'webhook_secret'",
            Self::AcmeEabKeys => "'acme_eab_key'",
            Self::AcmeNonceKey => "'acme_nonce_key'",
            Self::TotpSecrets => "'totp_secret'",
            Self::SsoSecrets => "'sso_secret'",
            Self::HsmPins => "'hsm_pin'",
        }
    }

    /// The column that binds a blob to its row (the vault's context), if any.
    fn binding(self) -> &'static str {
        match self {
            Self::Keys => "refid",
            Self::WebhookSecrets
            | Self::AcmeEabKeys
            | Self::AcmeNonceKey
            | Self::TotpSecrets
            | Self::SsoSecrets
            | Self::HsmPins => "CAST(NULL AS TEXT)",
        }
    }
}

/// How many blobs of one kind start with one header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCount {
    /// `ca_key`, `certificate_key`, `csr_key`, `other_key`, `webhook_secret`,
    /// `acme_eab_key`, `acme_nonce_key`, `totp_secret`, `sso_secret` or `hsm_pin`.
    pub kind: String,
    /// The blob's first `header_len` bytes when it starts with the versioned format byte,
    /// otherwise its first byte alone.
    pub header: Vec<u8>,
    /// How many.
    pub count: i64,
}

/// A blob to seal again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlob {
    /// Its row.
    pub id: i64,
    /// What binds it to its row: the key's refid, for [`SealedColumn::Keys`].
    pub binding: Option<String>,
    /// The blob as stored.
    pub sealed: Vec<u8>,
}

impl Reader {
    /// The blobs of `column` counted by kind and header: the header is the first `header_len`
    /// bytes of blobs starting with `versioned` (the format that names its version), the
    /// first byte of any other.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn sealed_counts(
        &self,
        column: SealedColumn,
        versioned: u8,
        header_len: usize,
    ) -> Result<Vec<SealedCount>, Error> {
        let (table, col) = column.place();
        let kind = column.kind();
        let sql = format!(
            "SELECT kind, head, COUNT(*) AS n FROM (\
               SELECT {kind} AS kind, \
                 CASE WHEN substr(t.{col}, 1, 1) = $1 THEN substr(t.{col}, 1, {header_len}) \
                   ELSE substr(t.{col}, 1, 1) END AS head \
               FROM {table} t WHERE t.{col} IS NOT NULL) s \
             GROUP BY kind, head"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(vec![versioned])
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SealedCount {
                    kind: row.try_get("kind")?,
                    header: row.try_get("head")?,
                    count: row.try_get("n")?,
                })
            })
            .collect()
    }

    /// How many blobs of `column` do not start with `header`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn sealed_outside(&self, column: SealedColumn, header: &[u8]) -> Result<i64, Error> {
        let (table, col) = column.place();
        let sql = format!(
            "SELECT COUNT(*) FROM {table} WHERE {col} IS NOT NULL \
             AND substr({col}, 1, {}) <> $1",
            header.len()
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(header.to_vec())
            .fetch_one(&self.pool)
            .await?)
    }

    /// Up to `limit` blobs of `column` that do not start with `header`, in row order after
    /// row `after`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn sealed_batch(
        &self,
        column: SealedColumn,
        header: &[u8],
        after: i64,
        limit: u32,
    ) -> Result<Vec<SealedBlob>, Error> {
        let (table, col) = column.place();
        let binding = column.binding();
        let sql = format!(
            "SELECT id, {binding} AS binding, {col} AS sealed FROM {table} \
             WHERE {col} IS NOT NULL AND id > $1 AND substr({col}, 1, {}) <> $2 \
             ORDER BY id LIMIT $3",
            header.len()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(header.to_vec())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SealedBlob {
                    id: row.try_get("id")?,
                    binding: row.try_get("binding")?,
                    sealed: row.try_get("sealed")?,
                })
            })
            .collect()
    }
}

impl WriteTx {
    /// Replaces blob `old` of row `id` in `column` with `new`; false when the row is gone or
    /// its blob changed since it was read (then the new value was sealed by whoever changed
    /// it, under the current key).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn reseal(
        &mut self,
        column: SealedColumn,
        id: i64,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, Error> {
        let (table, col) = column.place();
        let sql = format!("UPDATE {table} SET {col} = $1 WHERE id = $2 AND {col} = $3");
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.to_vec())
            .bind(id)
            .bind(old.to_vec())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
