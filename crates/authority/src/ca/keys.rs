//! The key vault's front: private keys are sealed before they reach the store and opened only
//! here, to sign (or to be exported by someone allowed to).

use pki::{KeyType, PrivateKey};
use store::{CertificateId, KeyId, NewKey, WriteTx};
use time::OffsetDateTime;

use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

/// The backend name of keys sealed by the vault and kept in the database.
const SOFTWARE: &str = "software";

/// The sealing context binds a sealed key to its own row, so a blob cannot be swapped.
pub(crate) fn key_context(refid: &str) -> String {
    format!("private-key:{refid}")
}

impl Authority {
    /// Generates a key. An RSA key takes long enough (up to seconds) to stall a worker, so it is
    /// made in the CPU pool; an elliptic-curve key takes microseconds, and is made here, so that
    /// issuance at full speed does not queue behind the pool.
    ///
    /// # Errors
    /// [`Error::Busy`] when an RSA key is asked for and the pool is full; [`Error::Internal`]
    /// when generation fails.
    pub(crate) async fn generate_key(&self, key_type: KeyType) -> Result<PrivateKey> {
        match key_type {
            KeyType::Rsa { .. } => {
                self.cpu
                    .run(move || Ok(PrivateKey::generate(key_type)?))
                    .await
            }
            KeyType::EcP256 | KeyType::EcP384 | KeyType::Ed25519 => {
                Ok(PrivateKey::generate(key_type)?)
            }
        }
    }

    /// Seals `key` and stores it in `tx`; returns its id.
    ///
    /// # Errors
    /// [`Error::Internal`] when sealing fails; store errors.
    pub(crate) async fn store_key(
        &self,
        tx: &mut WriteTx,
        key: &PrivateKey,
        now: OffsetDateTime,
    ) -> Result<KeyId> {
        Ok(tx.insert_key(&self.sealed_key(key)?, now).await?)
    }

    /// `key` sealed, ready to store.
    ///
    /// # Errors
    /// [`Error::Internal`] when sealing fails.
    pub(crate) fn sealed_key(&self, key: &PrivateKey) -> Result<NewKey> {
        let refid = crate::token::refid()?;
        let sealed = self.vault().seal(key.pkcs8_der(), &key_context(&refid))?;
        Ok(NewKey {
            refid,
            key_type: key.key_type().label(),
            backend: SOFTWARE.into(),
            sealed: Some(sealed),
            public_key: key.public_key_der(),
        })
    }

    /// Opens stored software key `key_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such key; [`Error::Internal`] for a key in a backend this
    /// build cannot use, or one that does not open.
    pub(crate) async fn open_key(&self, key_id: KeyId) -> Result<PrivateKey> {
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
            .open(&sealed, &key_context(&row.refid))
            .map_err(|e| Error::Internal(e.to_string()))?;
        PrivateKey::from_pkcs8_der(&pkcs8).map_err(|e| Error::Internal(e.to_string()))
    }

    /// The private key of a certificate; needs `export:keys`, and every export is audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `export:keys`; [`Error::NotFound`] when certmint
    /// does not hold the key.
    pub async fn certificate_key(
        &self,
        principal: &Principal,
        id: CertificateId,
    ) -> Result<PrivateKey> {
        if !principal.can(Permission::ExportKeys) {
            return Err(Error::Forbidden(
                "exporting a private key needs export:keys".into(),
            ));
        }
        let cert = self.certificate(id).await?;
        let key_id = cert.key_id.ok_or_else(|| {
            Error::NotFound(format!(
                "certmint does not hold the key of certificate {id}"
            ))
        })?;
        let key = self.open_key(key_id).await?;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "private_key_exported",
                "certificate",
                id,
                format!(
                    "key of '{}' (serial {})",
                    cert.cert.subject, cert.cert.serial
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(key)
    }
}
