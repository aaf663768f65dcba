//! Expiry alerts: the certificates and CAs nearing their end, and the notices already given
//! about them, one per subject and threshold.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::{Error, Reader, WriteTx, from_micros, to_micros};

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpirySubject {
    /// A certificate of the inventory.
    Certificate,
    /// A CA.
    Ca,
}

impl ExpirySubject {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::Ca => "ca",
        }
    }
}

/// A certificate or CA whose `not_after` lies in the window scanned.
#[derive(Debug, Clone)]
pub struct ExpiryCandidate {
    /// Its row id.
    pub id: i64,
    /// Its public id.
    pub refid: String,
    /// Its common name (or subject) for a certificate, its name for a CA.
    pub name: String,
    /// Its serial number, hex.
    pub serial: String,
    /// When it expires.
    pub not_after: OffsetDateTime,
    /// Its owner's email address, when it has an owner with one.
    pub owner_email: Option<String>,
    /// The smallest threshold already noticed, if any.
    pub noticed: Option<i64>,
}

/// Where a page of candidates starts: after this `(not_after, id)`.
pub type ExpiryCursor = (OffsetDateTime, i64);

/// A notice whose mail has not gone out.
#[derive(Debug, Clone)]
pub struct UnmailedNotice {
    /// `certificate` or `ca`.
    pub subject_type: String,
    /// Its row id.
    pub subject_id: i64,
    /// The threshold crossed; 0 for expired.
    pub threshold_days: i64,
    /// What the mail says about it.
    pub mail: serde_json::Value,
}

impl Reader {
    /// Certificates (valid and not renewed) or active CAs expiring after `since` and no later
    /// than `until`, by `not_after`, at most `limit` after `cursor`. Certificates are read
    /// along the `certificates_status` index from the cursor on: the cursor's `not_after` is
    /// the range's lower bound, so a page costs the same wherever it starts (filtered after
    /// the range, each page read the window from its start again).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn expiry_candidates(
        &self,
        subject: ExpirySubject,
        since: OffsetDateTime,
        until: OffsetDateTime,
        cursor: Option<ExpiryCursor>,
        limit: i64,
    ) -> Result<Vec<ExpiryCandidate>, Error> {
        let sql = match subject {
            ExpirySubject::Certificate => {
                "SELECT c.id, c.refid, COALESCE(c.common_name, c.subject) AS name, c.serial, \
                   c.not_after, u.email AS owner_email, \
                   (SELECT MIN(n.threshold_days) FROM expiry_notices n \
                    WHERE n.subject_type = 'certificate' AND n.subject_id = c.id) AS noticed \
                 FROM certificates c LEFT JOIN users u ON u.id = c.owner_id \
                 WHERE c.status = 'valid' AND c.not_after >= $1 AND c.not_after <= $2 \
                   AND (c.not_after > $3 OR c.id > $4) \
                   AND NOT EXISTS (SELECT 1 FROM certificates r WHERE r.renewed_from = c.id) \
                 ORDER BY c.not_after, c.id LIMIT $5"
            }
            ExpirySubject::Ca => {
                "SELECT c.id, c.refid, c.name, c.serial, c.not_after, \
                   CAST(NULL AS TEXT) AS owner_email, \
                   (SELECT MIN(n.threshold_days) FROM expiry_notices n \
                    WHERE n.subject_type = 'ca' AND n.subject_id = c.id) AS noticed \
                 FROM cas c \
                 WHERE c.is_active = 1 AND c.not_after >= $1 AND c.not_after <= $2 \
                   AND (c.not_after > $3 OR c.id > $4) \
                 ORDER BY c.not_after, c.id LIMIT $5"
            }
        };
        // From the cursor's time on (ties broken by id), else from just after `since`.
        let (from, after, after_id) = match cursor {
            Some((t, id)) => (to_micros(t), to_micros(t), id),
            None => (to_micros(since).saturating_add(1), i64::MIN, 0),
        };
        let rows = sqlx::query(sql)
            .bind(from)
            .bind(to_micros(until))
            .bind(after)
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(candidate).collect()
    }

    /// Up to `limit` notices whose mail has not gone out, oldest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`]; [`Error::Corrupt`] for a mail that is
    /// not JSON.
    pub async fn unmailed_expiry_notices(&self, limit: i64) -> Result<Vec<UnmailedNotice>, Error> {
        let rows = sqlx::query(
            "SELECT subject_type, subject_id, threshold_days, mail FROM expiry_notices \
             WHERE mail IS NOT NULL ORDER BY noticed_at, subject_type, subject_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let mail: String = r.try_get("mail")?;
                Ok(UnmailedNotice {
                    subject_type: r.try_get("subject_type")?,
                    subject_id: r.try_get("subject_id")?,
                    threshold_days: r.try_get("threshold_days")?,
                    mail: serde_json::from_str(&mail)?,
                })
            })
            .collect()
    }
}

fn candidate(r: &AnyRow) -> Result<ExpiryCandidate, Error> {
    Ok(ExpiryCandidate {
        id: r.try_get("id")?,
        refid: r.try_get("refid")?,
        name: r.try_get("name")?,
        serial: r.try_get("serial")?,
        not_after: from_micros(r.try_get("not_after")?),
        owner_email: r.try_get("owner_email")?,
        noticed: r.try_get("noticed")?,
    })
}

impl WriteTx {
    /// Records that `subject_id` crossed each of `thresholds` (the first being the one it is
    /// announced for, which carries `mail` when there is one to send). Returns whether that
    /// first notice is new: false when another run recorded it already.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn record_expiry_notice(
        &mut self,
        subject: ExpirySubject,
        subject_id: i64,
        thresholds: &[i64],
        mail: Option<&serde_json::Value>,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let mut first_new = false;
        for (i, threshold) in thresholds.iter().enumerate() {
            let done = sqlx::query(
                "INSERT INTO expiry_notices \
                   (subject_type, subject_id, threshold_days, noticed_at, mail) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (subject_type, subject_id, threshold_days) DO NOTHING",
            )
            .bind(subject.as_str().to_owned())
            .bind(subject_id)
            .bind(*threshold)
            .bind(to_micros(now))
            .bind(if i == 0 {
                mail.map(ToString::to_string)
            } else {
                None
            })
            .execute(&mut *self.tx)
            .await?;
            if i == 0 {
                first_new = done.rows_affected() == 1;
            }
        }
        Ok(first_new)
    }

    /// Marks the mail of these notices `(subject_type, subject_id, threshold_days)` as sent.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn expiry_notices_mailed(
        &mut self,
        notices: &[(String, i64, i64)],
    ) -> Result<(), Error> {
        for (subject_type, subject_id, threshold) in notices {
            sqlx::query(
                "UPDATE expiry_notices SET mail = NULL \
                 WHERE subject_type = $1 AND subject_id = $2 AND threshold_days = $3",
            )
            .bind(subject_type.clone())
            .bind(*subject_id)
            .bind(*threshold)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }
}
