//! `/est/stats`: certificates issued through EST and refusals, from the database, so that
//! every node gives the same numbers.

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
use authority::est::{EstLabelStats, EstStats};

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(stats))
}

/// One endpoint's counts, from the audit log (as far back as it is kept).
#[derive(Debug, Serialize, ToSchema)]
pub struct LabelStatsView {
    /// The label, or `default` for `/.well-known/est/`.
    pub label: String,
    /// Certificates issued, re-enrollments included.
    pub issued: i64,
    pub issued_last_24h: i64,
    /// Wrong passwords, and enrollments refused after authentication.
    pub failures: i64,
    pub failures_last_24h: i64,
}

/// EST statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    /// Whether EST serves at all.
    pub enabled: bool,
    /// Certificates in the inventory that came through EST.
    pub issued: i64,
    /// Of them, issued in the last 24 hours.
    pub issued_last_24h: i64,
    /// Per endpoint, the default first.
    pub labels: Vec<LabelStatsView>,
}

impl From<EstStats> for StatsView {
    fn from(s: EstStats) -> Self {
        Self {
            enabled: s.enabled,
            issued: s.issued,
            issued_last_24h: s.issued_last_24h,
            labels: s
                .labels
                .into_iter()
                .map(|l: EstLabelStats| LabelStatsView {
                    label: l.label,
                    issued: l.issued,
                    issued_last_24h: l.issued_last_24h,
                    failures: l.failures,
                    failures_last_24h: l.failures_last_24h,
                })
                .collect(),
        }
    }
}

/// EST certificates, in total and over the last 24 hours, and per endpoint the certificates
/// issued and the refusals.
#[utoipa::path(get, path = "/est/stats", tag = "est-admin",
    security(("session" = ["read:est"]), ("api_key" = ["read:est"])),
    responses((status = 200, description = "Statistics", body = Envelope<StatsView>)))]
async fn stats(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(StatsView::from(
        app.authority.est_stats(&principal).await?,
    )))
}
