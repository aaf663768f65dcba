//! Secrets kept sealed inside a setting's JSON (the SMTP password, the HTTPS listener key all
//! nodes share, the scheduled backups' passphrase): described once each, so that the master-key
//! rotation seals them again, and its status and check count and open them, all alike.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::{Authority, Error, Result};

/// A secret sealed in a field of a setting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SealedSetting {
    /// Its kind in the encryption status.
    pub kind: &'static str,
    /// What it is, for people.
    pub label: &'static str,
    /// The setting's key.
    pub key: &'static str,
    /// The field of the setting's JSON object that holds it, base64.
    pub field: &'static str,
    /// The vault context it is sealed under.
    pub context: &'static str,
}

/// Every secret sealed inside a setting.
pub(crate) const SEALED_SETTINGS: [SealedSetting; 3] = [
    crate::email::SEALED_PASSWORD,
    crate::ca::SEALED_SHARED_LISTENER_KEY,
    crate::backup::SEALED_PASSPHRASE,
];

/// The sealed bytes in `value`'s `field`, if it holds any.
fn sealed_in(value: &serde_json::Value, setting: &SealedSetting) -> Result<Option<Vec<u8>>> {
    match value.get(setting.field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => B64
            .decode(text)
            .map(Some)
            .map_err(|e| Error::Internal(format!("the stored {}: {e}", setting.label))),
        Some(_) => Err(Error::Internal(format!(
            "the stored {} is not text",
            setting.label
        ))),
    }
}

/// `sealed` as a setting's field holds it.
pub(crate) fn encoded(sealed: &[u8]) -> String {
    B64.encode(sealed)
}

/// The sealed bytes of a setting's field as stored.
///
/// # Errors
/// [`Error::Internal`] when it is not base64.
pub(crate) fn decoded(text: &str, label: &str) -> Result<Vec<u8>> {
    B64.decode(text)
        .map_err(|e| Error::Internal(format!("the stored {label}: {e}")))
}

impl Authority {
    /// The secret `setting` describes, as sealed, if one is stored.
    ///
    /// # Errors
    /// Store errors; [`Error::Internal`] for a damaged setting.
    pub(crate) async fn sealed_setting(&self, setting: &SealedSetting) -> Result<Option<Vec<u8>>> {
        match self.store.setting(setting.key).await? {
            Some(value) => sealed_in(&value, setting),
            None => Ok(None),
        }
    }

    /// Seals the secret `setting` describes again under the current master key unless it is
    /// already; read and written in one write transaction, so that a change made meanwhile is
    /// never overwritten. Returns whether it was sealed again.
    ///
    /// # Errors
    /// Store and vault errors.
    pub(crate) async fn reseal_setting(&self, setting: &SealedSetting) -> Result<bool> {
        let current = self.vault.current_version();
        let mut tx = self.store.begin_write().await?;
        let Some(mut value) = tx.setting(setting.key).await? else {
            return Ok(false);
        };
        let Some(sealed) = sealed_in(&value, setting)? else {
            return Ok(false);
        };
        if crate::vault::sealed_version(&sealed) == Some(current) {
            return Ok(false);
        }
        let resealed = encoded(&self.vault.reseal(&sealed, setting.context)?);
        if let Some(object) = value.as_object_mut() {
            object.insert(setting.field.to_owned(), resealed.into());
        }
        tx.set_setting(setting.key, &value, self.now()).await?;
        tx.commit().await?;
        Ok(true)
    }
}
