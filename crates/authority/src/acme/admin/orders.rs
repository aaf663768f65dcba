//! The orders clients placed: lists and details.

use store::{AcmeAccountRow, AcmeFilter, AcmeOrderRow, AcmeStatus as Status, Page, PageRequest};

use super::check_status;
use crate::{Authority, Error, Permission, Principal, Result};

/// Statuses an order can have.
const ORDER_STATUSES: [Status; 5] = [
    Status::Pending,
    Status::Ready,
    Status::Processing,
    Status::Valid,
    Status::Invalid,
];

/// An order with what an administrator wants to know about where it came from.
#[derive(Debug, Clone)]
pub struct AcmeOrderDetails {
    /// The order.
    pub order: AcmeOrderRow,
    /// The account that placed it, when it still exists.
    pub account: Option<AcmeAccountRow>,
}

impl Authority {
    /// One page of ACME orders, newest first, filtered by profile, account and status.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; [`Error::Malformed`] for an unknown status;
    /// store errors.
    pub async fn acme_orders(
        &self,
        principal: &Principal,
        filter: &AcmeFilter,
        page: PageRequest,
    ) -> Result<Page<AcmeOrderRow>> {
        principal.require(Permission::ReadAcme, "listing ACME orders")?;
        check_status(
            "order",
            filter.status.as_deref(),
            &ORDER_STATUSES.map(Status::as_str),
        )?;
        Ok(self.store.acme_orders(filter, page).await?)
    }

    /// The ACME order whose URL names `refid`, with its account.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; [`Error::NotFound`].
    pub async fn acme_order_details(
        &self,
        principal: &Principal,
        refid: &str,
    ) -> Result<AcmeOrderDetails> {
        principal.require(Permission::ReadAcme, "reading ACME orders")?;
        let order = self
            .store
            .acme_order(refid)
            .await?
            .ok_or_else(|| Error::NotFound(format!("ACME order {refid} does not exist")))?;
        let account = self.store.acme_account_by_id(order.account_id).await?;
        Ok(AcmeOrderDetails { order, account })
    }
}
