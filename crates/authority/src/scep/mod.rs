//! SCEP (RFC 8894): the registration authority's side. Profiles bind a URL to a CA, a
//! template and an approval mode; each has an RA certificate, made here, that clients encrypt
//! their requests to and that signs the replies. Clients prove they may enroll with a
//! challenge password, static per profile or one-time per CA; a renewal is signed with the
//! certificate it renews. Every certificate is issued through [`Authority::issue`].

mod admin;
mod enroll;
mod ra;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use admin::{
    ChallengeIssued, DEFAULT_SCEP_PROFILE, ScepConfig, ScepConfigChange, ScepProfileChange,
    ScepProfileStats, ScepStats,
};
pub use enroll::{CaCerts, ScepAnswer};

use store::CertificateId;

use crate::blocking::Pool;

/// Profile names that would be confused with SCEP's own URLs.
const RESERVED_NAMES: &[&str] = &["pkiclient.exe", "cgi-bin"];

/// Requests whose RSA work (decrypting the request, signing the reply, about a millisecond
/// each) may wait for a core, per core. The work is short, so a deep queue adds little latency
/// and saves clients a 503 under load; beyond it the pool refuses at once.
const QUEUE_PER_CORE: usize = 64;

/// SCEP's state on this node: each profile's RA, opened once, and a pool of its own for the
/// RSA work, so that a flood of SCEP requests cannot take the places of other key work (or
/// the other way round).
pub(crate) struct ScepCore {
    ras: Mutex<HashMap<i64, (CertificateId, Arc<pki::scep::Ra>)>>,
    cpu: Pool,
}

impl Default for ScepCore {
    fn default() -> Self {
        let cores = crate::blocking::cores();
        Self {
            ras: Mutex::default(),
            cpu: Pool::new(cores, QUEUE_PER_CORE * cores, "SCEP message work"),
        }
    }
}

impl std::fmt::Debug for ScepCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScepCore")
    }
}

impl ScepCore {
    fn ra(&self, profile_id: i64, certificate: CertificateId) -> Option<Arc<pki::scep::Ra>> {
        let ras = self
            .ras
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ras.get(&profile_id)
            .filter(|(id, _)| *id == certificate)
            .map(|(_, ra)| ra.clone())
    }

    fn put_ra(&self, profile_id: i64, certificate: CertificateId, ra: Arc<pki::scep::Ra>) {
        let mut ras = self
            .ras
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ras.insert(profile_id, (certificate, ra));
    }
}
