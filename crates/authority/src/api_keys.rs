//! API keys: bearer secrets with their own expiry and a subset of their owner's permissions.

use time::Duration;
use zeroize::Zeroizing;

use crate::audit::Event;
use crate::principal::{Credential, Principal};
use crate::token::{digest_hex, new_token};
use crate::{ApiKeyRow, Authority, Error, Result, rbac, validate};

/// Every key starts with this, so that leaked keys are easy to find in code and logs.
pub const KEY_PREFIX: &str = "cm_";
/// How many leading characters of a key are kept to tell keys apart.
const SHOWN_PREFIX_LEN: usize = 10;
/// The longest lifetime a key may be given.
const MAX_DAYS: i64 = 3650;

/// A key to create.
#[derive(Debug, Clone)]
pub struct ApiKeyInput {
    /// A label.
    pub name: String,
    /// Lifetime in days; `None` for a key that does not expire.
    pub expires_days: Option<i64>,
    /// Permission strings; each must be held by the creator.
    pub permissions: Vec<String>,
}

/// Changes to a key.
#[derive(Debug, Clone, Default)]
pub struct ApiKeyUpdate {
    /// New label.
    pub name: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// A key with its secret, returned once at creation or regeneration.
#[derive(Debug, Clone)]
pub struct IssuedApiKey {
    /// The stored key.
    pub key: ApiKeyRow,
    /// The secret; never stored, never shown again.
    pub secret: Zeroizing<String>,
}

fn new_secret() -> Result<(Zeroizing<String>, String, String)> {
    let secret = Zeroizing::new(new_token(KEY_PREFIX)?);
    let prefix = secret.chars().take(SHOWN_PREFIX_LEN).collect();
    let hash = digest_hex(&secret);
    Ok((secret, prefix, hash))
}

impl Authority {
    /// The principal's keys.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without an account; store errors.
    pub async fn api_keys(&self, principal: &Principal) -> Result<Vec<ApiKeyRow>> {
        Ok(self.store.api_keys(principal.account()?.id).await?)
    }

    /// One of the principal's keys.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the principal has no such key.
    pub async fn api_key(&self, principal: &Principal, id: i64) -> Result<ApiKeyRow> {
        self.store
            .api_key(principal.account()?.id, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no API key {id}")))
    }

    /// One of the principal's keys, to change: a principal using an API key may manage only
    /// keys no broader than that key, so a narrow key cannot take over (regenerate), widen the
    /// use of (enable) or remove a broad one; a login session manages all of its user's keys.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the principal has no such key; [`Error::Forbidden`] when the key
    /// holds a permission the principal's key does not.
    async fn manageable_api_key(&self, principal: &Principal, id: i64) -> Result<ApiKeyRow> {
        let key = self.api_key(principal, id).await?;
        if let Credential::ApiKey { permissions, .. } = &principal.credential
            && let Some(p) = key
                .permissions
                .iter()
                .find(|p| !rbac::grants(permissions, p))
        {
            return Err(Error::Forbidden(format!(
                "API key {id} holds '{p}', which the key you are using does not; manage it \
                 from a login session or with a key that holds all its permissions"
            )));
        }
        Ok(key)
    }

    /// Creates a key for the principal. Its permissions must be ones the principal holds now
    /// (through its role and, when it is itself using a key, through that key).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad name, lifetime or permission; [`Error::Forbidden`] for a
    /// permission the principal does not hold.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        input: ApiKeyInput,
    ) -> Result<IssuedApiKey> {
        let user_id = principal.account()?.id;
        validate::text("name", &input.name, 1, 100)?;
        if input.permissions.is_empty() {
            return Err(Error::Invalid(
                "permissions must name at least one permission".into(),
            ));
        }
        rbac::check_subset(&principal.permissions(), &input.permissions)?;
        let expires_at = match input.expires_days {
            Some(days) if (1..=MAX_DAYS).contains(&days) => Some(self.now() + Duration::days(days)),
            Some(_) => {
                return Err(Error::Invalid(format!(
                    "expires_days must be between 1 and {MAX_DAYS}"
                )));
            }
            None => None,
        };
        let (secret, key_prefix, key_hash) = new_secret()?;
        let mut tx = self.store.begin_write().await?;
        let id = tx
            .insert_api_key(
                &store::NewApiKey {
                    user_id,
                    name: input.name.clone(),
                    key_prefix,
                    key_hash,
                    permissions: input.permissions.clone(),
                    expires_at,
                },
                self.now(),
            )
            .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "api_key_created",
                "api_key",
                id,
                format!(
                    "API key '{}' created with {}",
                    input.name,
                    input.permissions.join(" ")
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(IssuedApiKey {
            key: self.api_key(principal, id).await?,
            secret,
        })
    }

    /// Renames, enables or disables one of the principal's keys.
    ///
    /// # Errors
    /// [`Error::NotFound`] or [`Error::Invalid`]; [`Error::Forbidden`] when the key is broader
    /// than the API key the principal is using.
    pub async fn update_api_key(
        &self,
        principal: &Principal,
        id: i64,
        update: ApiKeyUpdate,
    ) -> Result<ApiKeyRow> {
        let user_id = principal.account()?.id;
        self.manageable_api_key(principal, id).await?;
        if let Some(name) = &update.name {
            validate::text("name", name, 1, 100)?;
        }
        let mut tx = self.store.begin_write().await?;
        if !tx
            .update_api_key(
                user_id,
                id,
                update.name.as_deref(),
                update.enabled,
                self.now(),
            )
            .await?
        {
            return Err(Error::NotFound(format!("no API key {id}")));
        }
        let details = match update.enabled {
            Some(true) => "API key updated and enabled",
            Some(false) => "API key updated and disabled",
            None => "API key updated",
        };
        tx.audit(&self.entry_by(
            principal,
            Event::new("api_key_updated", "api_key", id, details),
        ))
        .await?;
        tx.commit().await?;
        self.api_key(principal, id).await
    }

    /// Replaces the secret of one of the principal's keys; the old secret stops working at once.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the principal has no such key; [`Error::Forbidden`] when the
    /// key is broader than the API key the principal is using.
    pub async fn regenerate_api_key(&self, principal: &Principal, id: i64) -> Result<IssuedApiKey> {
        let user_id = principal.account()?.id;
        self.manageable_api_key(principal, id).await?;
        let (secret, key_prefix, key_hash) = new_secret()?;
        let mut tx = self.store.begin_write().await?;
        if !tx
            .replace_api_key_secret(user_id, id, &key_prefix, &key_hash, self.now())
            .await?
        {
            return Err(Error::NotFound(format!("no API key {id}")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "api_key_regenerated",
                "api_key",
                id,
                "API key secret replaced",
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(IssuedApiKey {
            key: self.api_key(principal, id).await?,
            secret,
        })
    }

    /// Deletes one of the principal's keys.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the principal has no such key; [`Error::Forbidden`] when the
    /// key is broader than the API key the principal is using.
    pub async fn delete_api_key(&self, principal: &Principal, id: i64) -> Result<()> {
        let user_id = principal.account()?.id;
        self.manageable_api_key(principal, id).await?;
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_api_key(user_id, id).await? {
            return Err(Error::NotFound(format!("no API key {id}")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new("api_key_deleted", "api_key", id, "API key deleted"),
        ))
        .await?;
        Ok(tx.commit().await?)
    }
}
