use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::{Arg, Filter};
use crate::words::{CsrSource, CsrStatus};
use crate::{
    CertificateId, CsrId, Error, KeyId, Page, PageRequest, Reader, WriteTx, from_micros, to_micros,
};

/// A certificate signing request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrRow {
    /// Integer id.
    pub id: CsrId,
    /// Public identifier.
    pub refid: String,
    /// Display name.
    pub name: String,
    /// Requested subject, RFC 4514.
    pub subject: String,
    /// Requested common name.
    pub common_name: Option<String>,
    /// Requested SANs, `kind:value`.
    pub sans: Vec<String>,
    /// e.g. `EC P-256`.
    pub key_type: String,
    /// The CSR's signature algorithm.
    pub signature_algorithm: String,
    /// Public key, DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// The private key, when certmint holds it.
    pub key_id: Option<KeyId>,
    /// `pending` or `signed`.
    pub status: CsrStatus,
    /// The certificate it was signed into.
    pub certificate_id: Option<CertificateId>,
    /// `uploaded` or `generated`.
    pub source: CsrSource,
    /// The CSR, DER.
    pub der: Vec<u8>,
    /// Who added it.
    pub owner_id: Option<i64>,
    /// When it was added.
    pub created_at: OffsetDateTime,
    /// When it was signed.
    pub signed_at: Option<OffsetDateTime>,
}

/// A CSR to store.
#[derive(Debug, Clone)]
pub struct NewCsr {
    /// Public identifier.
    pub refid: String,
    /// Display name.
    pub name: String,
    /// Requested subject, RFC 4514.
    pub subject: String,
    /// Requested common name.
    pub common_name: Option<String>,
    /// Requested SANs, `kind:value`.
    pub sans: Vec<String>,
    /// e.g. `EC P-256`.
    pub key_type: String,
    /// The CSR's signature algorithm.
    pub signature_algorithm: String,
    /// Public key.
    pub public_key: Vec<u8>,
    /// The private key, when certmint holds it.
    pub key_id: Option<KeyId>,
    /// `uploaded` or `generated`.
    pub source: CsrSource,
    /// The CSR, DER.
    pub der: Vec<u8>,
    /// Who added it.
    pub owner_id: Option<i64>,
}

const CSR_COLUMNS: &str = "id, refid, name, subject, common_name, sans, key_type, \
    signature_algorithm, public_key, key_id, status, certificate_id, source, der, owner_id, \
    created_at, signed_at";

fn csr(row: &AnyRow) -> Result<CsrRow, Error> {
    let sans: String = row.try_get("sans")?;
    Ok(CsrRow {
        id: row.try_get("id")?,
        refid: row.try_get("refid")?,
        name: row.try_get("name")?,
        subject: row.try_get("subject")?,
        common_name: row.try_get("common_name")?,
        sans: sans.split_whitespace().map(str::to_owned).collect(),
        key_type: row.try_get("key_type")?,
        signature_algorithm: row.try_get("signature_algorithm")?,
        public_key: row.try_get("public_key")?,
        key_id: row.try_get("key_id")?,
        status: CsrStatus::read(row, "status")?,
        certificate_id: row.try_get("certificate_id")?,
        source: CsrSource::read(row, "source")?,
        der: row.try_get("der")?,
        owner_id: row.try_get("owner_id")?,
        created_at: from_micros(row.try_get("created_at")?),
        signed_at: row.try_get::<Option<i64>, _>("signed_at")?.map(from_micros),
    })
}

impl Reader {
    /// One page of CSRs, newest first; only those with `status` when it is given. Signed ones
    /// (the history) come newest-signed first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn csrs(
        &self,
        status: Option<CsrStatus>,
        page: PageRequest,
    ) -> Result<Page<CsrRow>, Error> {
        let mut filter = Filter::default();
        if let Some(status) = status {
            filter.and("status = ?", [Arg::Text(status.as_str().to_owned())]);
        }
        let order = if status == Some(CsrStatus::Signed) {
            "signed_at DESC, id DESC"
        } else {
            "id DESC"
        };
        let (rows, total) = filter
            .fetch_page(self, CSR_COLUMNS, "csrs", order, page)
            .await?;
        Ok(Page::counted(
            rows.iter().map(csr).collect::<Result<_, _>>()?,
            total,
        ))
    }

    /// CSR `id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn csr(&self, id: CsrId) -> Result<Option<CsrRow>, Error> {
        Filter::new("id = ?", [Arg::Int(id.0)])
            .fetch_row(self, CSR_COLUMNS, "csrs", csr)
            .await
    }
}

impl WriteTx {
    /// Stores a pending CSR and returns its id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_csr(&mut self, c: &NewCsr, now: OffsetDateTime) -> Result<CsrId, Error> {
        let row = sqlx::query(
            "INSERT INTO csrs (refid, name, subject, common_name, sans, key_type, \
             signature_algorithm, public_key, key_id, status, source, der, owner_id, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12, $13, $13) \
             RETURNING id",
        )
        .bind(c.refid.clone())
        .bind(c.name.clone())
        .bind(c.subject.clone())
        .bind(c.common_name.clone())
        .bind(c.sans.join(" "))
        .bind(c.key_type.clone())
        .bind(c.signature_algorithm.clone())
        .bind(c.public_key.clone())
        .bind(c.key_id)
        .bind(c.source.as_str())
        .bind(c.der.clone())
        .bind(c.owner_id)
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Whether CSR `id` exists and waits to be signed.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn csr_pending(&mut self, id: CsrId) -> Result<bool, Error> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM csrs WHERE id = $1 AND status = 'pending'")
                .bind(id)
                .fetch_one(&mut *self.tx)
                .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Marks pending CSR `id` signed into `certificate_id`. Returns false when it is not
    /// pending (signed meanwhile, or gone), so that one CSR is never signed twice.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn mark_csr_signed(
        &mut self,
        id: CsrId,
        certificate_id: CertificateId,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE csrs SET status = 'signed', certificate_id = $1, signed_at = $2, \
             updated_at = $2 WHERE id = $3 AND status = 'pending'",
        )
        .bind(certificate_id)
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Links CSR `id` to the private key `key_id`, and the certificate it was signed into
    /// when that has no key yet.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_csr_key(
        &mut self,
        id: CsrId,
        key_id: KeyId,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query("UPDATE csrs SET key_id = $1, updated_at = $2 WHERE id = $3")
            .bind(key_id)
            .bind(to_micros(now))
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "UPDATE certificates SET key_id = $1, updated_at = $2 \
             WHERE key_id IS NULL AND id = (SELECT certificate_id FROM csrs WHERE id = $3)",
        )
        .bind(key_id)
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Deletes CSR `id`, and its private key unless a certificate uses it. Returns false when
    /// there is no such CSR.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_csr(&mut self, id: CsrId) -> Result<bool, Error> {
        let row = sqlx::query("DELETE FROM csrs WHERE id = $1 RETURNING key_id")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        let Some(row) = row else { return Ok(false) };
        if let Some(key_id) = row.try_get::<Option<KeyId>, _>("key_id")? {
            self.delete_key(key_id).await?;
        }
        Ok(true)
    }
}
