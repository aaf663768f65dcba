//! Read-only figures for the console's home page and its search box: table totals, certificate
//! states, certificates per CA, the expiry queue, issuance per day, the newest CAs, and text
//! search. Every figure is
//! counted by the database; rows are fetched only for the short lists shown.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;
use time::{Date, Duration, OffsetDateTime, Time};

use crate::db::{Arg, Filter, like_pattern};
use crate::words::{CertificateStatus, CsrStatus};
use crate::{
    CaId, CertificateFilter, CertificateId, CertificateState, CsrId, Error, Reader, TemplateId,
    from_micros, to_micros,
};

/// Microseconds in a day: stored timestamps divided by this give the UTC day number.
const DAY_MICROS: i64 = 86_400_000_000;

/// How many rows the summarised tables hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Certificates, in any state.
    pub certificates: i64,
    /// Certificate authorities.
    pub cas: i64,
    /// Certificate signing requests, signed or not.
    pub csrs: i64,
    /// CSRs waiting to be signed.
    pub pending_csrs: i64,
    /// Certificate templates.
    pub templates: i64,
    /// User accounts.
    pub users: i64,
    /// User accounts that may log in.
    pub active_users: i64,
    /// ACME accounts, in any state, of every profile.
    pub acme_accounts: i64,
}

/// How many certificates are in each state at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateStates {
    /// Neither revoked nor expired.
    pub active: i64,
    /// Past notAfter, not revoked.
    pub expired: i64,
    /// Revoked or on hold.
    pub revoked: i64,
    /// Active and ending before the horizon asked for.
    pub expiring: i64,
}

/// What short lists show of a certificate (no DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// Integer id.
    pub id: CertificateId,
    /// Public identifier.
    pub refid: String,
    /// Subject common name.
    pub common_name: Option<String>,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Serial, lower-case hex.
    pub serial: String,
    /// SANs as `kind:value`.
    pub sans: Vec<String>,
    /// Issuing CA.
    pub ca_id: Option<CaId>,
    /// `valid` or `revoked`.
    pub status: CertificateStatus,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// When it was stored.
    pub created_at: OffsetDateTime,
}

/// What short lists show of a CA (no DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSummary {
    /// Integer id.
    pub id: CaId,
    /// Public identifier.
    pub refid: String,
    /// Display name.
    pub name: String,
    /// `root` or `intermediate`.
    pub ca_type: String,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Whether it issues.
    pub is_active: bool,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// When it was stored.
    pub created_at: OffsetDateTime,
}

/// What short lists show of a template (no rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSummary {
    /// Integer id.
    pub id: TemplateId,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Shipped with certmint.
    pub builtin: bool,
}

/// What the search box shows of a CSR (no DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrSummary {
    /// Integer id.
    pub id: CsrId,
    /// Public identifier.
    pub refid: String,
    /// Display name.
    pub name: String,
    /// Requested common name.
    pub common_name: Option<String>,
    /// Requested subject, RFC 4514.
    pub subject: String,
    /// `pending` or `signed`.
    pub status: CsrStatus,
    /// When it was stored.
    pub created_at: OffsetDateTime,
}

/// What the search box shows of a user (no password hash, no lockout state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// Integer id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Contact address.
    pub email: Option<String>,
    /// Display name.
    pub full_name: Option<String>,
    /// Role name.
    pub role: String,
    /// Whether the account may log in.
    pub enabled: bool,
}

/// Certificates added and revoked on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    /// The day.
    pub day: Date,
    /// Certificates stored that day.
    pub issued: i64,
    /// Certificates revoked that day (and still revoked).
    pub revoked: i64,
}

const CERT_SUMMARY: &str =
    "id, refid, common_name, subject, serial, sans, ca_id, status, not_after, created_at";

