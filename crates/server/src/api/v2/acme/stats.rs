//! `/acme/stats`: accounts and orders by status, profiles and keys.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok};
use crate::error::ApiResult;
use crate::extract::Caller;
use authority::acme::AcmeStats;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(stats))
}

/// Counts by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusCounts {
    pub total: i64,
    /// Status → count.
    pub by_status: BTreeMap<String, i64>,
}

impl StatusCounts {
    fn new(pairs: Vec<(String, i64)>) -> Self {
        Self {
            total: pairs.iter().map(|(_, n)| n).sum(),
            by_status: pairs.into_iter().collect(),
        }
    }
}

/// ACME statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    /// Whether ACME serves at all.
    pub enabled: bool,
    pub accounts: StatusCounts,
    pub orders: StatusCounts,
    pub profiles: i64,
    /// Profiles whose directory serves.
    pub profiles_enabled: i64,
    /// External account binding keys not revoked.
    pub eab_keys: i64,
}

impl From<AcmeStats> for StatsView {
    fn from(s: AcmeStats) -> Self {
        Self {
            enabled: s.enabled,
            accounts: StatusCounts::new(s.counts.accounts),
            orders: StatusCounts::new(s.counts.orders),
            profiles: s.counts.profiles,
            profiles_enabled: s.profiles_enabled,
            eab_keys: s.counts.eab_keys,
        }
    }
}

/// ACME accounts and orders by status, profiles and keys.
#[utoipa::path(get, path = "/acme/stats", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    responses((status = 200, description = "Statistics", body = Envelope<StatsView>)))]
async fn stats(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(StatsView::from(
        app.authority.acme_stats(&principal).await?,
    )))
}
