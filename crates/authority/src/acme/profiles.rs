//! ACME profiles as the protocol reads them: from a snapshot at most [`crate::STALE_AFTER`]
//! old, since every request names its profile and changes to them are rare.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use store::{AcmeProfileFields, AcmeProfileRow, AcmeState};

use super::AcmeError;
use crate::Error;
use crate::{Authority, Result};

/// The name of the profile made at first start, served at `/acme/directory`.
pub const DEFAULT_PROFILE: &str = "default";

#[derive(Debug, Default)]
pub(crate) struct ProfileCache {
    snapshot: RwLock<Option<Arc<Snapshot>>>,
}

#[derive(Debug)]
struct Snapshot {
    read_at: Instant,
    state: AcmeState,
    profiles: Vec<AcmeProfileRow>,
}

impl ProfileCache {
    pub(crate) fn forget(&self) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn fresh(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|s| s.read_at.elapsed() < crate::STALE_AFTER)
            .cloned()
    }
}

impl Authority {
    async fn acme_snapshot(&self) -> Result<Arc<Snapshot>> {
        if let Some(snapshot) = self.acme.profiles.fresh() {
            return Ok(snapshot);
        }
        let snapshot = Arc::new(Snapshot {
            read_at: Instant::now(),
            state: self.store.acme_state().await?,
            profiles: self.store.acme_profiles().await?,
        });
        *self
            .acme
            .profiles
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// The profile a directory URL names (`None`: the default one), if ACME and the profile
    /// are enabled.
    ///
    /// # Errors
    /// A 404 `malformed` problem for an unknown or disabled profile, or ACME turned off.
    pub async fn acme_profile(&self, name: Option<&str>) -> Result<AcmeProfileRow, AcmeError> {
        let snapshot = self.acme_snapshot().await?;
        let not_found = Error::NotFound;
        if !snapshot.state.enabled {
            return Err(not_found("ACME is turned off on this server".into()).into());
        }
        let profile = snapshot
            .profiles
            .iter()
            .find(|p| match name {
                Some(name) => p.name == name,
                None => p.is_default,
            })
            .ok_or_else(|| match name {
                Some(name) => not_found(format!("there is no ACME profile '{name}'")),
                None => not_found("there is no default ACME profile".into()),
            })?;
        if !profile.enabled {
            return Err(not_found(format!("ACME profile '{}' is disabled", profile.name)).into());
        }
        Ok(profile.clone())
    }

    /// The instance-wide ACME settings, as the protocol reads them.
    ///
    /// # Errors
    /// Store errors.
    pub(crate) async fn acme_limits(&self) -> Result<AcmeState> {
        Ok(self.acme_snapshot().await?.state)
    }

    /// Makes the default ACME profile on first start: ACME works out of the box on the
    /// default CA. Returns whether it was made now.
    ///
    /// # Errors
    /// Store errors.
    pub async fn ensure_default_acme_profile(&self) -> Result<bool> {
        if self.store.default_acme_profile().await?.is_some() {
            return Ok(false);
        }
        let mut tx = self.store.begin_write().await?;
        tx.insert_acme_profile(
            DEFAULT_PROFILE,
            true,
            &AcmeProfileFields {
                description: Some("The profile at /acme/directory, on the default CA".into()),
                ..AcmeProfileFields::default()
            },
            self.now(),
        )
        .await?;
        tx.commit().await?;
        self.acme.profiles.forget();
        Ok(true)
    }
}
