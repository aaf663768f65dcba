//! ACME's rows: profiles, the instance-wide settings, accounts, orders (with their
//! authorizations as JSON), used nonces, rate-limit counters and external account binding
//! keys.

mod accounts;
mod eab_keys;
mod nonces;
mod orders;
mod profiles;
mod rate_counters;
mod state;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Error, Reader};

pub use accounts::{AcmeAccountRow, NewAcmeAccount};
pub use eab_keys::AcmeEabKeyRow;
pub use orders::{AcmeOrderChange, AcmeOrderRow, NewAcmeOrder};
pub use profiles::{AcmeProfileFields, AcmeProfileRow};
pub use state::AcmeState;

/// A list stored as space-separated words.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// Filters for the administrators' lists of accounts and orders.
#[derive(Debug, Clone, Default)]
pub struct AcmeFilter {
    /// Only this profile's.
    pub profile_id: Option<i64>,
    /// Only this account's (orders).
    pub account_id: Option<i64>,
    /// Only with this status.
    pub status: Option<String>,
}

/// Counts by status, for `/api/v2/acme/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcmeCounts {
    /// Accounts by status.
    pub accounts: Vec<(String, i64)>,
    /// Orders by status.
    pub orders: Vec<(String, i64)>,
    /// Profiles.
    pub profiles: i64,
    /// External account binding keys not revoked.
    pub eab_keys: i64,
}

impl Reader {
    /// Counts for the statistics page.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_counts(&self) -> Result<AcmeCounts, Error> {
        let by_status = |table: &'static str| {
            let sql = format!(
                "SELECT status, COUNT(*) AS n FROM {table} GROUP BY status ORDER BY status"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool)
        };
        let pairs = |rows: Vec<AnyRow>| -> Result<Vec<(String, i64)>, Error> {
            rows.iter()
                .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
                .collect()
        };
        let accounts = pairs(by_status("acme_accounts").await?)?;
        let orders = pairs(by_status("acme_orders").await?)?;
        let profiles = sqlx::query("SELECT COUNT(*) AS n FROM acme_profiles")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let eab_keys =
            sqlx::query("SELECT COUNT(*) AS n FROM acme_eab_keys WHERE revoked_at IS NULL")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        Ok(AcmeCounts {
            accounts,
            orders,
            profiles,
            eab_keys,
        })
    }
}
