//! The CAs that issue, kept in memory: reading a CA's row, opening its key and reading its
//! certificate for every issuance would cost more than building and signing the certificate.
//!
//! A CA's row is kept for at most [`STALE_AFTER`], and forgotten at once when this node changes a
//! CA, so that a rename or a new default CA made on another node shows within that time. That a
//! CA is still active is not left to the cache: the certificate writer checks it inside the
//! transaction that stores the certificate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use pki::CaSigner;
use store::{CaId, CaRow, KeyId};

use crate::{Authority, Error, Result, STALE_AFTER};

/// Issuing CAs' rows (by id, `None` for the default CA), their signers (by key id and
/// certificate fingerprint) and the chains above CAs (by id). A CA's certificate and parent
/// never change, so a chain stays true until the CA is deleted (SQLite may then give its id to
/// the next CA; PostgreSQL never does).
#[derive(Default)]
pub(crate) struct Issuers {
    rows: Mutex<HashMap<Option<CaId>, (Instant, CaRow)>>,
    signers: Mutex<HashMap<(KeyId, String), Arc<CaSigner>>>,
    chains: Mutex<HashMap<CaId, Arc<[Vec<u8>]>>>,
}

impl Issuers {
    fn row(&self, which: Option<CaId>) -> Option<CaRow> {
        let rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        rows.get(&which)
            .filter(|(read, _)| read.elapsed() < STALE_AFTER)
            .map(|(_, row)| row.clone())
    }

    fn put_row(&self, which: Option<CaId>, row: CaRow) {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(which, (Instant::now(), row));
    }

    fn signer(&self, slot: &(KeyId, String)) -> Option<Arc<CaSigner>> {
        self.signers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(slot)
            .cloned()
    }

    fn put_signer(&self, slot: (KeyId, String), signer: Arc<CaSigner>) {
        self.signers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(slot, signer);
    }

    pub(crate) fn chain(&self, id: CaId) -> Option<Arc<[Vec<u8>]>> {
        self.chains
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    pub(crate) fn put_chain(&self, id: CaId, chain: Arc<[Vec<u8>]>) {
        self.chains
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, chain);
    }

    /// Forgets every CA row: a CA was created, changed or deleted here.
    pub(crate) fn changed(&self) {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Forgets every opened key: the HSM provider of some changed.
    pub(crate) fn forget_signers(&self) {
        self.signers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Forgets a deleted CA, its opened key and every chain included.
    pub(crate) fn forget(&self, ca_fingerprint: &str) {
        self.changed();
        self.chains
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.signers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(_, fingerprint), _| fingerprint != ca_fingerprint);
    }
}

impl std::fmt::Debug for Issuers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issuers")
    }
}

/// A CA that may issue now, with its opened key. Only the `ca` module reaches the key; the
/// rest of the crate reads the CA's row through `Deref`.
pub(crate) struct IssuingCa {
    row: CaRow,
    pub(super) signer: Arc<CaSigner>,
}

impl std::ops::Deref for IssuingCa {
    type Target = CaRow;

    fn deref(&self) -> &CaRow {
        &self.row
    }
}

impl Authority {
    /// CA `which` (the default CA when `None`), as read at most [`STALE_AFTER`] ago.
    ///
    /// # Errors
    /// [`Error::Invalid`] for no such CA or no default one; store errors.
    pub(crate) async fn issuing_ca(&self, which: Option<CaId>) -> Result<CaRow> {
        if let Some(row) = self.issuers.row(which) {
            return Ok(row);
        }
        let row = match which {
            Some(id) => self
                .store
                .ca(id)
                .await?
                .ok_or_else(|| Error::Invalid(format!("CA {id} does not exist")))?,
            None => self.default_ca().await?,
        };
        self.issuers.put_row(which, row.clone());
        Ok(row)
    }

    /// The signer of CA `ca`. The certificate's fingerprint is part of the cache key because
    /// SQLite may give a deleted key's id to a new key, while a certificate binds exactly one
    /// key.
    ///
    /// # Errors
    /// [`Error::Invalid`] when certmint does not hold the CA's key; [`Error::NotFound`] for a
    /// key row that is gone; [`Error::Internal`] when it cannot be opened or does not fit the
    /// certificate.
    pub(super) async fn ca_signer(&self, ca: &CaRow) -> Result<Arc<CaSigner>> {
        let key_id = ca.key_id.ok_or_else(|| {
            Error::Invalid(format!(
                "CA '{}' has no private key here, so it cannot sign",
                ca.name
            ))
        })?;
        let slot = (key_id, ca.cert.fingerprint_sha256.clone());
        if let Some(signer) = self.issuers.signer(&slot) {
            return Ok(signer);
        }
        let key = self.open_signer(key_id).await?;
        let signer = Arc::new(
            CaSigner::new(&ca.cert.der, key)
                .map_err(|e| Error::Internal(format!("CA '{}': {e}", ca.name)))?,
        );
        self.issuers.put_signer(slot, signer.clone());
        Ok(signer)
    }

    /// CA `id` (the default CA when `None`) if it may issue now, with its key opened.
    ///
    /// # Errors
    /// [`Error::Invalid`] for no such CA or no default one, or one that is inactive, expired,
    /// not yet valid, or has no private key here.
    pub(crate) async fn usable_issuer(&self, id: Option<CaId>) -> Result<IssuingCa> {
        let ca = self.issuing_ca(id).await?;
        let now = self.now();
        if !ca.is_active {
            return Err(Error::Invalid(format!("CA '{}' is inactive", ca.name)));
        }
        if ca.cert.not_after <= now {
            return Err(Error::Invalid(format!(
                "CA '{}' expired on {}",
                ca.name,
                crate::rfc3339(ca.cert.not_after)
            )));
        }
        if ca.cert.not_before > now {
            return Err(Error::Invalid(format!(
                "CA '{}' is not valid before {}",
                ca.name,
                crate::rfc3339(ca.cert.not_before)
            )));
        }
        let signer = self.ca_signer(&ca).await?;
        Ok(IssuingCa { row: ca, signer })
    }
}
