use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::{Error, from_micros};

/// What CA and certificate rows both record of an X.509 certificate: the DER and the columns
/// people search and sort by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFields {
    /// Subject, RFC 4514.
    pub subject: String,
    /// Subject common name.
    pub common_name: Option<String>,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Serial, lower-case hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Key algorithm and size, e.g. `EC P-256`.
    pub key_type: String,
    /// Signature algorithm name.
    pub signature_algorithm: String,
    /// Subject key identifier, hex.
    pub subject_key_id: Option<String>,
    /// Authority key identifier, hex.
    pub authority_key_id: Option<String>,
    /// SHA-256 of the DER, hex.
    pub fingerprint_sha256: String,
    /// The certificate.
    pub der: Vec<u8>,
}

/// The column list, in the order [`CertFields::bind`] binds them.
pub(crate) const CERT_COLUMNS: &str = "subject, common_name, issuer, serial, not_before, \
    not_after, key_type, signature_algorithm, subject_key_id, authority_key_id, \
    fingerprint_sha256, der";

/// How many values [`CertFields::bind`] binds.
pub(crate) const CERT_COLUMN_COUNT: usize = 12;

impl CertFields {
    pub(crate) fn read(row: &AnyRow) -> Result<Self, Error> {
        Ok(Self {
            subject: row.try_get("subject")?,
            common_name: row.try_get("common_name")?,
            issuer: row.try_get("issuer")?,
            serial: row.try_get("serial")?,
            not_before: from_micros(row.try_get("not_before")?),
            not_after: from_micros(row.try_get("not_after")?),
            key_type: row.try_get("key_type")?,
            signature_algorithm: row.try_get("signature_algorithm")?,
            subject_key_id: row.try_get("subject_key_id")?,
            authority_key_id: row.try_get("authority_key_id")?,
            fingerprint_sha256: row.try_get("fingerprint_sha256")?,
            der: row.try_get("der")?,
        })
    }

    pub(crate) fn bind<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        q.bind(self.subject.clone())
            .bind(self.common_name.clone())
            .bind(self.issuer.clone())
            .bind(self.serial.clone())
            .bind(crate::to_micros(self.not_before))
            .bind(crate::to_micros(self.not_after))
            .bind(self.key_type.clone())
            .bind(self.signature_algorithm.clone())
            .bind(self.subject_key_id.clone())
            .bind(self.authority_key_id.clone())
            .bind(self.fingerprint_sha256.clone())
            .bind(self.der.clone())
    }
}

/// `$from, $from+1, …` placeholders for the certificate columns.
pub(crate) fn placeholders(from: usize) -> String {
    (from..from + CERT_COLUMN_COUNT)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
