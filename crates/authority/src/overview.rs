//! The instance in a few numbers, for the dashboard and the stats overview. Which numbers a
//! caller sees is decided here, per permission, so that no front door shows a count of users
//! or ACME accounts to a caller who could not list them.

use store::{CertificateFilter, CertificateState};
use time::Duration;

use crate::{Authority, Permission, Principal, Result};

/// How many of each thing there are; a count the caller may not read is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overview {
    /// Certificates, in any state.
    pub certificates: i64,
    /// Certificate authorities.
    pub cas: i64,
    /// Certificate signing requests, signed or not.
    pub csrs: i64,
    /// CSRs waiting to be signed.
    pub pending_csrs: i64,
    /// Certificate templates.
    pub templates: i64,
    /// User accounts (`read:users`).
    pub users: Option<i64>,
    /// User accounts that may log in (`read:users`).
    pub active_users: Option<i64>,
    /// ACME accounts of every profile, in any state (`read:acme`).
    pub acme_accounts: Option<i64>,
}

impl Authority {
    /// The counts `principal` may see.
    ///
    /// # Errors
    /// [`Error::Forbidden`](crate::Error::Forbidden) without `read:certificates`; store
    /// errors.
    pub async fn overview(&self, principal: &Principal) -> Result<Overview> {
        principal.require(Permission::ReadCertificates, "reading the overview")?;
        let totals = self.store.totals().await?;
        let users = principal.can(Permission::ReadUsers);
        Ok(Overview {
            certificates: totals.certificates,
            cas: totals.cas,
            csrs: totals.csrs,
            pending_csrs: totals.pending_csrs,
            templates: totals.templates,
            users: users.then_some(totals.users),
            active_users: users.then_some(totals.active_users),
            acme_accounts: principal
                .can(Permission::ReadAcme)
                .then_some(totals.acme_accounts),
        })
    }

    /// How many active certificates end within each of `days` days from now, as the
    /// certificate list's `expiring` filter counts them.
    ///
    /// # Errors
    /// [`Error::Forbidden`](crate::Error::Forbidden) without `read:certificates`; store
    /// errors.
    pub async fn expiring_within(
        &self,
        principal: &Principal,
        days: &[u32],
    ) -> Result<Vec<(u32, i64)>> {
        principal.require(Permission::ReadCertificates, "reading the overview")?;
        let now = self.now();
        let mut counts = Vec::with_capacity(days.len());
        for &d in days {
            let until = now + Duration::days(d.into());
            let filter = CertificateFilter::in_state(CertificateState::ExpiringBefore(until));
            counts.push((d, self.store.count_certificates(&filter, now).await?));
        }
        Ok(counts)
    }
}
