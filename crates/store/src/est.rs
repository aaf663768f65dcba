//! EST's rows: the settings of the default endpoint (`/.well-known/est/`) and the labels
//! (`/.well-known/est/{label}/`), and the counts its statistics are made of.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::flag;
use crate::{CaId, CertificateSource, Error, Reader, TemplateId, WriteTx, from_micros, to_micros};

/// Where an EST endpoint issues, and the HTTP Basic credentials it accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EstEndpoint {
    /// The issuing CA; the default CA when absent.
    pub ca_id: Option<CaId>,
    /// The template requests are checked against.
    pub template_id: Option<TemplateId>,
    /// The HTTP Basic user name; empty when only client certificates are accepted.
    pub username: String,
    /// The password's Argon2id hash; `None` when only client certificates are accepted.
    pub password_hash: Option<String>,
}

/// A label: an endpoint of its own at `/.well-known/est/{label}/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstLabelRow {
    /// The label in its URLs.
    pub label: String,
    /// Its CA, template and credentials.
    pub endpoint: EstEndpoint,
}

/// The EST settings: the switch, the default endpoint and the labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EstConfigRow {
    /// Whether EST serves at all.
    pub enabled: bool,
    /// The endpoint at `/.well-known/est/`.
    pub default: EstEndpoint,
    /// The labels, by label.
    pub labels: Vec<EstLabelRow>,
    /// When the settings last changed.
    pub updated_at: Option<OffsetDateTime>,
}

fn endpoint(row: &AnyRow) -> Result<EstEndpoint, Error> {
    Ok(EstEndpoint {
        ca_id: row.try_get::<Option<i64>, _>("ca_id")?.map(CaId),
        template_id: row
            .try_get::<Option<i64>, _>("template_id")?
            .map(TemplateId),
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
    })
}

impl Reader {
    /// The EST settings with every label.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn est_config(&self) -> Result<EstConfigRow, Error> {
        let row = sqlx::query(
            "SELECT enabled, ca_id, template_id, username, password_hash, updated_at \
             FROM est_config WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        let updated_at: i64 = row.try_get("updated_at")?;
        let labels = sqlx::query(
            "SELECT label, ca_id, template_id, username, password_hash FROM est_labels \
             ORDER BY label",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(EstLabelRow {
                label: r.try_get("label")?,
                endpoint: endpoint(r)?,
            })
        })
        .collect::<Result<_, Error>>()?;
        Ok(EstConfigRow {
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            default: endpoint(&row)?,
            labels,
            updated_at: (updated_at != 0).then(|| from_micros(updated_at)),
        })
    }

    /// Certificates that came through EST: all of them, and those stored at or after `since`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn est_certificates(&self, since: OffsetDateTime) -> Result<(i64, i64), Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, \
             COALESCE(SUM(CASE WHEN created_at >= $2 THEN 1 ELSE 0 END), 0) AS recent \
             FROM certificates WHERE source = $1",
        )
        .bind(CertificateSource::Est.as_str())
        .bind(to_micros(since))
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("total")?, row.try_get("recent")?))
    }

    /// Audit records by `username` with one of `actions`: all that are kept, and those at or
    /// after `since`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn est_audit_count(
        &self,
        username: &str,
        actions: &[&str],
        since: OffsetDateTime,
    ) -> Result<(i64, i64), Error> {
        let marks: Vec<String> = (0..actions.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT COUNT(*) AS total, \
             COALESCE(SUM(CASE WHEN created_at >= $2 THEN 1 ELSE 0 END), 0) AS recent \
             FROM audit_log WHERE username = $1 AND action IN ({})",
            marks.join(", ")
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(username.to_owned())
            .bind(to_micros(since));
        let row = actions
            .iter()
            .fold(query, |q, a| q.bind((*a).to_owned()))
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("total")?, row.try_get("recent")?))
    }
}

impl WriteTx {
    /// Replaces the EST settings and the whole list of labels. Counts as a change of
    /// credentials: what was remembered of EST passwords is dropped.
    ///
    /// # Errors
    /// [`Error::Conflict`] for a label named twice; [`Error::Database`] or
    /// [`Error::Unavailable`].
    pub async fn set_est_config(
        &mut self,
        config: &EstConfigRow,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        self.credentials_change();
        let now = to_micros(now);
        let d = &config.default;
        sqlx::query(
            "UPDATE est_config SET enabled = $1, ca_id = $2, template_id = $3, username = $4, \
             password_hash = $5, updated_at = $6 WHERE id = 1",
        )
        .bind(flag(config.enabled))
        .bind(d.ca_id.map(|c| c.0))
        .bind(d.template_id.map(|t| t.0))
        .bind(d.username.clone())
        .bind(d.password_hash.clone())
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("DELETE FROM est_labels")
            .execute(&mut *self.tx)
            .await?;
        for label in &config.labels {
            let e = &label.endpoint;
            sqlx::query(
                "INSERT INTO est_labels (label, ca_id, template_id, username, password_hash, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(label.label.clone())
            .bind(e.ca_id.map(|c| c.0))
            .bind(e.template_id.map(|t| t.0))
            .bind(e.username.clone())
            .bind(e.password_hash.clone())
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }
}