fn certificate_summary(row: &AnyRow) -> Result<CertificateSummary, Error> {
    let sans: String = row.try_get("sans")?;
    Ok(CertificateSummary {
        id: row.try_get("id")?,
        refid: row.try_get("refid")?,
        common_name: row.try_get("common_name")?,
        subject: row.try_get("subject")?,
        serial: row.try_get("serial")?,
        sans: sans.split_whitespace().map(str::to_owned).collect(),
        ca_id: row.try_get("ca_id")?,
        status: CertificateStatus::read(row, "status")?,
        not_after: from_micros(row.try_get("not_after")?),
        created_at: from_micros(row.try_get("created_at")?),
    })
}

const CA_SUMMARY: &str = "id, refid, name, ca_type, subject, is_active, not_after, created_at";

fn ca_summary(row: &AnyRow) -> Result<CaSummary, Error> {
    Ok(CaSummary {
        id: row.try_get("id")?,
        refid: row.try_get("refid")?,
        name: row.try_get("name")?,
        ca_type: row.try_get("ca_type")?,
        subject: row.try_get("subject")?,
        is_active: row.try_get::<i64, _>("is_active")? != 0,
        not_after: from_micros(row.try_get("not_after")?),
        created_at: from_micros(row.try_get("created_at")?),
    })
}

fn template_summary(row: &AnyRow) -> Result<TemplateSummary, Error> {
    Ok(TemplateSummary {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        builtin: row.try_get::<i64, _>("builtin")? != 0,
    })
}

const CSR_SUMMARY: &str = "id, refid, name, common_name, subject, status, created_at";

fn csr_summary(row: &AnyRow) -> Result<CsrSummary, Error> {
    Ok(CsrSummary {
        id: row.try_get("id")?,
        refid: row.try_get("refid")?,
        name: row.try_get("name")?,
        common_name: row.try_get("common_name")?,
        subject: row.try_get("subject")?,
        status: CsrStatus::read(row, "status")?,
        created_at: from_micros(row.try_get("created_at")?),
    })
}

const USER_SUMMARY: &str = "id, username, email, full_name, role, enabled";

fn user_summary(row: &AnyRow) -> Result<UserSummary, Error> {
    Ok(UserSummary {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        full_name: row.try_get("full_name")?,
        role: row.try_get("role")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
    })
}

/// Start of `day` in stored form.
fn day_start(day: Date) -> i64 {
    to_micros(day.with_time(Time::MIDNIGHT).assume_utc())
}

