//! The key vault's front: private keys are sealed before they reach the store and opened only to
//! sign (or to be exported by someone allowed to).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pki::{PrivateKey, Signer};
use store::{NewKey, WriteTx};
use time::OffsetDateTime;

use crate::{Authority, Error, Result};

/// The backend name of keys sealed by the vault and kept in the database.
const SOFTWARE: &str = "software";

/// The sealing context binds a sealed key to its own row, so a blob cannot be swapped.
fn context(refid: &str) -> String {
    format!("private-key:{refid}")
}

impl Authority {
    /// Seals `key` and stores it in `tx`; returns its id.
    ///
    /// # Errors
    /// [`Error::Internal`] when sealing fails; store errors.
    pub(crate) async fn store_key(
        &self,
        tx: &mut WriteTx,
        key: &PrivateKey,
        now: OffsetDateTime,
    ) -> Result<i64> {
        Ok(tx.insert_key(&self.sealed_key(key)?, now).await?)
    }

    /// `key` sealed, ready to store.
    ///
    /// # Errors
    /// [`Error::Internal`] when sealing fails.
    pub(crate) fn sealed_key(&self, key: &PrivateKey) -> Result<NewKey> {
        let refid = uuid::Uuid::new_v4().to_string();
        let sealed = self.vault().seal(key.pkcs8_der(), &context(&refid))?;
        Ok(NewKey {
            refid,
            key_type: key.key_type().label(),
            backend: SOFTWARE.into(),
            sealed: Some(sealed),
            public_key: key.public_key_der(),
        })
    }

    /// The signer for stored key `key_id` of the CA whose certificate has `ca_fingerprint`.
    /// Opened CA keys stay in memory: unsealing and parsing one for every issuance costs more
    /// than the signature. The certificate's fingerprint is part of the cache key because SQLite
    /// may give a deleted key's id to a new key, while a certificate binds exactly one key.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such key; [`Error::Internal`] when it cannot be opened.
    pub(crate) async fn signer(
        &self,
        key_id: i64,
        ca_fingerprint: &str,
    ) -> Result<Arc<dyn Signer>> {
        let slot = (key_id, ca_fingerprint.to_owned());
        if let Some(signer) = self.signers.get(&slot) {
            return Ok(signer);
        }
        let signer: Arc<dyn Signer> = Arc::new(self.open_key(key_id).await?);
        self.signers.put(slot, signer.clone());
        Ok(signer)
    }

    /// Opens stored software key `key_id`.
    ///
    /// # Errors
    /// As [`Authority::signer`].
    pub(crate) async fn open_key(&self, key_id: i64) -> Result<PrivateKey> {
        let row = self
            .store
            .key(key_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("key {key_id} not found")))?;
        let sealed = match (row.backend.as_str(), row.sealed) {
            (SOFTWARE, Some(sealed)) => sealed,
            (backend, _) => {
                return Err(Error::Internal(format!(
                    "key {key_id} lives in backend '{backend}', which this build cannot use"
                )));
            }
        };
        let pkcs8 = self
            .vault()
            .open(&sealed, &context(&row.refid))
            .map_err(|e| Error::Internal(e.to_string()))?;
        PrivateKey::from_pkcs8_der(&pkcs8).map_err(|e| Error::Internal(e.to_string()))
    }
}

/// Opened CA signers by (key id, CA certificate fingerprint).
#[derive(Default)]
pub(crate) struct SignerCache(Mutex<HashMap<(i64, String), Arc<dyn Signer>>>);

impl SignerCache {
    fn get(&self, slot: &(i64, String)) -> Option<Arc<dyn Signer>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(slot)
            .cloned()
    }

    fn put(&self, slot: (i64, String), signer: Arc<dyn Signer>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(slot, signer);
    }

    /// Drops the key of a deleted CA from memory.
    pub(crate) fn forget(&self, ca_fingerprint: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(_, fingerprint), _| fingerprint != ca_fingerprint);
    }
}

impl std::fmt::Debug for SignerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignerCache")
    }
}
