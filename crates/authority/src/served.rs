//! What relying parties download without credentials, CA certificates (AIA caIssuers) and the
//! latest CRLs, kept in memory as last read so that they are still served while the database
//! is unreachable, the same way the OCSP responder serves its pre-signed answers.
//!
//! Only what the database returned is kept, by CA: at most each CA once, and its latest full
//! and delta CRL, so nothing a client asks for can grow it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use store::{CaId, CaRow, CrlRow};

use crate::{Authority, Error, Result};

/// CAs and CRLs as last read.
#[derive(Debug, Default)]
pub(crate) struct Served {
    cas: Mutex<HashMap<CaId, Arc<CaRow>>>,
    crls: Mutex<HashMap<(CaId, bool), Arc<CrlRow>>>,
}

/// `name` as a CA's refid, else as its numeric id.
fn names(ca: &CaRow, name: &str) -> bool {
    ca.refid == name || name.parse().is_ok_and(|id| ca.id == CaId(id))
}

impl Authority {
    /// The CA `name` names, by refid, else by numeric id; while the database is unreachable,
    /// as last read.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database is unreachable and the CA was never read.
    pub async fn public_ca(&self, name: &str) -> Result<Option<Arc<CaRow>>> {
        let read = async {
            match self.store.ca_by_refid(name).await? {
                Some(ca) => Ok(Some(ca)),
                None => match name.parse() {
                    Ok(id) => self.store.ca(CaId(id)).await,
                    Err(_) => Ok(None),
                },
            }
        };
        let cas = &self.served.cas;
        match read.await.map_err(Error::from) {
            Ok(ca) => Ok(ca.map(|ca| {
                let ca = Arc::new(ca);
                cas.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(ca.id, ca.clone());
                ca
            })),
            Err(e @ Error::Unavailable(_)) => cas
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .find(|ca| names(ca, name))
                .cloned()
                .map(Some)
                .ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// CA `ca_id`'s latest delta CRL (`delta`) or full one; while the database is
    /// unreachable, the one last read.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database is unreachable and none was read.
    pub async fn public_latest_crl(&self, ca_id: CaId, delta: bool) -> Result<Option<Arc<CrlRow>>> {
        let crls = &self.served.crls;
        match self
            .store
            .latest_crl(ca_id, delta)
            .await
            .map_err(Error::from)
        {
            Ok(crl) => Ok(crl.map(|crl| {
                let crl = Arc::new(crl);
                crls.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert((ca_id, delta), crl.clone());
                crl
            })),
            Err(e @ Error::Unavailable(_)) => crls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&(ca_id, delta))
                .cloned()
                .map(Some)
                .ok_or(e),
            Err(e) => Err(e),
        }
    }
}
