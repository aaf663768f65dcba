//! Read-only queries behind the reports, and the claims that keep a scheduled report from
//! going out twice. Every figure is counted or grouped by the database; certificate rows come
//! without their DER and never more than the caller's limit.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::Arg;
use crate::words::{CertificateSource, CertificateStatus};
use crate::{CaId, CertificateFilter, Error, Reader, Store, from_micros, to_micros};

/// Microseconds in the longest validity the CA/Browser Forum allows a TLS server certificate
/// (398 days).
const TLS_VALIDITY_MICROS: i64 = 398 * 86_400_000_000;

/// What a report shows of a certificate: its columns without the DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportCertificate {
    /// Public identifier.
    pub refid: String,
    /// Subject common name.
    pub common_name: Option<String>,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Serial, lower-case hex.
    pub serial: String,
    /// SANs as `kind:value`.
    pub sans: Vec<String>,
    /// Issuing CA, when certmint holds it.
    pub ca_id: Option<CaId>,
    /// `valid` or `revoked`.
    pub status: CertificateStatus,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Key algorithm and size, e.g. `EC P-256`.
    pub key_type: String,
    /// Signature algorithm name.
    pub signature_algorithm: String,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// RFC 5280 reason name.
    pub revocation_reason: Option<String>,
    /// Whether it is a CA certificate.
    pub is_ca: bool,
    /// Where it came from.
    pub source: CertificateSource,
    /// When it was stored.
    pub created_at: OffsetDateTime,
}

/// The order of a certificate report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOrder {
    /// Soonest expiry first.
    Expiry,
    /// Most recently revoked first.
    Revocation,
    /// Oldest first, by id.
    Stored,
}

/// How many certificates share one combination of the properties compliance looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateProfile {
    /// Key algorithm and size.
    pub key_type: String,
    /// Signature algorithm name.
    pub signature_algorithm: String,
    /// CA certificates.
    pub is_ca: bool,
    /// `active`, `expired` or `revoked` at the time asked for.
    pub state: String,
    /// Valid for more than 398 days.
    pub long_validity: bool,
    /// Names at least one DNS name (a TLS server certificate, for the validity rule).
    pub has_dns_name: bool,
    /// Where they came from.
    pub source: CertificateSource,
    /// How many.
    pub count: i64,
}

/// One audit action over a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionCount {
    /// The action.
    pub action: String,
    /// Records.
    pub total: i64,
    /// Of them, failures.
    pub failures: i64,
    /// The newest record's time.
    pub last_at: OffsetDateTime,
}

const COLUMNS: &str = "refid, common_name, subject, issuer, serial, sans, ca_id, status, \
    not_before, not_after, key_type, signature_algorithm, revoked_at, revocation_reason, is_ca, \
    source, created_at";

fn report_certificate(row: &AnyRow) -> Result<ReportCertificate, Error> {
    let sans: String = row.try_get("sans")?;
    Ok(ReportCertificate {
        refid: row.try_get("refid")?,
        common_name: row.try_get("common_name")?,
        subject: row.try_get("subject")?,
        issuer: row.try_get("issuer")?,
        serial: row.try_get("serial")?,
        sans: sans.split_whitespace().map(str::to_owned).collect(),
        ca_id: row.try_get("ca_id")?,
        status: CertificateStatus::read(row, "status")?,
        not_before: from_micros(row.try_get("not_before")?),
        not_after: from_micros(row.try_get("not_after")?),
        key_type: row.try_get("key_type")?,
        signature_algorithm: row.try_get("signature_algorithm")?,
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(from_micros),
        revocation_reason: row.try_get("revocation_reason")?,
        is_ca: row.try_get::<i64, _>("is_ca")? != 0,
        source: CertificateSource::read(row, "source")?,
        created_at: from_micros(row.try_get("created_at")?),
    })
}

