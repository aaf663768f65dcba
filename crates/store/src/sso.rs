//! Single sign-on: identity providers, the external identities linked to local users, and the
//! OIDC logins between their redirect and their callback.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::{Error, Reader, WriteTx, from_micros, to_micros};

/// An identity provider as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoProviderRow {
    /// Integer id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// `oidc` or `ldap`.
    pub provider_type: String,
    /// What the login page shows.
    pub display_name: String,
    /// An icon name for the login page.
    pub icon: Option<String>,
    /// Disabled providers sign nobody in.
    pub enabled: bool,
    /// The role of users it creates when no mapping rule matches.
    pub default_role: String,
    /// Whether a first login creates the local user.
    pub auto_create_users: bool,
    /// Whether each login updates the user's e-mail, name and mapped role.
    pub auto_update_users: bool,
    /// Whether a first login may take over the unlinked local user of the same name.
    pub link_existing: bool,
    /// The type's settings (JSON, nothing secret).
    pub config: String,
    /// The group-to-role rules (JSON list).
    pub role_mappings: String,
    /// The client secret or bind password, sealed.
    pub secret: Option<Vec<u8>>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

/// A provider's fields, to create or replace.
#[derive(Debug, Clone)]
pub struct SsoProviderFields {
    /// Unique name.
    pub name: String,
    /// `oidc` or `ldap`.
    pub provider_type: String,
    /// What the login page shows.
    pub display_name: String,
    /// An icon name.
    pub icon: Option<String>,
    /// On or off.
    pub enabled: bool,
    /// The role of created users when no rule matches.
    pub default_role: String,
    /// Create users on first login.
    pub auto_create_users: bool,
    /// Update users on each login.
    pub auto_update_users: bool,
    /// Take over the unlinked local user of the same name.
    pub link_existing: bool,
    /// The type's settings (JSON).
    pub config: String,
    /// The group-to-role rules (JSON list).
    pub role_mappings: String,
    /// The secret, sealed.
    pub secret: Option<Vec<u8>>,
}

/// An OIDC login in flight, as the callback takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoLoginRow {
    /// The provider it went to.
    pub provider_id: i64,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub pkce_verifier: String,
    /// Where the browser goes after the login (a path of ours).
    pub return_to: Option<String>,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

/// An OIDC login to store.
#[derive(Debug, Clone)]
pub struct NewSsoLogin {
    /// SHA-256 of the state, hex.
    pub state_hash: String,
    /// The provider it goes to.
    pub provider_id: i64,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub pkce_verifier: String,
    /// Where the browser goes after the login.
    pub return_to: Option<String>,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

const COLUMNS: &str = "id, name, provider_type, display_name, icon, enabled, default_role, \
                       auto_create_users, auto_update_users, link_existing, config, role_mappings, \
                       secret, created_at, updated_at";

fn provider(row: &AnyRow) -> Result<SsoProviderRow, Error> {
    Ok(SsoProviderRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        provider_type: row.try_get("provider_type")?,
        display_name: row.try_get("display_name")?,
        icon: row.try_get("icon")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        default_role: row.try_get("default_role")?,
        auto_create_users: row.try_get::<i64, _>("auto_create_users")? != 0,
        auto_update_users: row.try_get::<i64, _>("auto_update_users")? != 0,
        link_existing: row.try_get::<i64, _>("link_existing")? != 0,
        config: row.try_get("config")?,
        role_mappings: row.try_get("role_mappings")?,
        secret: row.try_get("secret")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

impl Reader {
    /// Every provider, by name.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn sso_providers(&self) -> Result<Vec<SsoProviderRow>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM sso_providers ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(provider).collect()
    }

    /// One provider.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn sso_provider(&self, id: i64) -> Result<Option<SsoProviderRow>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM sso_providers WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(provider).transpose()
    }

    /// The provider called `name`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn sso_provider_by_name(&self, name: &str) -> Result<Option<SsoProviderRow>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM sso_providers WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(provider).transpose()
    }

    /// The local user `subject` of provider `provider_id` is linked to.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn sso_identity_user(
        &self,
        provider_id: i64,
        subject: &str,
    ) -> Result<Option<i64>, Error> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM sso_identities WHERE provider_id = $1 AND subject = $2",
        )
        .bind(provider_id)
        .bind(subject.to_owned())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// How many local users each provider has signed in, by provider id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn sso_identity_counts(&self) -> Result<Vec<(i64, i64)>, Error> {
        let rows = sqlx::query(
            "SELECT provider_id, COUNT(*) AS n FROM sso_identities GROUP BY provider_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("provider_id")?, r.try_get("n")?)))
            .collect()
    }
}

