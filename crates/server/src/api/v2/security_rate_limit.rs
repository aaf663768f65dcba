//! `/system/security/rate-limit`: the per-address limit on the doors that check passwords
//! (logins, password changes, EST passwords), its counts on this node, and resetting them on
//! every node.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};
use crate::rate_limit::LimiterStats;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(rate_limit, update_rate_limit))
        .routes(routes!(stats))
        .routes(routes!(reset))
}

/// The limit.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitView {
    /// Requests per client address (IPv6: per /64) and minute to the login endpoints, and
    /// wrong EST passwords; 0 is unlimited.
    pub requests_per_minute: u32,
    pub enabled: bool,
    /// `default`/`file` (the configuration) or `database` (set through this API).
    pub source: &'static str,
    pub window_seconds: u64,
}

/// A change to the limit; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitChange {
    /// 0 to 100,000.
    pub requests_per_minute: Option<u32>,
    pub enabled: Option<bool>,
}

/// One limiter's counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimiterView {
    /// `login` (every request to the login and password endpoints counts) or
    /// `est_password_failures` (each wrong EST password counts).
    pub name: &'static str,
    pub requests_per_minute: u32,
    /// Client addresses (IPv6: /64 blocks) with a window open.
    pub tracked_clients: usize,
    /// Those that have used up their window (at most 100 listed).
    pub limited_clients: Vec<String>,
    /// Requests refused since this node started.
    pub rejected: u64,
}

/// This node's counts: each node counts on its own.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitStatsView {
    pub node: String,
    pub limiters: Vec<LimiterView>,
}

/// Whose counts to clear.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// A client address; every client's when absent.
    pub client: Option<String>,
}

/// The reset made.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetView {
    /// Counts the resets ever made; every node clears its counts when it sees a new one.
    pub generation: u64,
    /// The client whose counts were cleared; null for all.
    pub client: Option<String>,
}

fn limiter_view(name: &'static str, stats: LimiterStats) -> LimiterView {
    LimiterView {
        name,
        requests_per_minute: stats.per_minute,
        tracked_clients: stats.tracked,
        limited_clients: stats.limited.iter().map(ToString::to_string).collect(),
        rejected: stats.refused,
    }
}

async fn view(app: &App, principal: &authority::Principal) -> ApiResult<RateLimitView> {
    let live = app.authority.live_settings(principal).await?;
    let find = |name: &str| live.iter().find(|s| s.name == name);
    let (Some(per_minute), Some(enabled)) = (
        find("auth_rate_limit_per_minute"),
        find("auth_rate_limit_enabled"),
    ) else {
        return Err(authority::Error::Internal("rate-limit settings missing".into()).into());
    };
    let source = if per_minute.stored || enabled.stored {
        "database"
    } else if app.settings.auth_rate_limit_per_minute
        == crate::Settings::default().auth_rate_limit_per_minute
    {
        "default"
    } else {
        "file"
    };
    Ok(RateLimitView {
        requests_per_minute: per_minute
            .value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or_default(),
        enabled: enabled.value.as_bool().unwrap_or(true),
        source,
        window_seconds: crate::rate_limit::WINDOW.as_secs(),
    })
}

/// The login rate limit in force.
#[utoipa::path(get, path = "/system/security/rate-limit", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "The limit", body = Envelope<RateLimitView>)))]
async fn rate_limit(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(view(&app, &principal).await?))
}

/// Change the login rate limit: stored in the database, in force on every node within a
/// second, audited (the same values as `auth_rate_limit_*` in `/settings/general`).
#[utoipa::path(put, path = "/system/security/rate-limit", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = RateLimitChange,
    responses((status = 200, description = "Updated", body = Envelope<RateLimitView>),
              (status = 422, description = "A limit out of bounds", body = ErrorBody)))]
async fn update_rate_limit(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(change): ApiJson<RateLimitChange>,
) -> ApiResult<Response> {
    let change = authority::LiveValues {
        auth_rate_limit_per_minute: change.requests_per_minute,
        auth_rate_limit_enabled: change.enabled,
        ..authority::LiveValues::default()
    };
    app.authority
        .update_live_settings(&principal, &change)
        .await?;
    app.limits.apply(&app.authority.in_force().await);
    Ok(ok_with(view(&app, &principal).await?, "rate limit updated"))
}

/// This node's counts: clients counted and limited, requests refused since start.
#[utoipa::path(get, path = "/system/security/rate-limit/stats", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "The counts", body = Envelope<RateLimitStatsView>)))]
async fn stats(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    principal.require(
        authority::Permission::AdminSystem,
        "reading rate-limit counts",
    )?;
    app.limits.follow(&app.authority).await;
    Ok(ok(RateLimitStatsView {
        node: app.node.clone(),
        limiters: vec![
            limiter_view("login", app.limits.login.stats()),
            limiter_view("est_password_failures", app.limits.est_failures.stats()),
        ],
    }))
}

/// Clear the counts, of every client or of one (`{"client": "192.0.2.7"}`), on every node:
/// this one at once, the others within a second. Audited.
#[utoipa::path(post, path = "/system/security/rate-limit/reset", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body(content = ResetRequest, description = "Optional: whose counts"),
    responses((status = 200, description = "Cleared", body = Envelope<ResetView>),
              (status = 400, description = "A body that is not the request, or a client that is not an address", body = ErrorBody)))]
async fn reset(
    State(app): State<App>,
    Caller(principal): Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let request: ResetRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ResetRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?
    };
    let client = request
        .client
        .as_deref()
        .map(|c| {
            c.trim()
                .parse::<IpAddr>()
                .map_err(|_| ApiError::bad_request("client is not an IP address"))
        })
        .transpose()?;
    let reset = app.authority.reset_rate_limits(&principal, client).await?;
    app.limits.apply(&app.authority.in_force().await);
    Ok(ok_with(
        ResetView {
            generation: reset.generation,
            client: reset.client.map(|ip| ip.to_string()),
        },
        "rate-limit counts cleared",
    ))
}
