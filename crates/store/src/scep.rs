//! SCEP's rows: the instance-wide switch, profiles (each with its CA, template, approval mode,
//! static challenge and RA certificate), the requests received, and one-time challenges.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::{Arg, Filter, flag};
use crate::words::ScepRequestStatus;
use crate::{
    CaId, CertificateId, Error, Page, PageRequest, Reader, TemplateId, WriteTx, from_micros,
    to_micros,
};

/// A SCEP profile: one URL (`/scep` for the default, `/scep/{name}`), bound to a CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScepProfileRow {
    /// Integer id.
    pub id: i64,
    /// The name in its URL.
    pub name: String,
    /// Whether it is the one at `/scep` and `/scep/pkiclient.exe`.
    pub is_default: bool,
    /// Whether it serves.
    pub enabled: bool,
    /// The issuing CA; the default CA when absent.
    pub ca_id: Option<CaId>,
    /// The CA identifier clients send with GetCACert (informational).
    pub ca_ident: String,
    /// The template requests are checked against.
    pub template_id: Option<TemplateId>,
    /// Whether requests with a good challenge are issued at once (otherwise they wait for an
    /// administrator).
    pub auto_approve: bool,
    /// The static challenge password's keyed digest (hex), when there is one.
    pub challenge_digest: Option<String>,
    /// How long the one-time challenges made for this profile's CA stay usable.
    pub challenge_validity_hours: i64,
    /// The RA certificate clients encrypt to and replies are signed with.
    pub ra_certificate_id: Option<CertificateId>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// The settable fields of a profile; `None` leaves a field as it is (or takes the default on
/// insert).
#[derive(Debug, Clone, Default)]
pub struct ScepProfileFields {
    /// Whether it serves.
    pub enabled: Option<bool>,
    /// The issuing CA (`Some(None)` is the default CA).
    pub ca_id: Option<Option<CaId>>,
    /// The CA identifier.
    pub ca_ident: Option<String>,
    /// The template (`Some(None)` is none).
    pub template_id: Option<Option<TemplateId>>,
    /// Whether requests are issued without approval.
    pub auto_approve: Option<bool>,
    /// The static challenge's digest (`Some(None)` removes it).
    pub challenge_digest: Option<Option<String>>,
    /// Validity of one-time challenges, in hours.
    pub challenge_validity_hours: Option<i64>,
}

const PROFILE_COLUMNS: &str = "id, name, is_default, enabled, ca_id, ca_ident, template_id, \
    auto_approve, challenge_digest, challenge_validity_hours, ra_certificate_id, created_at, \
    updated_at";