impl WriteTx {
    /// Stores a new provider and returns its id, or `None` when the name is taken.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_sso_provider(
        &mut self,
        p: &SsoProviderFields,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, Error> {
        let row = sqlx::query(
            "INSERT INTO sso_providers (name, provider_type, display_name, icon, enabled, \
             default_role, auto_create_users, auto_update_users, link_existing, config, \
             role_mappings, secret, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(p.name.clone())
        .bind(p.provider_type.clone())
        .bind(p.display_name.clone())
        .bind(p.icon.clone())
        .bind(i64::from(p.enabled))
        .bind(p.default_role.clone())
        .bind(i64::from(p.auto_create_users))
        .bind(i64::from(p.auto_update_users))
        .bind(i64::from(p.link_existing))
        .bind(p.config.clone())
        .bind(p.role_mappings.clone())
        .bind(p.secret.clone())
        .bind(to_micros(now))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| r.try_get("id").map_err(Error::from))
            .transpose()
    }

    /// Replaces provider `id`'s fields; false when there is no such provider. A name taken by
    /// another provider is a [`Error::Conflict`].
    ///
    /// # Errors
    /// [`Error::Conflict`], [`Error::Database`] or [`Error::Unavailable`].
    pub async fn update_sso_provider(
        &mut self,
        id: i64,
        p: &SsoProviderFields,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let taken: Option<i64> =
            sqlx::query_scalar("SELECT id FROM sso_providers WHERE name = $1 AND id <> $2")
                .bind(p.name.clone())
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await?;
        if taken.is_some() {
            return Err(Error::Conflict(format!(
                "a provider named '{}' exists",
                p.name
            )));
        }
        let done = sqlx::query(
            "UPDATE sso_providers SET name = $1, provider_type = $2, display_name = $3, \
             icon = $4, enabled = $5, default_role = $6, auto_create_users = $7, \
             auto_update_users = $8, link_existing = $9, config = $10, role_mappings = $11, \
             secret = $12, updated_at = $13 WHERE id = $14",
        )
        .bind(p.name.clone())
        .bind(p.provider_type.clone())
        .bind(p.display_name.clone())
        .bind(p.icon.clone())
        .bind(i64::from(p.enabled))
        .bind(p.default_role.clone())
        .bind(i64::from(p.auto_create_users))
        .bind(i64::from(p.auto_update_users))
        .bind(i64::from(p.link_existing))
        .bind(p.config.clone())
        .bind(p.role_mappings.clone())
        .bind(p.secret.clone())
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes provider `id` with its linked identities and logins in flight (the local users
    /// stay); false when there is no such provider.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_sso_provider(&mut self, id: i64) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM sso_providers WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Links `subject` of provider `provider_id` to `user_id` and records the login; a
    /// subject linked already keeps its user.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn link_sso_identity(
        &mut self,
        provider_id: i64,
        subject: &str,
        user_id: i64,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO sso_identities (provider_id, subject, user_id, created_at, \
             last_login_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (provider_id, subject) DO UPDATE SET last_login_at = $4",
        )
        .bind(provider_id)
        .bind(subject.to_owned())
        .bind(user_id)
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Stores an OIDC login in flight, and drops those that expired before `now`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_sso_login(
        &mut self,
        l: &NewSsoLogin,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM sso_logins WHERE expires_at <= $1")
            .bind(to_micros(now))
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO sso_logins (state_hash, provider_id, nonce, pkce_verifier, return_to, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(l.state_hash.clone())
        .bind(l.provider_id)
        .bind(l.nonce.clone())
        .bind(l.pkce_verifier.clone())
        .bind(l.return_to.clone())
        .bind(to_micros(now))
        .bind(to_micros(l.expires_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Takes (deletes and returns) the login whose state hashes to `state_hash`, expired or
    /// not, so that no callback is used twice.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn take_sso_login(&mut self, state_hash: &str) -> Result<Option<SsoLoginRow>, Error> {
        let row = sqlx::query(
            "DELETE FROM sso_logins WHERE state_hash = $1 \
             RETURNING provider_id, nonce, pkce_verifier, return_to, expires_at",
        )
        .bind(state_hash.to_owned())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|row| {
            Ok(SsoLoginRow {
                provider_id: row.try_get("provider_id")?,
                nonce: row.try_get("nonce")?,
                pkce_verifier: row.try_get("pkce_verifier")?,
                return_to: row.try_get("return_to")?,
                expires_at: from_micros(row.try_get("expires_at")?),
            })
        })
        .transpose()
    }
}
