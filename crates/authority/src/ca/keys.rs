//! The key vault's front: private keys are sealed before they reach the store and opened only
//! here, to sign (or to be exported by someone allowed to).

use std::sync::Arc;

use pki::{KeyType, PrivateKey, Signer};
use store::{CertificateId, KeyId, KeyRow, NewKey, WriteTx};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

/// The backend name of keys sealed by the vault and kept in the database.
const SOFTWARE: &str = "software";

/// The sealing context binds a sealed key to its own row, so a blob cannot be swapped.
pub(crate) fn key_context(refid: &str) -> String {
    format!("private-key:{refid}")
}

/// What checking a page of stored keys found.
#[derive(Debug, Default)]
pub(crate) struct SealedCheck {
    /// Keys sealed here, each tried with the vault.
    pub(crate) opened: i64,
    /// Keys held elsewhere (an HSM), not opened.
    pub(crate) elsewhere: i64,
    /// Keys that do not open, or are not the key their row records, with what is wrong.
    pub(crate) failed: Vec<(KeyId, String)>,
}

impl Authority {
    /// Opens each software key of `page` with the vault and checks that it is the key its
    /// row's public key records. The opened keys never leave this module; reading them runs
    /// in the CPU pool (an RSA key takes a while to check).
    ///
    /// # Errors
    /// [`Error::Busy`] when the CPU pool is full.
    pub(crate) async fn check_sealed_keys(&self, page: &[KeyRow]) -> Result<SealedCheck> {
        let mut check = SealedCheck::default();
        let mut opened: Vec<(KeyId, Zeroizing<Vec<u8>>, Vec<u8>)> = Vec::new();
        for row in page {
            let Some(sealed) = &row.sealed else {
                check.elsewhere += 1;
                continue;
            };
            check.opened += 1;
            match self.vault().open(sealed, &key_context(&row.refid)) {
                Ok(pkcs8) => opened.push((row.id, pkcs8, row.public_key.clone())),
                Err(_) => check.failed.push((
                    row.id,
                    format!(
                        "key {} does not open with the vault: it is damaged or was sealed under \
                         another master key",
                        row.id
                    ),
                )),
            }
        }
        if opened.is_empty() {
            return Ok(check);
        }
        let mismatched = self
            .cpu
            .run(move || {
                Ok(opened
                    .iter()
                    .filter_map(|(id, pkcs8, public_key)| {
                        let wrong = match PrivateKey::from_pkcs8_der(pkcs8) {
                            Ok(key) if key.public_key_der() == *public_key => return None,
                            Ok(_) => {
                                format!("key {id} opens, but is not the key its public key records")
                            }
                            Err(e) => format!("key {id} opens, but does not read as a key: {e}"),
                        };
                        Some((*id, wrong))
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        check.failed.extend(mismatched);
        Ok(check)
    }

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
            hsm: None,
        })
    }

    /// The signer of stored key `key_id`: a software key opened, or a key in a token.
    ///
    /// # Errors
    /// As [`Self::open_key`]; [`Error::Unavailable`] when the key's token cannot be opened.
    pub(crate) async fn open_signer(&self, key_id: KeyId) -> Result<Arc<dyn Signer>> {
        let row = self
            .store
            .key(key_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("key {key_id} not found")))?;
        if row.backend == store::PKCS11 {
            return self.token_signer(&row).await;
        }
        Ok(Arc::new(self.opened(row)?))
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
        self.opened(row)
    }

    fn opened(&self, row: KeyRow) -> Result<PrivateKey> {
        let key_id = row.id;
        let sealed = match (row.backend.as_str(), row.sealed) {
            (SOFTWARE, Some(sealed)) => sealed,
            (store::PKCS11, _) => {
                return Err(Error::Invalid(format!(
                    "key {key_id} is in an HSM token, which never gives it out"
                )));
            }
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
        self.guard_login_key(principal, id).await?;
        self.certificate_key_for(principal, id).await
    }

    /// [`Self::certificate_key`] for a principal whose right to this one key its door has
    /// already decided (a user's own login certificate); audited all the same.
    pub(crate) async fn certificate_key_for(
        &self,
        principal: &Principal,
        id: CertificateId,
    ) -> Result<PrivateKey> {
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
