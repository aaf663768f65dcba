//! The instance-wide ACME settings: the switch and the rate limits.

use sqlx::Row;

use crate::db::flag;
use crate::{Error, Reader, WriteTx};

/// Instance-wide ACME settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcmeState {
    /// Whether ACME serves at all.
    pub enabled: bool,
    /// New orders one account may place per hour; 0 is unlimited.
    pub orders_per_account_hour: i64,
    /// New accounts one client address may register per hour; 0 is unlimited.
    pub accounts_per_address_hour: i64,
}

impl Reader {
    /// The instance-wide ACME settings.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_state(&self) -> Result<AcmeState, Error> {
        let row = sqlx::query(
            "SELECT enabled, orders_per_account_hour, accounts_per_address_hour \
             FROM acme_state WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(AcmeState {
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            orders_per_account_hour: row.try_get("orders_per_account_hour")?,
            accounts_per_address_hour: row.try_get("accounts_per_address_hour")?,
        })
    }
}

impl WriteTx {
    /// Sets the instance-wide ACME settings.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_acme_state(&mut self, state: &AcmeState) -> Result<(), Error> {
        sqlx::query(
            "UPDATE acme_state SET enabled = $1, orders_per_account_hour = $2, \
             accounts_per_address_hour = $3 WHERE id = 1",
        )
        .bind(flag(state.enabled))
        .bind(state.orders_per_account_hour)
        .bind(state.accounts_per_address_hour)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
