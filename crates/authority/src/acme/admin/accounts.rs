//! The accounts clients registered: lists, details, deactivation.

use store::{AcmeAccountRow, AcmeAccountStatus, AcmeFilter, Page, PageRequest};

use super::check_status;
use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

impl Authority {
    /// One page of ACME accounts, newest first, filtered by profile and status.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; [`Error::Malformed`] for an unknown status;
    /// store errors.
    pub async fn acme_accounts(
        &self,
        principal: &Principal,
        filter: &AcmeFilter,
        page: PageRequest,
    ) -> Result<Page<AcmeAccountRow>> {
        principal.require(Permission::ReadAcme, "listing ACME accounts")?;
        let known: Vec<&str> = AcmeAccountStatus::ALL.iter().map(|s| s.as_str()).collect();
        check_status("account", filter.status.as_deref(), &known)?;
        Ok(self.store.acme_accounts(filter, page).await?)
    }

    /// ACME account `id`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; [`Error::NotFound`].
    pub async fn acme_account_details(
        &self,
        principal: &Principal,
        id: i64,
    ) -> Result<AcmeAccountRow> {
        principal.require(Permission::ReadAcme, "reading ACME accounts")?;
        self.acme_account_row(id).await
    }

    async fn acme_account_row(&self, id: i64) -> Result<AcmeAccountRow> {
        self.store
            .acme_account_by_id(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("ACME account {id} does not exist")))
    }

    /// Deactivates ACME account `id` for its holder (RFC 8555 §7.3.6): it can make no more
    /// requests; its certificates stay valid.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:acme`; [`Error::NotFound`]; [`Error::Conflict`]
    /// when it is already deactivated or revoked.
    pub async fn deactivate_acme_account(
        &self,
        principal: &Principal,
        id: i64,
    ) -> Result<AcmeAccountRow> {
        principal.require(Permission::WriteAcme, "deactivating ACME accounts")?;
        let account = self.acme_account_row(id).await?;
        if account.status != AcmeAccountStatus::Valid {
            return Err(Error::Conflict(format!(
                "ACME account {id} is already {}",
                account.status
            )));
        }
        let mut tx = self.store.begin_write().await?;
        tx.update_acme_account(
            id,
            &account.contact,
            AcmeAccountStatus::Deactivated,
            self.now(),
        )
        .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "acme_account_deactivated",
                "acme_account",
                id,
                format!("{} by an administrator", account.refid),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.acme.accounts.forget(&account.refid);
        self.acme_account_row(id).await
    }
}