impl Reader {
    /// Up to `limit` certificates matching `filter` at `now`, in `order`, without their DER.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn report_certificates(
        &self,
        filter: &CertificateFilter,
        now: OffsetDateTime,
        order: ReportOrder,
        limit: u32,
    ) -> Result<Vec<ReportCertificate>, Error> {
        let filter = filter.to_sql(self.backend(), now);
        let order = match order {
            ReportOrder::Expiry => "not_after, id",
            ReportOrder::Revocation => "revoked_at DESC, id DESC",
            ReportOrder::Stored => "id",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM certificates{} ORDER BY {order} LIMIT {}",
            filter.where_sql(),
            filter.placeholder()
        );
        let args = filter.args_then([Arg::Int(i64::from(limit))]);
        self.rows(sql, &args)
            .await?
            .iter()
            .map(report_certificate)
            .collect()
    }

    /// Every certificate counted by the properties compliance looks at, at `now`: one row per
    /// combination that occurs, so the answer stays small however many certificates there are.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn certificate_profiles(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<CertificateProfile>, Error> {
        let sql = format!(
            "SELECT key_type, signature_algorithm, is_ca, \
               CASE WHEN status = 'revoked' THEN 'revoked' \
                    WHEN not_after <= $1 THEN 'expired' ELSE 'active' END AS state, \
               CASE WHEN not_after - not_before > {TLS_VALIDITY_MICROS} THEN 1 ELSE 0 END \
                 AS long_validity, \
               CASE WHEN sans LIKE '%dns:%' THEN 1 ELSE 0 END AS has_dns_name, \
               source, COUNT(*) AS n \
             FROM certificates GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7"
        );
        let rows = self.rows(sql, &[Arg::Int(to_micros(now))]).await?;
        rows.iter()
            .map(|row| {
                Ok(CertificateProfile {
                    key_type: row.try_get("key_type")?,
                    signature_algorithm: row.try_get("signature_algorithm")?,
                    is_ca: row.try_get::<i64, _>("is_ca")? != 0,
                    state: row.try_get("state")?,
                    long_validity: row.try_get::<i64, _>("long_validity")? != 0,
                    has_dns_name: row.try_get::<i64, _>("has_dns_name")? != 0,
                    source: CertificateSource::read(row, "source")?,
                    count: row.try_get("n")?,
                })
            })
            .collect()
    }

    /// Audit records since `since`, counted per action, the busiest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn audit_action_counts(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<ActionCount>, Error> {
        let sql = "SELECT action, COUNT(*) AS n, \
                     CAST(COALESCE(SUM(1 - success), 0) AS BIGINT) AS failures, \
                     MAX(created_at) AS last_at \
                   FROM audit_log WHERE created_at >= $1 \
                   GROUP BY action ORDER BY n DESC, action";
        let rows = self
            .rows(sql.to_owned(), &[Arg::Int(to_micros(since))])
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ActionCount {
                    action: row.try_get("action")?,
                    total: row.try_get("n")?,
                    failures: row.try_get("failures")?,
                    last_at: from_micros(row.try_get("last_at")?),
                })
            })
            .collect()
    }
}

impl Store {
    /// Claims the delivery of scheduled report `report_type` for occurrence `period`: true
    /// for the one caller that claims it first, false for every later one.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn claim_report_delivery(
        &self,
        report_type: &str,
        period: &str,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "INSERT INTO report_deliveries (report_type, period, claimed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (report_type, period) DO NOTHING",
        )
        .bind(report_type.to_owned())
        .bind(period.to_owned())
        .bind(to_micros(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records how a claimed delivery ended: `error` is why it failed, `None` when it went out.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn finish_report_delivery(
        &self,
        report_type: &str,
        period: &str,
        now: OffsetDateTime,
        error: Option<&str>,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE report_deliveries SET finished_at = $1, error = $2 \
             WHERE report_type = $3 AND period = $4",
        )
        .bind(to_micros(now))
        .bind(error.map(str::to_owned))
        .bind(report_type.to_owned())
        .bind(period.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
