use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::cert_fields::{CERT_COLUMNS, CertFields, placeholders};
use crate::db::{Arg, Filter, flag};
use crate::revocation::{PendingChanges, RevocationSettings, SETTINGS_COLUMNS, pending};
use crate::words::CaSource;
use crate::{Backend, CaId, CertificateId, Error, KeyId, Reader, WriteTx, from_micros, to_micros};

/// A certificate authority as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaRow {
    /// Integer id.
    pub id: CaId,
    /// Public identifier, used in `/ca/{refid}.cer`.
    pub refid: String,
    /// Display name, unique.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// `root` or `intermediate`.
    pub ca_type: String,
    /// The CA that issued this one, when certmint holds it.
    pub parent_id: Option<CaId>,
    /// The CA's private key, when certmint holds it.
    pub key_id: Option<KeyId>,
    /// Path length constraint.
    pub path_len: Option<i64>,
    /// Inactive CAs issue nothing.
    pub is_active: bool,
    /// The CA that issues when a request names none.
    pub is_default: bool,
    /// `created`, `imported` or `issued` (a CA certificate issued here for a key held
    /// elsewhere).
    pub source: CaSource,
    /// Requests that name no template are refused.
    pub require_template: bool,
    /// Lint rules downgraded to warnings for what this CA signs.
    pub lint_warn_only: Vec<String>,
    /// The CA certificate.
    pub cert: CertFields,
    /// How it publishes revocation.
    pub revocation: RevocationSettings,
    /// Its delegated OCSP responder certificate, once issued.
    pub ocsp_responder_id: Option<CertificateId>,
    /// Revocation changes not yet in a CRL.
    pub pending_changes: Option<PendingChanges>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A CA to store.
#[derive(Debug, Clone)]
pub struct NewCa {
    /// Public identifier.
    pub refid: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// `root` or `intermediate`.
    pub ca_type: String,
    /// Issuing CA.
    pub parent_id: Option<CaId>,
    /// Private key.
    pub key_id: Option<KeyId>,
    /// Path length constraint.
    pub path_len: Option<i64>,
    /// Whether it is the default issuing CA.
    pub is_default: bool,
    /// `created`, `imported` or `issued`.
    pub source: CaSource,
    /// Requests that name no template are refused.
    pub require_template: bool,
    /// The CA certificate.
    pub cert: CertFields,
}

const CA_COLUMNS: &str = "id, refid, name, description, ca_type, parent_id, key_id, path_len, \
    is_active, is_default, source, require_template, lint_warn_only, created_at, updated_at";

fn ca(row: &AnyRow) -> Result<CaRow, Error> {
    Ok(CaRow {
        id: row.try_get("id")?,
        refid: row.try_get("refid")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        ca_type: row.try_get("ca_type")?,
        parent_id: row.try_get("parent_id")?,
        key_id: row.try_get("key_id")?,
        path_len: row.try_get("path_len")?,
        is_active: row.try_get::<i64, _>("is_active")? != 0,
        is_default: row.try_get::<i64, _>("is_default")? != 0,
        source: CaSource::read(row, "source")?,
        require_template: row.try_get::<i64, _>("require_template")? != 0,
        lint_warn_only: row
            .try_get::<String, _>("lint_warn_only")?
            .split(',')
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect(),
        cert: CertFields::read(row)?,
        revocation: RevocationSettings::read(row)?,
        ocsp_responder_id: row.try_get("ocsp_responder_id")?,
        pending_changes: pending(row)?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

impl Reader {
    async fn cas_matching(&self, filter: &Filter, tail: &str) -> Result<Vec<CaRow>, Error> {
        let sql = format!(
            "SELECT {CA_COLUMNS}, {CERT_COLUMNS}, {SETTINGS_COLUMNS} FROM cas{} {tail}",
            filter.where_sql()
        );
        let rows = filter.query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(ca).collect()
    }

    /// The CA with this id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn ca(&self, id: CaId) -> Result<Option<CaRow>, Error> {
        let mut filter = Filter::default();
        filter.and("id = ?", [Arg::Int(id.0)]);
        Ok(self.cas_matching(&filter, "").await?.into_iter().next())
    }

    /// The CA with this public identifier.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn ca_by_refid(&self, refid: &str) -> Result<Option<CaRow>, Error> {
        let mut filter = Filter::default();
        filter.and("refid = ?", [Arg::Text(refid.to_owned())]);
        Ok(self.cas_matching(&filter, "").await?.into_iter().next())
    }

    /// The default issuing CA, if one is set.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn default_ca(&self) -> Result<Option<CaRow>, Error> {
        let mut filter = Filter::default();
        filter.and("is_default = 1", []);
        Ok(self
            .cas_matching(&filter, "ORDER BY id LIMIT 1")
            .await?
            .into_iter()
            .next())
    }

    /// Every CA, by id. CAs are few (tens, not millions), so they are listed whole.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn cas(&self) -> Result<Vec<CaRow>, Error> {
        self.cas_matching(&Filter::default(), "ORDER BY id").await
    }
}

