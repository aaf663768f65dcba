//! The console's search box: one text looked up in every kind of record the caller may read.
//! Which kinds are searched is decided here, per permission, so that no front door can show a
//! caller users or CSRs it could not list.

use store::{CaSummary, CertificateSummary, CsrSummary, TemplateSummary, UserSummary};

use crate::{Authority, Permission, Principal, Result};

/// What a search found, by kind; a kind the caller may not read is `None`.
#[derive(Debug, Clone, Default)]
pub struct SearchResults {
    /// Certificates, newest first (`read:certificates`).
    pub certificates: Vec<CertificateSummary>,
    /// CAs, by name (`read:cas`).
    pub cas: Option<Vec<CaSummary>>,
    /// CSRs, newest first (`read:csrs`).
    pub csrs: Option<Vec<CsrSummary>>,
    /// Templates, by name (`read:templates`).
    pub templates: Option<Vec<TemplateSummary>>,
    /// Users, by username (`read:users`).
    pub users: Option<Vec<UserSummary>>,
}

impl Authority {
    /// Up to `limit` matches of `text` of each kind `principal` may read.
    ///
    /// # Errors
    /// [`Error::Forbidden`](crate::Error::Forbidden) without `read:certificates`; store errors.
    pub async fn search(
        &self,
        principal: &Principal,
        text: &str,
        limit: u32,
    ) -> Result<SearchResults> {
        principal.require(Permission::ReadCertificates, "searching")?;
        let store = &self.store;
        let may = |permission| principal.can(permission);
        Ok(SearchResults {
            certificates: store.search_certificates(text, limit).await?,
            cas: if may(Permission::ReadCas) {
                Some(store.search_cas(text, limit).await?)
            } else {
                None
            },
            csrs: if may(Permission::ReadCsrs) {
                Some(store.search_csrs(text, limit).await?)
            } else {
                None
            },
            templates: if may(Permission::ReadTemplates) {
                Some(store.search_templates(text, limit).await?)
            } else {
                None
            },
            users: if may(Permission::ReadUsers) {
                Some(store.search_users(text, limit).await?)
            } else {
                None
            },
        })
    }
}
