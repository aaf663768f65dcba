//! Auto-renewal: each certificate's own policy (when it overrides its template's), when the
//! policy in force makes it due, and the backoff after failed attempts.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::flag;
use crate::{CertificateId, Error, Reader, TemplateId, WriteTx, from_micros, to_micros};

/// When a policy renews: days before `not_after`, or once this share of the lifetime (in
/// millionths) remains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewAt {
    /// Days before `not_after`.
    DaysBefore(i64),
    /// Millionths of the lifetime left.
    LifetimePpm(i64),
}

/// A certificate's own policy, which overrides its template's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnRenewalPolicy {
    /// Whether it is renewed.
    pub enabled: bool,
    /// When, with `enabled`.
    pub at: Option<RenewAt>,
    /// `same_key` or `rekey`, with `enabled`.
    pub key_policy: Option<String>,
}

/// A certificate's auto-renewal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoRenewalRow {
    /// The certificate.
    pub certificate_id: CertificateId,
    /// Its own policy; `None` when it follows its template.
    pub own: Option<OwnRenewalPolicy>,
    /// When the policy in force makes it due; `None` when off, renewed, revoked or expired.
    pub due_at: Option<OffsetDateTime>,
    /// Failed attempts since the last success or policy change.
    pub attempts: i64,
    /// No attempt before this, after a failure.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The last attempt.
    pub last_attempt_at: Option<OffsetDateTime>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// A certificate due for renewal, with what its notices need.
#[derive(Debug, Clone)]
pub struct DueRenewal {
    /// Its auto-renewal row.
    pub row: AutoRenewalRow,
    /// Its public id.
    pub refid: String,
    /// Its common name, or subject.
    pub name: String,
    /// Its serial number, hex.
    pub serial: String,
    /// When it expires.
    pub not_after: OffsetDateTime,
    /// Its template, whose policy applies without its own.
    pub template_id: Option<TemplateId>,
    /// Its owner's email address, when it has an owner with one.
    pub owner_email: Option<String>,
}

/// Where a page of due renewals starts: after this `(due_at, certificate_id)`.
pub type RenewalCursor = (OffsetDateTime, CertificateId);

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn row(r: &AnyRow) -> Result<AutoRenewalRow, Error> {
    let enabled: Option<i64> = r.try_get("enabled")?;
    let days: Option<i64> = r.try_get("days_before")?;
    let ppm: Option<i64> = r.try_get("lifetime_ppm")?;
    let key_policy: Option<String> = r.try_get("key_policy")?;
    let own = enabled.map(|e| OwnRenewalPolicy {
        enabled: e != 0,
        at: days
            .map(RenewAt::DaysBefore)
            .or(ppm.map(RenewAt::LifetimePpm)),
        key_policy,
    });
    Ok(AutoRenewalRow {
        certificate_id: CertificateId(r.try_get("certificate_id")?),
        own,
        due_at: r.try_get::<Option<i64>, _>("due_at")?.map(from_micros),
        attempts: r.try_get("attempts")?,
        next_attempt_at: r
            .try_get::<Option<i64>, _>("next_attempt_at")?
            .map(from_micros),
        last_attempt_at: r
            .try_get::<Option<i64>, _>("last_attempt_at")?
            .map(from_micros),
        last_error: r.try_get("last_error")?,
    })
}

const ROW_COLUMNS: &str = "r.certificate_id, r.enabled, r.days_before, r.lifetime_ppm, \
    r.key_policy, r.due_at, r.attempts, r.next_attempt_at, r.last_attempt_at, r.last_error";

impl Reader {
    /// Certificate `id`'s auto-renewal row, if it has one.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn auto_renewal(&self, id: CertificateId) -> Result<Option<AutoRenewalRow>, Error> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM auto_renewals r WHERE r.certificate_id = $1");
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        found.as_ref().map(row).transpose()
    }

    /// Up to `limit` certificates after `cursor` that are due at `now` (and not backing off),
    /// still valid, unexpired and not renewed, by due time, along the `auto_renewals_due`
    /// index.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn due_renewals(
        &self,
        now: OffsetDateTime,
        cursor: Option<RenewalCursor>,
        limit: i64,
    ) -> Result<Vec<DueRenewal>, Error> {
        let sql = format!(
            "SELECT {ROW_COLUMNS}, c.refid, COALESCE(c.common_name, c.subject) AS name, \
               c.serial, c.not_after, c.template_id, u.email AS owner_email \
             FROM auto_renewals r JOIN certificates c ON c.id = r.certificate_id \
               LEFT JOIN users u ON u.id = c.owner_id \
             WHERE r.due_at IS NOT NULL AND r.due_at <= $1 \
               AND (r.due_at > $2 OR (r.due_at = $2 AND r.certificate_id > $3)) \
               AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= $1) \
               AND c.status = 'valid' AND c.not_after > $1 \
               AND NOT EXISTS (SELECT 1 FROM certificates n WHERE n.renewed_from = c.id) \
             ORDER BY r.due_at, r.certificate_id LIMIT $4"
        );
        let (after, after_id) = cursor.map_or((i64::MIN, 0), |(t, id)| (to_micros(t), id.0));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_micros(now))
            .bind(after)
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DueRenewal {
                    row: row(r)?,
                    refid: r.try_get("refid")?,
                    name: r.try_get("name")?,
                    serial: r.try_get("serial")?,
                    not_after: from_micros(r.try_get("not_after")?),
                    template_id: r.try_get("template_id")?,
                    owner_email: r.try_get("owner_email")?,
                })
            })
            .collect()
    }
}

