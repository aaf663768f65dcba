//! `/stats`: the instance in a few numbers.

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

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(overview))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub total_cas: i64,
    pub total_certs: i64,
    /// ACME accounts registered, in any state; null without `read:acme`.
    pub acme_accounts: Option<i64>,
    /// Accounts that may log in; null without `read:users`.
    pub active_users: Option<i64>,
}

/// How many CAs, certificates, ACME accounts and active users there are.
#[utoipa::path(get, path = "/stats/overview", tag = "stats",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    responses((status = 200, description = "Counts", body = Envelope<Overview>)))]
async fn overview(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let totals = app.authority.overview(&principal).await?;
    Ok(ok(Overview {
        total_cas: totals.cas,
        total_certs: totals.certificates,
        acme_accounts: totals.acme_accounts,
        active_users: totals.active_users,
    }))
}
