//! EST (RFC 7030): enrollment over HTTPS for devices and services. The default endpoint
//! (`/.well-known/est/`) and each label (`/.well-known/est/{label}/`) name a CA, a template and
//! the HTTP Basic credentials they accept; a TLS client certificate issued by that CA is
//! accepted as well, and is what a re-enrollment must present.
//!
//! The front door hands this module what arrived (the label, the Basic credentials, the client
//! certificate, the CSR); this module authenticates, decides and issues through
//! [`Authority::issue`] as the principal `est:{label}` (`est:default` for the default
//! endpoint), so every certificate and refusal is audited under the endpoint it came through.
//!
//! The settings are read from a snapshot at most [`crate::STALE_AFTER`] old; a password that
//! verified is remembered as [`crate::credentials`] remembers API keys (keyed by the settings'
//! hash as well, so a new password is a miss at once on this node and within that time on
//! others). A wrong password is never remembered: each one costs an Argon2 verification, on a
//! bounded pool (past it, 503), and an audit record.

mod admin;
mod auth;
mod enroll;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use tokio::sync::OnceCell;

use store::{EstConfigRow, EstEndpoint};

use crate::blocking::{self, Pool};
use crate::credentials::Credentials;
use crate::{Authority, Error, Result};

pub use admin::{
    EstEndpointSettings, EstLabelInput, EstLabelStats, EstSettings, EstSettingsChange, EstStats,
    MAX_LABELS,
};
pub use auth::EstCaller;
pub use enroll::EstOperation;

/// The name the default endpoint goes by in audit records and statistics; no label may take
/// it.
pub const DEFAULT_ENDPOINT: &str = "default";

/// The action of an audited refusal: a wrong password, or an enrollment refused after
/// authentication.
pub const REFUSED: &str = "est_enrollment_refused";

/// Password checks waiting for a slot, per core, before more are refused.
const QUEUE_PER_CORE: usize = 256;

/// EST's state on this node.
#[derive(Debug)]
pub(crate) struct EstCore {
    snapshot: RwLock<Option<(Instant, Arc<EstConfigRow>)>>,
    /// Passwords that verified, by a digest of the endpoint, user name, password and hash.
    verified: Arc<Credentials<()>>,
    /// Where Argon2 verifications run.
    checks: Pool,
    /// Checks under way, by the same digest as `verified`, with their answer once there is
    /// one. An entry lives only while its check does, so there are never more than requests
    /// in flight.
    in_flight: Mutex<HashMap<String, Arc<OnceCell<bool>>>>,
}

impl Default for EstCore {
    fn default() -> Self {
        let cores = blocking::cores();
        Self {
            snapshot: RwLock::default(),
            verified: Arc::default(),
            checks: Pool::new(cores, QUEUE_PER_CORE * cores, "EST password checks"),
            in_flight: Mutex::default(),
        }
    }
}

impl EstCore {
    fn forget(&self) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The check of the credentials `digest` names: the one under way, or a new one.
    fn check_of(&self, digest: &str) -> Arc<OnceCell<bool>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(digest.to_owned())
            .or_default()
            .clone()
    }

    /// Forgets `check` once its answer (or failure) is in: later requests ask the cache of
    /// verified passwords, or check again.
    fn check_done(&self, digest: &str, check: &Arc<OnceCell<bool>>) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if in_flight
            .get(digest)
            .is_some_and(|current| Arc::ptr_eq(current, check))
        {
            in_flight.remove(digest);
        }
    }

    fn fresh(&self) -> Option<Arc<EstConfigRow>> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(read, _)| read.elapsed() < crate::STALE_AFTER)
            .map(|(_, row)| row.clone())
    }
}

/// An endpoint as a request names it.
#[derive(Debug, Clone)]
struct Endpoint {
    /// The label, or [`DEFAULT_ENDPOINT`].
    name: String,
    settings: EstEndpoint,
}

impl Authority {
    async fn est_snapshot(&self) -> Result<Arc<EstConfigRow>> {
        if let Some(row) = self.est.fresh() {
            return Ok(row);
        }
        let row = Arc::new(self.store.est_config().await?);
        *self
            .est
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), row.clone()));
        Ok(row)
    }

    /// The endpoint `label` names (`None`: the default one), if EST serves.
    ///
    /// # Errors
    /// [`Error::NotFound`] when EST is off or there is no such label; store errors.
    async fn est_endpoint(&self, label: Option<&str>) -> Result<Endpoint> {
        let config = self.est_snapshot().await?;
        if !config.enabled {
            return Err(Error::NotFound("EST is turned off on this server".into()));
        }
        match label {
            None => Ok(Endpoint {
                name: DEFAULT_ENDPOINT.to_owned(),
                settings: config.default.clone(),
            }),
            Some(label) => config
                .labels
                .iter()
                .find(|l| l.label == label)
                .map(|l| Endpoint {
                    name: l.label.clone(),
                    settings: l.endpoint.clone(),
                })
                .ok_or_else(|| Error::NotFound(format!("there is no EST label '{label}'"))),
        }
    }
}