/// The SQL expression for when `at` makes certificate `c` due, in microseconds.
fn due_expression(at: RenewAt) -> String {
    match at {
        RenewAt::DaysBefore(days) => {
            format!("c.not_after - {}", days.saturating_mul(MICROS_PER_DAY))
        }
        // In whole seconds, as [`RenewAt`]'s users compute it, and without overflow: ten
        // years in seconds times a million fits an i64.
        RenewAt::LifetimePpm(ppm) => format!(
            "c.not_after - ((c.not_after - c.not_before) / 1000000 * {ppm} / 1000000) * 1000000"
        ),
    }
}

impl WriteTx {
    /// Sets certificate `id`'s own policy (`None`: it follows its template's), due at
    /// `due_at`; a change starts the backoff over.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_auto_renewal(
        &mut self,
        id: CertificateId,
        own: Option<&OwnRenewalPolicy>,
        due_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let (enabled, days, ppm, key_policy) = match own {
            Some(p) => (
                Some(flag(p.enabled)),
                match p.at {
                    Some(RenewAt::DaysBefore(d)) => Some(d),
                    _ => None,
                },
                match p.at {
                    Some(RenewAt::LifetimePpm(f)) => Some(f),
                    _ => None,
                },
                p.key_policy.clone(),
            ),
            None => (None, None, None, None),
        };
        sqlx::query(
            "INSERT INTO auto_renewals (certificate_id, enabled, days_before, lifetime_ppm, \
               key_policy, due_at, attempts, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7) \
             ON CONFLICT (certificate_id) DO UPDATE SET enabled = excluded.enabled, \
               days_before = excluded.days_before, lifetime_ppm = excluded.lifetime_ppm, \
               key_policy = excluded.key_policy, due_at = excluded.due_at, attempts = 0, \
               next_attempt_at = NULL, last_error = NULL, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(enabled)
        .bind(days)
        .bind(ppm)
        .bind(key_policy)
        .bind(due_at.map(to_micros))
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Applies template `template`'s policy (`None`: off) to the valid, unexpired, unrenewed
    /// certificates issued from it whose key certmint holds and that have no policy of their
    /// own. Returns how many rows changed.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn apply_template_renewal(
        &mut self,
        template: TemplateId,
        at: Option<RenewAt>,
        now: OffsetDateTime,
    ) -> Result<u64, Error> {
        let Some(at) = at else {
            let done = sqlx::query(
                "UPDATE auto_renewals SET due_at = NULL, updated_at = $2 \
                 WHERE enabled IS NULL AND due_at IS NOT NULL AND certificate_id IN \
                   (SELECT c.id FROM certificates c WHERE c.template_id = $1)",
            )
            .bind(template)
            .bind(to_micros(now))
            .execute(&mut *self.tx)
            .await?;
            return Ok(done.rows_affected());
        };
        let sql = format!(
            "INSERT INTO auto_renewals (certificate_id, due_at, attempts, updated_at) \
             SELECT c.id, {}, 0, $2 FROM certificates c \
             WHERE c.template_id = $1 AND c.key_id IS NOT NULL AND c.is_ca = 0 \
               AND c.status = 'valid' AND c.not_after > $2 \
               AND NOT EXISTS (SELECT 1 FROM certificates n WHERE n.renewed_from = c.id) \
             ON CONFLICT (certificate_id) DO UPDATE SET due_at = excluded.due_at, \
               updated_at = excluded.updated_at \
             WHERE auto_renewals.enabled IS NULL",
            due_expression(at)
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(template)
            .bind(to_micros(now))
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }

    /// Records a failed attempt on certificate `id`: its count, error and next attempt.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn renewal_failed(
        &mut self,
        id: CertificateId,
        attempts: i64,
        error: &str,
        next_attempt_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE auto_renewals SET attempts = $2, last_error = $3, next_attempt_at = $4, \
               last_attempt_at = $5, updated_at = $5 WHERE certificate_id = $1",
        )
        .bind(id)
        .bind(attempts)
        .bind(error.to_owned())
        .bind(to_micros(next_attempt_at))
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Takes certificate `id` off the due list, as no policy applies to it any more.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn renewal_dropped(
        &mut self,
        id: CertificateId,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE auto_renewals SET due_at = NULL, updated_at = $2 WHERE certificate_id = $1",
        )
        .bind(id)
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records that certificate `old` was renewed by `new`: `old` leaves the due list with its
    /// backoff cleared, and `new` keeps `old`'s owner (the system renewed it, for them).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn renewal_succeeded(
        &mut self,
        old: CertificateId,
        new: CertificateId,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE auto_renewals SET due_at = NULL, attempts = 0, next_attempt_at = NULL, \
               last_error = NULL, last_attempt_at = $2, updated_at = $2 WHERE certificate_id = $1",
        )
        .bind(old)
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "UPDATE certificates SET owner_id = \
               (SELECT o.owner_id FROM certificates o WHERE o.id = $1) \
             WHERE id = $2 AND owner_id IS NULL",
        )
        .bind(old)
        .bind(new)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Takes off the due list the certificates due by `now` that were revoked, expired or
    /// renewed (by hand, or by a node that stopped before recording it), so the index keeps
    /// only work. Returns how many.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn retire_renewals(&mut self, now: OffsetDateTime) -> Result<u64, Error> {
        let done = sqlx::query(
            "UPDATE auto_renewals SET due_at = NULL, updated_at = $1 \
             WHERE due_at IS NOT NULL AND due_at <= $1 AND EXISTS \
               (SELECT 1 FROM certificates c WHERE c.id = auto_renewals.certificate_id \
                AND (c.status <> 'valid' OR c.not_after <= $1 OR EXISTS \
                  (SELECT 1 FROM certificates n WHERE n.renewed_from = c.id)))",
        )
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }
}
