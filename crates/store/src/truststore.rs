use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::{Arg, Filter};
use crate::words::TrustSource;
use crate::{Error, Page, PageRequest, Reader, WriteTx, from_micros, to_micros};

/// A certificate of another CA that certmint trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRow {
    /// Integer id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// What it is trusted for: a label such as `trust_anchor`.
    pub purpose: String,
    /// Free notes.
    pub notes: Option<String>,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Serial, hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Self-signed (a root) rather than an intermediate.
    pub is_root: bool,
    /// SHA-256 of the DER, hex.
    pub fingerprint_sha256: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// `manual`, `import` or `system`.
    pub source: TrustSource,
    /// When it was added.
    pub created_at: OffsetDateTime,
}

/// A certificate to trust.
#[derive(Debug, Clone)]
pub struct NewTrusted {
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// What it is trusted for: a label such as `trust_anchor`.
    pub purpose: String,
    /// Free notes.
    pub notes: Option<String>,
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Serial, hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Self-signed.
    pub is_root: bool,
    /// SHA-256 of the DER, hex.
    pub fingerprint_sha256: String,
    /// DER.
    pub der: Vec<u8>,
    /// `manual`, `import` or `system`.
    pub source: TrustSource,
}

/// Counts of the trust store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrustStats {
    /// Every trusted certificate.
    pub total: i64,
    /// Self-signed ones.
    pub root_ca: i64,
    /// The others.
    pub intermediate_ca: i64,
    /// Past their notAfter.
    pub expired: i64,
    /// Not yet past it.
    pub valid: i64,
}

const TRUSTED_COLUMNS: &str = "id, name, description, purpose, notes, subject, issuer, serial, \
    not_before, not_after, is_root, fingerprint_sha256, der, source, created_at";

fn trusted(row: &AnyRow) -> Result<TrustedRow, Error> {
    Ok(TrustedRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        purpose: row.try_get("purpose")?,
        notes: row.try_get("notes")?,
        subject: row.try_get("subject")?,
        issuer: row.try_get("issuer")?,
        serial: row.try_get("serial")?,
        not_before: from_micros(row.try_get("not_before")?),
        not_after: from_micros(row.try_get("not_after")?),
        is_root: row.try_get::<i64, _>("is_root")? != 0,
        fingerprint_sha256: row.try_get("fingerprint_sha256")?,
        der: row.try_get("der")?,
        source: TrustSource::read(row, "source")?,
        created_at: from_micros(row.try_get("created_at")?),
    })
}

impl Reader {
    /// One page of the trust store, by name.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn trusted_certificates(&self, page: PageRequest) -> Result<Page<TrustedRow>, Error> {
        let (rows, total) = Filter::default()
            .fetch_page(
                self,
                TRUSTED_COLUMNS,
                "trusted_certificates",
                "name, id",
                page,
            )
            .await?;
        Ok(Page::counted(
            rows.iter().map(trusted).collect::<Result<_, _>>()?,
            total,
        ))
    }

    /// Trusted certificate `id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn trusted_certificate(&self, id: i64) -> Result<Option<TrustedRow>, Error> {
        Filter::new("id = ?", [Arg::Int(id)])
            .fetch_row(self, TRUSTED_COLUMNS, "trusted_certificates", trusted)
            .await
    }

    /// Counts of the trust store at `now`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn trust_stats(&self, now: OffsetDateTime) -> Result<TrustStats, Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, \
                    CAST(COALESCE(SUM(is_root), 0) AS BIGINT) AS roots, \
                    CAST(COALESCE(SUM(CASE WHEN not_after <= $1 THEN 1 ELSE 0 END), 0) \
                         AS BIGINT) AS expired \
             FROM trusted_certificates",
        )
        .bind(to_micros(now))
        .fetch_one(&self.pool)
        .await?;
        let total: i64 = row.try_get("total")?;
        let roots: i64 = row.try_get("roots")?;
        let expired: i64 = row.try_get("expired")?;
        Ok(TrustStats {
            total,
            root_ca: roots,
            intermediate_ca: total - roots,
            expired,
            valid: total - expired,
        })
    }
}

impl WriteTx {
    /// Stores a trusted certificate and returns its id, or `None` when it is trusted already.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_trusted(
        &mut self,
        t: &NewTrusted,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, Error> {
        let known = sqlx::query(
            "SELECT COUNT(*) AS n FROM trusted_certificates WHERE fingerprint_sha256 = $1",
        )
        .bind(t.fingerprint_sha256.clone())
        .fetch_one(&mut *self.tx)
        .await?;
        if known.try_get::<i64, _>("n")? > 0 {
            return Ok(None);
        }
        let row = sqlx::query(
            "INSERT INTO trusted_certificates (name, description, purpose, notes, subject, \
             issuer, serial, not_before, not_after, is_root, fingerprint_sha256, der, source, \
             created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        )
        .bind(t.name.clone())
        .bind(t.description.clone())
        .bind(t.purpose.clone())
        .bind(t.notes.clone())
        .bind(t.subject.clone())
        .bind(t.issuer.clone())
        .bind(t.serial.clone())
        .bind(to_micros(t.not_before))
        .bind(to_micros(t.not_after))
        .bind(crate::db::flag(t.is_root))
        .bind(t.fingerprint_sha256.clone())
        .bind(t.der.clone())
        .bind(t.source.as_str())
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(Some(row.try_get("id")?))
    }

    /// Removes trusted certificate `id`. Returns false when there is no such certificate.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_trusted(&mut self, id: i64) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM trusted_certificates WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
