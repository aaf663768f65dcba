//! Client certificates that log their user in: which user a certificate of the inventory
//! belongs to, what they call it, and whether it may log in.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::cert_fields::CERT_COLUMNS;
use crate::certificates::{COLUMNS as CERTIFICATE_COLUMNS, certificate};
use crate::db::{Arg, Backend, Filter};
use crate::{
    CertificateFilter, CertificateId, CertificateRow, CertificateState, Error, Page, PageRequest,
    Reader, WriteTx, from_micros, to_micros,
};

/// A login certificate: the link and the certificate it links.
#[derive(Debug, Clone)]
pub struct UserCertificateRow {
    /// The link's id.
    pub id: i64,
    /// Whose it is.
    pub user_id: i64,
    /// Their login name.
    pub username: String,
    /// What the user calls it.
    pub name: String,
    /// Whether it may log in.
    pub enabled: bool,
    /// When it was linked.
    pub created_at: OffsetDateTime,
    /// When it last logged in.
    pub last_used_at: Option<OffsetDateTime>,
    /// The certificate, as the inventory holds it.
    pub certificate: CertificateRow,
}

/// Which login certificates a list shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserCertificateFilter {
    /// Only this user's.
    pub user_id: Option<i64>,
    /// Only those in this state.
    pub state: Option<CertificateState>,
}

/// How many login certificates are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserCertificateStats {
    /// All of them.
    pub total: i64,
    /// Neither revoked nor expired.
    pub valid: i64,
    /// Past their notAfter, not revoked.
    pub expired: i64,
    /// Revoked.
    pub revoked: i64,
    /// Valid and expiring before the time asked about.
    pub expiring_soon: i64,
}

/// The certificates' columns and the link's, under names of their own, so that one filter
/// serves both.
const FROM: &str = "(SELECT c.*, uc.id AS link_id, uc.user_id AS link_user_id, \
     uc.name AS link_name, uc.enabled AS link_enabled, uc.created_at AS link_created_at, \
     uc.last_used_at AS link_last_used_at, u.username AS link_username \
     FROM user_certificates uc JOIN certificates c ON c.id = uc.certificate_id \
     JOIN users u ON u.id = uc.user_id) AS linked";

const LINK_COLUMNS: &str = "link_id, link_user_id, link_name, link_enabled, link_created_at, \
     link_last_used_at, link_username";

fn columns() -> String {
    format!("{CERTIFICATE_COLUMNS}, {CERT_COLUMNS}, {LINK_COLUMNS}")
}

fn user_certificate(row: &AnyRow) -> Result<UserCertificateRow, Error> {
    Ok(UserCertificateRow {
        id: row.try_get("link_id")?,
        user_id: row.try_get("link_user_id")?,
        username: row.try_get("link_username")?,
        name: row.try_get("link_name")?,
        enabled: row.try_get::<i64, _>("link_enabled")? != 0,
        created_at: from_micros(row.try_get("link_created_at")?),
        last_used_at: row
            .try_get::<Option<i64>, _>("link_last_used_at")?
            .map(from_micros),
        certificate: certificate(row)?,
    })
}

fn filtered(filter: UserCertificateFilter, backend: Backend, now: OffsetDateTime) -> Filter {
    let mut f = CertificateFilter {
        state: filter.state,
        ..CertificateFilter::default()
    }
    .to_sql(backend, now);
    if let Some(user_id) = filter.user_id {
        f.and("link_user_id = ?", [Arg::Int(user_id)]);
    }
    f
}

impl Reader {
    /// Login certificates matching `filter` at `now`, newest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn user_certificates(
        &self,
        filter: UserCertificateFilter,
        now: OffsetDateTime,
        page: PageRequest,
    ) -> Result<Page<UserCertificateRow>, Error> {
        let (rows, total) = filtered(filter, self.backend(), now)
            .fetch_page(self, &columns(), FROM, "link_id DESC", page)
            .await?;
        let items = rows
            .iter()
            .map(user_certificate)
            .collect::<Result<_, _>>()?;
        Ok(Page::counted(items, total))
    }

    /// One login certificate, by the link's id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn user_certificate(&self, id: i64) -> Result<Option<UserCertificateRow>, Error> {
        Filter::new("link_id = ?", [Arg::Int(id)])
            .fetch_row(self, &columns(), FROM, user_certificate)
            .await
    }

    /// The login certificate that links certificate `id`, if one does.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn user_certificate_of(
        &self,
        id: CertificateId,
    ) -> Result<Option<UserCertificateRow>, Error> {
        Filter::new("id = ?", [Arg::Int(id.0)])
            .fetch_row(self, &columns(), FROM, user_certificate)
            .await
    }

    /// How many login certificates (of `user_id`, or everyone's) are in each state at `now`;
    /// "expiring soon" means before `soon`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn user_certificate_stats(
        &self,
        user_id: Option<i64>,
        now: OffsetDateTime,
        soon: OffsetDateTime,
    ) -> Result<UserCertificateStats, Error> {
        let mut counts = [0; 5];
        let states = [
            None,
            Some(CertificateState::Active),
            Some(CertificateState::Expired),
            Some(CertificateState::Revoked),
            Some(CertificateState::ExpiringBefore(soon)),
        ];
        for (n, state) in counts.iter_mut().zip(states) {
            *n = filtered(
                UserCertificateFilter { user_id, state },
                self.backend(),
                now,
            )
            .count(self, FROM)
            .await?;
        }
        let [total, valid, expired, revoked, expiring_soon] = counts;
        Ok(UserCertificateStats {
            total,
            valid,
            expired,
            revoked,
            expiring_soon,
        })
    }
}

impl WriteTx {
    /// Links certificate `certificate_id` to `user_id` as a login certificate called `name`,
    /// enabled, and returns the link's id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the certificate already logs someone in.
    pub async fn insert_user_certificate(
        &mut self,
        user_id: i64,
        certificate_id: CertificateId,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "INSERT INTO user_certificates (user_id, certificate_id, name, enabled, created_at) \
             VALUES ($1, $2, $3, 1, $4) RETURNING id",
        )
        .bind(user_id)
        .bind(certificate_id.0)
        .bind(name.to_owned())
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Lets login certificate `id` log in, or not. Returns false when there is no such link.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_user_certificate_enabled(
        &mut self,
        id: i64,
        enabled: bool,
    ) -> Result<bool, Error> {
        let done = sqlx::query("UPDATE user_certificates SET enabled = $1 WHERE id = $2")
            .bind(i64::from(enabled))
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Notes that login certificate `id` logged in at `now`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn touch_user_certificate(
        &mut self,
        id: i64,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query("UPDATE user_certificates SET last_used_at = $1 WHERE id = $2")
            .bind(to_micros(now))
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Unlinks login certificate `id`; the certificate stays in the inventory. Returns false
    /// when there is no such link.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_user_certificate(&mut self, id: i64) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM user_certificates WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