impl Reader {
    /// How many rows each summarised table holds.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn totals(&self) -> Result<Totals, Error> {
        let sql = "SELECT (SELECT COUNT(*) FROM certificates) AS certificates, \
                    (SELECT COUNT(*) FROM cas) AS cas, \
                    (SELECT COUNT(*) FROM csrs) AS csrs, \
                    (SELECT COUNT(*) FROM csrs WHERE status = 'pending') AS pending_csrs, \
                    (SELECT COUNT(*) FROM templates) AS templates, \
                    (SELECT COUNT(*) FROM users) AS users, \
                    (SELECT COUNT(*) FROM users WHERE enabled = 1) AS active_users, \
                    (SELECT COUNT(*) FROM acme_accounts) AS acme_accounts";
        let row = self.row(sql.to_owned(), &[]).await?;
        Ok(Totals {
            certificates: row.try_get("certificates")?,
            cas: row.try_get("cas")?,
            csrs: row.try_get("csrs")?,
            pending_csrs: row.try_get("pending_csrs")?,
            templates: row.try_get("templates")?,
            users: row.try_get("users")?,
            active_users: row.try_get("active_users")?,
            acme_accounts: row.try_get("acme_accounts")?,
        })
    }

    /// How many certificates are in each state at `now`; `expiring` counts those ending by
    /// `expiring_until`. The states mean what the certificate list's filters mean.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn certificate_states(
        &self,
        now: OffsetDateTime,
        expiring_until: OffsetDateTime,
    ) -> Result<CertificateStates, Error> {
        let count = |state| {
            let filter = CertificateFilter::in_state(state);
            async move { self.count_certificates(&filter, now).await }
        };
        Ok(CertificateStates {
            active: count(CertificateState::Active).await?,
            expired: count(CertificateState::Expired).await?,
            revoked: count(CertificateState::Revoked).await?,
            expiring: count(CertificateState::ExpiringBefore(expiring_until)).await?,
        })
    }

    /// Up to `limit` active certificates ending after `now` and by `until`, soonest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn expiring_certificates(
        &self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<CertificateSummary>, Error> {
        let filter = CertificateFilter::in_state(CertificateState::ExpiringBefore(until))
            .to_sql(self.backend(), now);
        self.matching(
            &filter,
            CERT_SUMMARY,
            "certificates",
            "not_after, id",
            limit,
        )
        .await?
        .iter()
        .map(certificate_summary)
        .collect()
    }

    /// Certificates stored and revoked on each of the `days` UTC days that end with `now`'s,
    /// oldest first, every day present (zero when nothing happened).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn certificate_trend(
        &self,
        now: OffsetDateTime,
        days: u32,
    ) -> Result<Vec<DayCount>, Error> {
        let (first, last) = day_range(now, days);
        let (from, to) = (day_start(first), day_start(last) + DAY_MICROS);
        let issued = self.per_day("created_at", "", from, to).await?;
        // The status condition lets the status index skip unrevoked rows.
        let revoked = self
            .per_day("revoked_at", "status = 'revoked' AND ", from, to)
            .await?;
        let on = |counts: &HashMap<i64, i64>, day: Date| {
            counts
                .get(&(day_start(day) / DAY_MICROS))
                .copied()
                .unwrap_or(0)
        };
        Ok(std::iter::successors(Some(first), |d| d.next_day())
            .take_while(|d| *d <= last)
            .map(|day| DayCount {
                day,
                issued: on(&issued, day),
                revoked: on(&revoked, day),
            })
            .collect())
    }

    /// How many certificates have `column` in `from..to`, by UTC day number.
    async fn per_day(
        &self,
        column: &str,
        condition: &str,
        from: i64,
        to: i64,
    ) -> Result<HashMap<i64, i64>, Error> {
        let sql = format!(
            "SELECT {column} / {DAY_MICROS} AS d, COUNT(*) AS n FROM certificates \
             WHERE {condition}{column} >= $1 AND {column} < $2 GROUP BY {column} / {DAY_MICROS}"
        );
        let rows = self.rows(sql, &[Arg::Int(from), Arg::Int(to)]).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("d")?, row.try_get("n")?)))
            .collect()
    }

    /// How many certificates each CA issued, by CA id; CAs that issued none are absent. One
    /// grouped count over the `(ca_id, id)` index, whatever the number of CAs.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn certificates_per_ca(&self) -> Result<HashMap<CaId, i64>, Error> {
        let sql =
            "SELECT ca_id, COUNT(*) AS n FROM certificates WHERE ca_id IS NOT NULL GROUP BY ca_id";
        let rows = self.rows(sql.to_owned(), &[]).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("ca_id")?, row.try_get("n")?)))
            .collect()
    }

    /// The `limit` CAs stored most recently, newest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn recent_cas(&self, limit: u32) -> Result<Vec<CaSummary>, Error> {
        let sql =
            format!("SELECT {CA_SUMMARY} FROM cas ORDER BY created_at DESC, id DESC LIMIT $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ca_summary).collect()
    }

    /// Up to `limit` certificates, newest first, that hold `text` as
    /// [`crate::certificates::text_search`] finds it.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn search_certificates(
        &self,
        text: &str,
        limit: u32,
    ) -> Result<Vec<CertificateSummary>, Error> {
        let mut filter = Filter::default();
        crate::certificates::text_search(&mut filter, self.backend(), text);
        self.matching(&filter, CERT_SUMMARY, "certificates", "id DESC", limit)
            .await?
            .iter()
            .map(certificate_summary)
            .collect()
    }

    /// Up to `limit` CAs, by name, whose name or subject contains `text` (any case).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn search_cas(&self, text: &str, limit: u32) -> Result<Vec<CaSummary>, Error> {
        let pattern = like_pattern(text);
        let mut filter = Filter::default();
        filter.and(
            "(LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(subject) LIKE ? ESCAPE '\\')",
            vec![Arg::Text(pattern); 2],
        );
        self.matching(&filter, CA_SUMMARY, "cas", "name, id", limit)
            .await?
            .iter()
            .map(ca_summary)
            .collect()
    }

    /// Up to `limit` templates, by name, whose name contains `text` (any case).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn search_templates(
        &self,
        text: &str,
        limit: u32,
    ) -> Result<Vec<TemplateSummary>, Error> {
        let mut filter = Filter::default();
        filter.and(
            "LOWER(name) LIKE ? ESCAPE '\\'",
            [Arg::Text(like_pattern(text))],
        );
        self.matching(
            &filter,
            "id, name, description, builtin",
            "templates",
            "name, id",
            limit,
        )
        .await?
        .iter()
        .map(template_summary)
        .collect()
    }

    /// Up to `limit` CSRs, newest first, whose name, common name, SANs or subject contain
    /// `text` (any case).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn search_csrs(&self, text: &str, limit: u32) -> Result<Vec<CsrSummary>, Error> {
        let mut filter = Filter::default();
        filter.and(
            "(LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(common_name, '')) LIKE ? ESCAPE '\\' \
             OR LOWER(sans) LIKE ? ESCAPE '\\' OR LOWER(subject) LIKE ? ESCAPE '\\')",
            vec![Arg::Text(like_pattern(text)); 4],
        );
        self.matching(&filter, CSR_SUMMARY, "csrs", "id DESC", limit)
            .await?
            .iter()
            .map(csr_summary)
            .collect()
    }

    /// Up to `limit` users, by username, whose username, full name or email contains `text`
    /// (any case).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn search_users(&self, text: &str, limit: u32) -> Result<Vec<UserSummary>, Error> {
        let mut filter = Filter::default();
        filter.and(
            "(LOWER(username) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(full_name, '')) LIKE ? ESCAPE '\\' \
             OR LOWER(COALESCE(email, '')) LIKE ? ESCAPE '\\')",
            vec![Arg::Text(like_pattern(text)); 3],
        );
        self.matching(&filter, USER_SUMMARY, "users", "username, id", limit)
            .await?
            .iter()
            .map(user_summary)
            .collect()
    }

    async fn matching(
        &self,
        filter: &Filter,
        columns: &str,
        from: &str,
        order: &str,
        limit: u32,
    ) -> Result<Vec<AnyRow>, Error> {
        let sql = format!(
            "SELECT {columns} FROM {from}{} ORDER BY {order} LIMIT {}",
            filter.where_sql(),
            filter.placeholder()
        );
        self.rows(sql, &filter.args_then([Arg::Int(i64::from(limit))]))
            .await
    }
}

/// The first and last of the `days` UTC days that end with `now`'s.
fn day_range(now: OffsetDateTime, days: u32) -> (Date, Date) {
    let last = now.to_offset(time::UtcOffset::UTC).date();
    (last - Duration::days(i64::from(days) - 1), last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_ranges_end_on_the_utc_day_of_now() -> Result<(), time::error::ComponentRange> {
        let day = |d| Date::from_calendar_date(2026, time::Month::January, d);
        let now = day(30)?
            .with_hms(23, 59, 0)?
            .assume_offset(time::UtcOffset::from_hms(-2, 0, 0)?);
        assert_eq!(day_range(now, 30), (day(2)?, day(31)?));
        assert_eq!(day_range(now, 1), (day(31)?, day(31)?));
        Ok(())
    }
}