impl WriteTx {
    /// Stores a CA and returns its id. A new default CA takes over from the old one.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the name or certificate exists already.
    pub async fn insert_ca(&mut self, c: &NewCa, now: OffsetDateTime) -> Result<CaId, Error> {
        if c.is_default {
            sqlx::query("UPDATE cas SET is_default = 0 WHERE is_default = 1")
                .execute(&mut *self.tx)
                .await?;
        }
        let sql = format!(
            "INSERT INTO cas (refid, name, description, ca_type, parent_id, key_id, path_len, \
             is_active, is_default, source, require_template, created_at, updated_at, \
             {CERT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $11, $11, {}) RETURNING id",
            placeholders(12)
        );
        let q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(c.refid.clone())
            .bind(c.name.clone())
            .bind(c.description.clone())
            .bind(c.ca_type.clone())
            .bind(c.parent_id)
            .bind(c.key_id)
            .bind(c.path_len)
            .bind(flag(c.is_default))
            .bind(c.source.as_str())
            .bind(flag(c.require_template))
            .bind(to_micros(now));
        let row = c.cert.bind(q).fetch_one(&mut *self.tx).await?;
        Ok(row.try_get("id")?)
    }
}

/// Changes to a CA; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct CaUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// Make it the default issuing CA (`Some(false)` only clears the flag).
    pub is_default: Option<bool>,
    /// Refuse, or accept, requests that name no template.
    pub require_template: Option<bool>,
    /// Lint rules downgraded to warnings, whole (rule names, no commas).
    pub lint_warn_only: Option<Vec<String>>,
    /// New revocation settings, whole.
    pub revocation: Option<RevocationSettings>,
}

impl WriteTx {
    /// Applies `update` to CA `id`. Returns false when there is no such CA.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the new name is taken.
    pub async fn update_ca(
        &mut self,
        id: CaId,
        update: &CaUpdate,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        if update.is_default == Some(true) {
            sqlx::query("UPDATE cas SET is_default = 0 WHERE is_default = 1 AND id <> $1")
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
        }
        let done = sqlx::query(
            "UPDATE cas SET \
               name = COALESCE($1, name), \
               description = CASE WHEN $2 = 1 THEN $3 ELSE description END, \
               is_active = COALESCE($4, is_active), \
               is_default = COALESCE($5, is_default), \
               require_template = COALESCE($6, require_template), \
               lint_warn_only = COALESCE($7, lint_warn_only), \
               updated_at = $8 \
             WHERE id = $9",
        )
        .bind(update.name.clone())
        .bind(flag(update.description.is_some()))
        .bind(update.description.clone().flatten())
        .bind(update.is_active.map(flag))
        .bind(update.is_default.map(flag))
        .bind(update.require_template.map(flag))
        .bind(update.lint_warn_only.as_ref().map(|names| names.join(",")))
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        if let Some(settings) = &update.revocation {
            self.set_revocation_settings(id, settings, now).await?;
        }
        Ok(done.rows_affected() == 1)
    }

    /// Which of CAs `ids` exist and are active, as this transaction sees them.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn active_cas(&mut self, ids: &[CaId]) -> Result<Vec<CaId>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut filter = Filter::default();
        filter.and("is_active = 1", []);
        let marks = vec!["?"; ids.len()].join(", ");
        filter.and(
            &format!("id IN ({marks})"),
            ids.iter().map(|id| Arg::Int(id.0)),
        );
        let rows = filter
            .query(format!("SELECT id FROM cas{}", filter.where_sql()))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// Deletes CA `id` and its private key. Certificates it issued and CAs below it stay, no
    /// longer linked to it. Returns false when there is no such CA.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_ca(&mut self, id: CaId) -> Result<bool, Error> {
        let row = sqlx::query("DELETE FROM cas WHERE id = $1 RETURNING key_id")
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

impl WriteTx {
    /// CAs that may have issued a certificate: those whose subject key identifier is its
    /// authority key identifier (hex), or, without one, whose subject is its issuer. The caller
    /// checks the signature.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn issuer_candidates(
        &mut self,
        authority_key_id: Option<&str>,
        issuer: &str,
    ) -> Result<Vec<(CaId, Vec<u8>)>, Error> {
        let rows = match authority_key_id {
            Some(aki) => {
                sqlx::query("SELECT id, der FROM cas WHERE subject_key_id = $1 ORDER BY id")
                    .bind(aki.to_owned())
                    .fetch_all(&mut *self.tx)
                    .await?
            }
            None => {
                sqlx::query("SELECT id, der FROM cas WHERE subject = $1 ORDER BY id")
                    .bind(issuer.to_owned())
                    .fetch_all(&mut *self.tx)
                    .await?
            }
        };
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("der")?)))
            .collect()
    }

    /// Whether a CA or certificate with this SHA-256 fingerprint and serial (hex) is stored.
    /// Certificates are found through their serial, the one of the two that is indexed.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn certificate_known(
        &mut self,
        fingerprint: &str,
        serial: &str,
    ) -> Result<bool, Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(known_sql(self.backend)))
            .bind(fingerprint.to_owned())
            .bind(serial.to_owned())
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Whether a CA has this name.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn ca_name_taken(&mut self, name: &str) -> Result<bool, Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM cas WHERE name = $1")
            .bind(name.to_owned())
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}

/// How many CAs have fingerprint `$1`, plus how many certificates have fingerprint `$1` and
/// serial `$2`.
pub(crate) fn known_sql(backend: Backend) -> String {
    format!(
        "SELECT (SELECT COUNT(*) FROM cas WHERE fingerprint_sha256 = $1) \
              + (SELECT COUNT(*) FROM certificates \
                 WHERE {} = {} AND fingerprint_sha256 = $1) AS n",
        backend.serial_tail("serial"),
        backend.serial_tail("$2"),
    )
}
