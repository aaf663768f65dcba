//! The statistics page: accounts and orders by status, profiles and keys.

use store::AcmeCounts;

use crate::{Authority, Permission, Principal, Result};

/// Counts for the statistics page.
#[derive(Debug, Clone)]
pub struct AcmeStats {
    /// Whether ACME serves at all.
    pub enabled: bool,
    /// Accounts and orders by status, profiles, keys not revoked.
    pub counts: AcmeCounts,
    /// Profiles whose directory serves.
    pub profiles_enabled: i64,
}

impl Authority {
    /// Accounts and orders by status, profiles and keys.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; store errors.
    pub async fn acme_stats(&self, principal: &Principal) -> Result<AcmeStats> {
        principal.require(Permission::ReadAcme, "reading ACME statistics")?;
        let profiles_enabled = self
            .store
            .acme_profiles()
            .await?
            .iter()
            .filter(|p| p.enabled)
            .count();
        Ok(AcmeStats {
            enabled: self.store.acme_state().await?.enabled,
            counts: self.store.acme_counts().await?,
            profiles_enabled: i64::try_from(profiles_enabled).unwrap_or(i64::MAX),
        })
    }
}
