//! ACME profiles: one directory each, bound to a CA, a template, a validity and options.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::words;
use crate::db::{Arg, Filter, flag};
use crate::{CaId, Error, Reader, TemplateId, WriteTx, from_micros, to_micros};

/// An ACME profile: one directory, bound to a CA, a template, a validity and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeProfileRow {
    /// Integer id.
    pub id: i64,
    /// The name in its URLs (`/acme/{name}/directory`).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Whether its directory serves.
    pub enabled: bool,
    /// Whether it is the one at `/acme/directory`.
    pub is_default: bool,
    /// The issuing CA; the default CA when absent.
    pub ca_id: Option<CaId>,
    /// The template requests are checked against.
    pub template_id: Option<TemplateId>,
    /// Validity of the certificates it issues.
    pub validity_days: i64,
    /// Whether new accounts need an external account binding.
    pub require_eab: bool,
    /// DNS suffixes and IP networks it issues for; empty allows any.
    pub allowed_identifiers: Vec<String>,
    /// The challenge types it offers.
    pub challenge_types: Vec<String>,
    /// The terms-of-service URL in its directory.
    pub terms_of_service: String,
    /// The website URL in its directory.
    pub website: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// The settable fields of a profile; `None` leaves a field as it is (or takes the default on
/// insert).
#[derive(Debug, Clone, Default)]
pub struct AcmeProfileFields {
    /// Free text.
    pub description: Option<String>,
    /// Whether its directory serves.
    pub enabled: Option<bool>,
    /// The issuing CA (`Some(None)` is the default CA).
    pub ca_id: Option<Option<CaId>>,
    /// The template (`Some(None)` is none).
    pub template_id: Option<Option<TemplateId>>,
    /// Validity in days.
    pub validity_days: Option<i64>,
    /// Whether new accounts need external account binding.
    pub require_eab: Option<bool>,
    /// DNS suffixes and IP networks.
    pub allowed_identifiers: Option<Vec<String>>,
    /// Challenge types offered.
    pub challenge_types: Option<Vec<String>>,
    /// Terms-of-service URL.
    pub terms_of_service: Option<String>,
    /// Website URL.
    pub website: Option<String>,
}

const PROFILE_COLUMNS: &str = "id, name, description, enabled, is_default, ca_id, template_id, \
    validity_days, require_eab, allowed_identifiers, challenge_types, terms_of_service, website, \
    created_at, updated_at";

fn profile(row: &AnyRow) -> Result<AcmeProfileRow, Error> {
    Ok(AcmeProfileRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        is_default: row.try_get::<i64, _>("is_default")? != 0,
        ca_id: row.try_get("ca_id")?,
        template_id: row.try_get("template_id")?,
        validity_days: row.try_get("validity_days")?,
        require_eab: row.try_get::<i64, _>("require_eab")? != 0,
        allowed_identifiers: words(&row.try_get::<String, _>("allowed_identifiers")?),
        challenge_types: words(&row.try_get::<String, _>("challenge_types")?),
        terms_of_service: row.try_get("terms_of_service")?,
        website: row.try_get("website")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

impl Reader {
    /// Every ACME profile, by name.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_profiles(&self) -> Result<Vec<AcmeProfileRow>, Error> {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM acme_profiles ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(profile).collect()
    }

    /// The profile named `name`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_profile_named(&self, name: &str) -> Result<Option<AcmeProfileRow>, Error> {
        Filter::new("name = ?", [Arg::Text(name.to_owned())])
            .fetch_row(self, PROFILE_COLUMNS, "acme_profiles", profile)
            .await
    }

    /// Profile `id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_profile(&self, id: i64) -> Result<Option<AcmeProfileRow>, Error> {
        Filter::new("id = ?", [Arg::Int(id)])
            .fetch_row(self, PROFILE_COLUMNS, "acme_profiles", profile)
            .await
    }

    /// The profile at `/acme/directory`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn default_acme_profile(&self) -> Result<Option<AcmeProfileRow>, Error> {
        Filter::new("is_default = 1", [])
            .fetch_row(self, PROFILE_COLUMNS, "acme_profiles", profile)
            .await
    }
}

impl WriteTx {
    /// Stores a profile named `name` and returns its id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the name is taken; [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_acme_profile(
        &mut self,
        name: &str,
        is_default: bool,
        fields: &AcmeProfileFields,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "INSERT INTO acme_profiles (name, is_default, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) RETURNING id",
        )
        .bind(name.to_owned())
        .bind(flag(is_default))
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        let id = row.try_get("id")?;
        self.update_acme_profile(id, fields, now).await?;
        Ok(id)
    }

    /// Changes the fields of profile `id` that `fields` sets. Returns false when there is no
    /// such profile.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn update_acme_profile(
        &mut self,
        id: i64,
        fields: &AcmeProfileFields,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let mut sets = vec!["updated_at = $1".to_owned()];
        let mut args = vec![Arg::Int(to_micros(now))];
        let mut set = |column: &str, arg: Option<Arg>| {
            args.push(arg.unwrap_or(Arg::Null));
            sets.push(format!("{column} = ${}", args.len()));
        };
        if let Some(v) = &fields.description {
            set("description", Some(Arg::Text(v.clone())));
        }
        if let Some(v) = fields.enabled {
            set("enabled", Some(Arg::Int(flag(v))));
        }
        if let Some(v) = fields.ca_id {
            set("ca_id", v.map(|id| Arg::Int(id.0)));
        }
        if let Some(v) = fields.template_id {
            set("template_id", v.map(|id| Arg::Int(id.0)));
        }
        if let Some(v) = fields.validity_days {
            set("validity_days", Some(Arg::Int(v)));
        }
        if let Some(v) = fields.require_eab {
            set("require_eab", Some(Arg::Int(flag(v))));
        }
        if let Some(v) = &fields.allowed_identifiers {
            set("allowed_identifiers", Some(Arg::Text(v.join(" "))));
        }
        if let Some(v) = &fields.challenge_types {
            set("challenge_types", Some(Arg::Text(v.join(" "))));
        }
        if let Some(v) = &fields.terms_of_service {
            set("terms_of_service", Some(Arg::Text(v.clone())));
        }
        if let Some(v) = &fields.website {
            set("website", Some(Arg::Text(v.clone())));
        }
        let sql = format!(
            "UPDATE acme_profiles SET {} WHERE id = ${}",
            sets.join(", "),
            args.len() + 1
        );
        let query = args
            .iter()
            .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, arg| arg.bind(q))
            .bind(id);
        Ok(query.execute(&mut *self.tx).await?.rows_affected() > 0)
    }

    /// Deletes profile `id` with its accounts, orders and keys. Returns false when there is no
    /// such profile.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_acme_profile(&mut self, id: i64) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM acme_profiles WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
