//! External account binding keys: made for a profile, shown once, revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use store::AcmeEabKeyRow;
use zeroize::Zeroizing;

use super::check_description;
use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

use crate::acme::EAB_CONTEXT;

/// A new external account binding key, with its HMAC key as the client needs it. The HMAC
/// key is shown this once: only its sealed form is stored.
#[derive(Debug, Clone)]
pub struct IssuedEabKey {
    /// The stored key (the HMAC sealed).
    pub key: AcmeEabKeyRow,
    /// The HMAC key, base64url without padding (`--eab-hmac-key`).
    pub hmac_key: Zeroizing<String>,
}

impl Authority {
    /// The external account binding keys of profile `profile_id`, newest first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; [`Error::NotFound`] for no such profile.
    pub async fn acme_eab_keys(
        &self,
        principal: &Principal,
        profile_id: i64,
    ) -> Result<Vec<AcmeEabKeyRow>> {
        principal.require(
            Permission::ReadAcme,
            "listing external account binding keys",
        )?;
        self.acme_profile_row(profile_id).await?;
        Ok(self.store.acme_eab_keys(profile_id).await?)
    }

    /// Makes an external account binding key for profile `profile_id`: a random key id
    /// (16 bytes) and HMAC key (32 bytes), both base64url. The HMAC key is returned this once
    /// and stored sealed by the vault.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:acme`; [`Error::NotFound`] for no such profile;
    /// [`Error::Invalid`] for a description that is too long; [`Error::Internal`] when the
    /// random generator or the vault fails.
    pub async fn create_acme_eab_key(
        &self,
        principal: &Principal,
        profile_id: i64,
        description: &str,
    ) -> Result<IssuedEabKey> {
        principal.require(
            Permission::WriteAcme,
            "creating external account binding keys",
        )?;
        check_description(description)?;
        let profile = self.acme_profile_row(profile_id).await?;
        // Both values are pasted into command lines (certbot --eab-kid K, lego --hmac H), where
        // a leading '-' reads as an option: the key id is hex, and an HMAC key whose base64url
        // would start with '-' (first six bits 62) is drawn again.
        let key_id = hex::encode(crate::token::random_bytes::<16>()?);
        let mut secret = Zeroizing::new([0u8; 32]);
        loop {
            crate::token::fill_random(secret.as_mut_slice())?;
            if secret[0] & 0xFC != 0xF8 {
                break;
            }
        }
        let sealed = self.vault.seal(secret.as_slice(), EAB_CONTEXT)?;
        let hmac_key = Zeroizing::new(URL_SAFE_NO_PAD.encode(secret.as_slice()));
        let created_by = principal.user.as_ref().map(|u| u.id);
        let mut tx = self.store.begin_write().await?;
        let id = tx
            .insert_acme_eab_key(
                &key_id,
                profile_id,
                &sealed,
                description,
                created_by,
                self.now(),
            )
            .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "acme_eab_key_created",
                "acme_eab_key",
                id,
                format!("key id {key_id} on profile '{}'", profile.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        let key =
            self.store.acme_eab_key_by_id(id).await?.ok_or_else(|| {
                Error::Internal("a new external account binding key vanished".into())
            })?;
        Ok(IssuedEabKey { key, hmac_key })
    }

    /// Revokes an external account binding key of profile `profile_id`, named by its integer
    /// id or by its key id: no account can register with it any more (the account it bound,
    /// if any, stays).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:acme`; [`Error::NotFound`] for no such profile or
    /// key; [`Error::Conflict`] when it was revoked before.
    pub async fn revoke_acme_eab_key(
        &self,
        principal: &Principal,
        profile_id: i64,
        key: &str,
    ) -> Result<AcmeEabKeyRow> {
        principal.require(
            Permission::WriteAcme,
            "revoking external account binding keys",
        )?;
        let profile = self.acme_profile_row(profile_id).await?;
        let mut found = None;
        if let Ok(id) = key.parse::<i64>() {
            found = self.store.acme_eab_key_by_id(id).await?;
        }
        if found.is_none() {
            found = self.store.acme_eab_key(key).await?;
        }
        let stored = found
            .filter(|k| k.profile_id == profile_id)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "profile '{}' has no external account binding key {key}",
                    profile.name
                ))
            })?;
        let mut tx = self.store.begin_write().await?;
        if !tx.revoke_acme_eab_key(stored.id, self.now()).await? {
            return Err(Error::Conflict(format!(
                "external account binding key {} is already revoked",
                stored.key_id
            )));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "acme_eab_key_revoked",
                "acme_eab_key",
                stored.id,
                format!("key id {} on profile '{}'", stored.key_id, profile.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.store
            .acme_eab_key_by_id(stored.id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("key {key} was deleted meanwhile")))
    }
}