fn profile(row: &AnyRow) -> Result<ScepProfileRow, Error> {
    Ok(ScepProfileRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        is_default: row.try_get::<i64, _>("is_default")? != 0,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        ca_id: row.try_get::<Option<i64>, _>("ca_id")?.map(CaId),
        ca_ident: row.try_get("ca_ident")?,
        template_id: row
            .try_get::<Option<i64>, _>("template_id")?
            .map(TemplateId),
        auto_approve: row.try_get::<i64, _>("auto_approve")? != 0,
        challenge_digest: row.try_get("challenge_digest")?,
        challenge_validity_hours: row.try_get("challenge_validity_hours")?,
        ra_certificate_id: row
            .try_get::<Option<i64>, _>("ra_certificate_id")?
            .map(CertificateId),
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

/// A PKCSReq or RenewalReq and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScepRequestRow {
    /// Integer id.
    pub id: i64,
    /// The profile it came through.
    pub profile_id: i64,
    /// The client's transaction id.
    pub transaction_id: String,
    /// `PKCSReq` or `RenewalReq`.
    pub message_type: String,
    /// Where it stands.
    pub status: ScepRequestStatus,
    /// The subject asked for.
    pub subject: String,
    /// SHA-256 (hex) of the requested public key, so that a poll is answered only for the key
    /// that asked.
    pub public_key_sha256: String,
    /// The CSR (DER), kept while the request waits for approval.
    pub csr: Option<Vec<u8>>,
    /// For a RenewalReq, the certificate it was signed with.
    pub renewed_from: Option<CertificateId>,
    /// The certificate issued.
    pub certificate_id: Option<CertificateId>,
    /// Why it failed or was rejected.
    pub reason: Option<String>,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
    /// The client's address.
    pub origin_ip: Option<String>,
    /// When it arrived.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// A request to record.
#[derive(Debug, Clone)]
pub struct NewScepRequest {
    /// The profile it came through.
    pub profile_id: i64,
    /// The client's transaction id.
    pub transaction_id: String,
    /// `PKCSReq` or `RenewalReq`.
    pub message_type: String,
    /// Where it stands.
    pub status: ScepRequestStatus,
    /// The subject asked for.
    pub subject: String,
    /// SHA-256 (hex) of the requested public key.
    pub public_key_sha256: String,
    /// The CSR, when it waits for approval.
    pub csr: Option<Vec<u8>>,
    /// For a RenewalReq, the certificate it was signed with.
    pub renewed_from: Option<CertificateId>,
    /// The certificate issued.
    pub certificate_id: Option<CertificateId>,
    /// Why it failed.
    pub reason: Option<String>,
    /// The client's address.
    pub origin_ip: Option<String>,
}

const REQUEST_COLUMNS: &str = "id, profile_id, transaction_id, message_type, status, subject, \
    public_key_sha256, csr, renewed_from, certificate_id, reason, decided_by, origin_ip, \
    created_at, updated_at";

fn request(row: &AnyRow) -> Result<ScepRequestRow, Error> {
    Ok(ScepRequestRow {
        id: row.try_get("id")?,
        profile_id: row.try_get("profile_id")?,
        transaction_id: row.try_get("transaction_id")?,
        message_type: row.try_get("message_type")?,
        status: ScepRequestStatus::read(row, "status")?,
        subject: row.try_get("subject")?,
        public_key_sha256: row.try_get("public_key_sha256")?,
        csr: row.try_get("csr")?,
        renewed_from: row
            .try_get::<Option<i64>, _>("renewed_from")?
            .map(CertificateId),
        certificate_id: row
            .try_get::<Option<i64>, _>("certificate_id")?
            .map(CertificateId),
        reason: row.try_get("reason")?,
        decided_by: row.try_get("decided_by")?,
        origin_ip: row.try_get("origin_ip")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

/// Filters for the list of requests.
#[derive(Debug, Clone, Default)]
pub struct ScepRequestFilter {
    /// Only this profile's.
    pub profile_id: Option<i64>,
    /// Only with this status.
    pub status: Option<ScepRequestStatus>,
}

/// Requests counted by profile and status, for `/api/v2/scep/stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScepCount {
    /// The profile.
    pub profile_id: i64,
    /// The status.
    pub status: ScepRequestStatus,
    /// How many requests.
    pub requests: i64,
}

impl Reader {
    /// Whether SCEP serves at all.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn scep_enabled(&self) -> Result<bool, Error> {
        let row = sqlx::query("SELECT enabled FROM scep_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("enabled")? != 0)
    }

    /// Every SCEP profile, the default first, then by name.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn scep_profiles(&self) -> Result<Vec<ScepProfileRow>, Error> {
        let sql =
            format!("SELECT {PROFILE_COLUMNS} FROM scep_profiles ORDER BY is_default DESC, name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(profile).collect()
    }

    /// The profile named `name`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn scep_profile_named(&self, name: &str) -> Result<Option<ScepProfileRow>, Error> {
        Filter::new("name = ?", [Arg::Text(name.to_owned())])
            .fetch_row(self, PROFILE_COLUMNS, "scep_profiles", profile)
            .await
    }

    /// The profile at `/scep`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn default_scep_profile(&self) -> Result<Option<ScepProfileRow>, Error> {
        Filter::new("is_default = 1", [])
            .fetch_row(self, PROFILE_COLUMNS, "scep_profiles", profile)
            .await
    }

    /// Request `id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn scep_request(&self, id: i64) -> Result<Option<ScepRequestRow>, Error> {
        Filter::new("id = ?", [Arg::Int(id)])
            .fetch_row(self, REQUEST_COLUMNS, "scep_requests", request)
            .await
    }

    /// The latest request of transaction `transaction_id` through profile `profile_id` for
    /// the public key whose SHA-256 is `public_key_sha256`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn scep_transaction(
        &self,
        profile_id: i64,
        transaction_id: &str,
        public_key_sha256: &str,
    ) -> Result<Option<ScepRequestRow>, Error> {
        let (rows, _) = Filter::new(
            "profile_id = ? AND transaction_id = ? AND public_key_sha256 = ?",
            [
                Arg::Int(profile_id),
                Arg::Text(transaction_id.to_owned()),
                Arg::Text(public_key_sha256.to_owned()),
            ],
        )
        .fetch_page(
            self,
            REQUEST_COLUMNS,
            "scep_requests",
            "id DESC",
            PageRequest {
                page: 1,
                per_page: 1,
                after: None,
            },
        )
        .await?;
        rows.first().map(request).transpose()
    }

    /// Requests, newest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn scep_requests(
        &self,
        filter: &ScepRequestFilter,
        page: PageRequest,
    ) -> Result<Page<ScepRequestRow>, Error> {
        let mut where_ = Filter::default();
        if let Some(id) = filter.profile_id {
            where_.and("profile_id = ?", [Arg::Int(id)]);
        }
        if let Some(status) = filter.status {
            where_.and("status = ?", [Arg::Text(status.as_str().to_owned())]);
        }
        let (rows, total) = where_
            .fetch_page(self, REQUEST_COLUMNS, "scep_requests", "id DESC", page)
            .await?;
        Ok(Page::counted(
            rows.iter().map(request).collect::<Result<_, _>>()?,
            total,
        ))
    }

    /// Requests counted by profile and status, those since `since` only when given.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn scep_counts(
        &self,
        since: Option<OffsetDateTime>,
    ) -> Result<Vec<ScepCount>, Error> {
        let mut where_ = Filter::default();
        if let Some(since) = since {
            where_.and("created_at >= ?", [Arg::Int(to_micros(since))]);
        }
        let sql = format!(
            "SELECT profile_id, status, COUNT(*) AS n FROM scep_requests{} \
             GROUP BY profile_id, status ORDER BY profile_id, status",
            where_.where_sql()
        );
        let rows = where_.query(sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(ScepCount {
                    profile_id: r.try_get("profile_id")?,
                    status: ScepRequestStatus::read(r, "status")?,
                    requests: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// One-time challenges of CA `ca_id` not yet used nor expired at `now`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn scep_open_challenges(
        &self,
        ca_id: CaId,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM scep_challenges \
             WHERE ca_id = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(ca_id.0)
        .bind(to_micros(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}

impl WriteTx {
    /// Turns SCEP on or off.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_scep_enabled(&mut self, enabled: bool) -> Result<(), Error> {
        sqlx::query("UPDATE scep_state SET enabled = $1 WHERE id = 1")
            .bind(flag(enabled))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Stores a profile named `name` and returns its id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the name is taken (or a second default); [`Error::Database`]
    /// or [`Error::Unavailable`].
    pub async fn insert_scep_profile(
        &mut self,
        name: &str,
        is_default: bool,
        fields: &ScepProfileFields,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "INSERT INTO scep_profiles (name, is_default, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) RETURNING id",
        )
        .bind(name.to_owned())
        .bind(flag(is_default))
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        let id = row.try_get("id")?;
        self.update_scep_profile(id, fields, now).await?;
        Ok(id)
    }

    /// Changes the fields of profile `id` that `fields` sets. Returns false when there is no
    /// such profile.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn update_scep_profile(
        &mut self,
        id: i64,
        fields: &ScepProfileFields,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let mut sets = vec!["updated_at = $1".to_owned()];
        let mut args = vec![Arg::Int(to_micros(now))];
        let mut set = |column: &str, arg: Option<Arg>| {
            args.push(arg.unwrap_or(Arg::Null));
            sets.push(format!("{column} = ${}", args.len()));
        };
        if let Some(v) = fields.enabled {
            set("enabled", Some(Arg::Int(flag(v))));
        }
        if let Some(v) = fields.ca_id {
            set("ca_id", v.map(|id| Arg::Int(id.0)));
        }
        if let Some(v) = &fields.ca_ident {
            set("ca_ident", Some(Arg::Text(v.clone())));
        }
        if let Some(v) = fields.template_id {
            set("template_id", v.map(|id| Arg::Int(id.0)));
        }
        if let Some(v) = fields.auto_approve {
            set("auto_approve", Some(Arg::Int(flag(v))));
        }
        if let Some(v) = &fields.challenge_digest {
            set("challenge_digest", v.clone().map(Arg::Text));
        }
        if let Some(v) = fields.challenge_validity_hours {
            set("challenge_validity_hours", Some(Arg::Int(v)));
        }
        let sql = format!(
            "UPDATE scep_profiles SET {} WHERE id = ${}",
            sets.join(", "),
            args.len() + 1
        );
        let query = args
            .iter()
            .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, arg| arg.bind(q))
            .bind(id);
        Ok(query.execute(&mut *self.tx).await?.rows_affected() > 0)
    }

    /// Deletes profile `id` with its requests. Returns false when there is no such profile.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_scep_profile(&mut self, id: i64) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM scep_profiles WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets profile `id`'s RA certificate to `new`, if it is still `old` (so that of two nodes
    /// making one at once, one wins). Returns whether it was set.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn replace_scep_ra(
        &mut self,
        id: i64,
        old: Option<CertificateId>,
        new: CertificateId,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = match old {
            Some(old) => {
                sqlx::query(
                    "UPDATE scep_profiles SET ra_certificate_id = $1, updated_at = $2 \
                     WHERE id = $3 AND ra_certificate_id = $4",
                )
                .bind(new.0)
                .bind(to_micros(now))
                .bind(id)
                .bind(old.0)
                .execute(&mut *self.tx)
                .await?
            }
            None => {
                sqlx::query(
                    "UPDATE scep_profiles SET ra_certificate_id = $1, updated_at = $2 \
                     WHERE id = $3 AND ra_certificate_id IS NULL",
                )
                .bind(new.0)
                .bind(to_micros(now))
                .bind(id)
                .execute(&mut *self.tx)
                .await?
            }
        };
        Ok(done.rows_affected() > 0)
    }

    /// Records a request and returns its id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_scep_request(
        &mut self,
        new: &NewScepRequest,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "INSERT INTO scep_requests (profile_id, transaction_id, message_type, status, \
             subject, public_key_sha256, csr, renewed_from, certificate_id, reason, origin_ip, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING id",
        )
        .bind(new.profile_id)
        .bind(new.transaction_id.clone())
        .bind(new.message_type.clone())
        .bind(new.status.as_str())
        .bind(new.subject.clone())
        .bind(new.public_key_sha256.clone())
        .bind(new.csr.clone())
        .bind(new.renewed_from.map(|id| id.0))
        .bind(new.certificate_id.map(|id| id.0))
        .bind(new.reason.clone())
        .bind(new.origin_ip.clone())
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Moves request `id` from status `from` to `to`: issued with `certificate_id`, or
    /// rejected or failed with `reason`; its CSR is dropped. Returns false when it is not in
    /// status `from` (any more).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    #[allow(clippy::too_many_arguments)]
    pub async fn settle_scep_request(
        &mut self,
        id: i64,
        from: ScepRequestStatus,
        status: ScepRequestStatus,
        certificate_id: Option<CertificateId>,
        reason: Option<&str>,
        decided_by: &str,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE scep_requests SET status = $1, certificate_id = $2, reason = $3, \
             decided_by = $4, csr = NULL, updated_at = $5 WHERE id = $6 AND status = $7",
        )
        .bind(status.as_str())
        .bind(certificate_id.map(|id| id.0))
        .bind(reason.map(str::to_owned))
        .bind(decided_by.to_owned())
        .bind(to_micros(now))
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores a one-time challenge (its keyed digest, hex) for CA `ca_id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_scep_challenge(
        &mut self,
        ca_id: CaId,
        digest: &str,
        expires_at: OffsetDateTime,
        created_by: &str,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO scep_challenges (ca_id, digest, expires_at, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ca_id.0)
        .bind(digest.to_owned())
        .bind(to_micros(expires_at))
        .bind(created_by.to_owned())
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Uses up the one-time challenge whose digest is `digest`, if it belongs to CA `ca_id`,
    /// is unused and has not expired at `now`. Returns whether it was.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn use_scep_challenge(
        &mut self,
        ca_id: CaId,
        digest: &str,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE scep_challenges SET used_at = $1 \
             WHERE ca_id = $2 AND digest = $3 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(to_micros(now))
        .bind(ca_id.0)
        .bind(digest.to_owned())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every open one-time challenge of CA `ca_id`; returns how many.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn expire_scep_challenges(
        &mut self,
        ca_id: CaId,
        now: OffsetDateTime,
    ) -> Result<u64, Error> {
        let done = sqlx::query(
            "UPDATE scep_challenges SET expires_at = $1 \
             WHERE ca_id = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(to_micros(now))
        .bind(ca_id.0)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }
}
