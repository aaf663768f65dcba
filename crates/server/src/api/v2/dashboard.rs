//! `/dashboard`: the figures and short lists on the console's home page.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::certificates::{EXPIRING_DAYS, expiring_until};
use crate::App;
use crate::envelope::{Envelope, ok};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Caller};
use authority::CertificateState;

/// The longest period `days` may ask for.
const MAX_DAYS: u32 = 366;
/// The longest list `limit` may ask for.
pub const MAX_LIMIT: u32 = 100;
/// The deepest the activity feed may be paged: a feed, not an archive (that is
/// `/audit/logs`), and each skipped record is read by the database.
const MAX_OFFSET: u32 = 10_000;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(stats))
        .routes(routes!(expiring))
        .routes(routes!(trend))
        .routes(routes!(recent_cas))
        .routes(routes!(activity))
}

/// Checks a count from the query string against `1..=max`.
///
/// # Errors
/// 400 naming the parameter and its bounds.
pub fn bounded(name: &str, value: u32, max: u32) -> ApiResult<u32> {
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::bad_request(format!(
            "{name} must be between 1 and {max}"
        )))
    }
}

/// A certificate in a short list.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateItem {
    pub id: i64,
    pub refid: String,
    pub common_name: Option<String>,
    pub subject: String,
    /// Hex.
    pub serial_number: String,
    /// `kind:value`.
    pub san: Vec<String>,
    pub ca_id: Option<i64>,
    /// active, expired or revoked.
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    pub days_remaining: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl CertificateItem {
    pub fn new(c: authority::CertificateSummary, now: OffsetDateTime) -> Self {
        let status = CertificateState::of(c.status, c.not_after, now).as_str();
        Self {
            id: c.id.0,
            refid: c.refid,
            common_name: c.common_name,
            subject: c.subject,
            serial_number: c.serial,
            san: c.sans,
            ca_id: c.ca_id.map(i64::from),
            status,
            valid_until: c.not_after,
            days_remaining: (c.not_after - now).whole_days().max(0),
            created_at: c.created_at,
        }
    }
}

/// A CA in a short list.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaItem {
    pub id: i64,
    pub refid: String,
    pub name: String,
    /// root or intermediate.
    pub ca_type: String,
    pub subject: String,
    pub is_active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<authority::CaSummary> for CaItem {
    fn from(c: authority::CaSummary) -> Self {
        Self {
            id: c.id.0,
            refid: c.refid,
            name: c.name,
            ca_type: c.ca_type,
            subject: c.subject,
            is_active: c.is_active,
            valid_until: c.not_after,
            created_at: c.created_at,
        }
    }
}

/// The home page's counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardStats {
    pub total_certificates: i64,
    pub active_certificates: i64,
    pub expired_certificates: i64,
    pub revoked_certificates: i64,
    /// Active and ending within 30 days.
    pub expiring_soon: i64,
    pub total_cas: i64,
    pub total_csrs: i64,
    pub pending_csrs: i64,
    pub total_templates: i64,
    /// Null without `read:users`.
    pub total_users: Option<i64>,
    /// Accounts that may log in; null without `read:users`.
    pub active_users: Option<i64>,
}

/// Counts of certificates by state, and of CAs, CSRs, templates and users.
#[utoipa::path(get, path = "/dashboard/stats", tag = "dashboard",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    responses((status = 200, description = "Counts", body = Envelope<DashboardStats>)))]
async fn stats(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let now = app.authority.now();
    let totals = app.authority.overview(&principal).await?;
    let states = app
        .authority
        .reader()
        .certificate_states(now, expiring_until(now))
        .await
        .map_err(authority::Error::from)?;
    Ok(ok(DashboardStats {
        total_certificates: totals.certificates,
        active_certificates: states.active,
        expired_certificates: states.expired,
        revoked_certificates: states.revoked,
        expiring_soon: states.expiring,
        total_cas: totals.cas,
        total_csrs: totals.csrs,
        pending_csrs: totals.pending_csrs,
        total_templates: totals.templates,
        total_users: totals.users,
        active_users: totals.active_users,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ExpiringQuery {
    /// Ending within this many days (default 30, at most 366).
    pub days: u32,
    /// At most this many (default 10, at most 100).
    pub limit: u32,
}

impl Default for ExpiringQuery {
    fn default() -> Self {
        Self {
            days: EXPIRING_DAYS,
            limit: 10,
        }
    }
}

/// Active certificates that end soonest.
#[utoipa::path(get, path = "/dashboard/expiring-certs", tag = "dashboard",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(ExpiringQuery),
    responses((status = 200, description = "Soonest first", body = Envelope<Vec<CertificateItem>>),
              (status = 400, description = "days or limit out of range", body = ErrorBody)))]
async fn expiring(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<ExpiringQuery>,
) -> ApiResult<Response> {
    let days = bounded("days", q.days, MAX_DAYS)?;
    let limit = bounded("limit", q.limit, MAX_LIMIT)?;
    let now = app.authority.now();
    let certs = app
        .authority
        .reader()
        .expiring_certificates(now, now + Duration::days(days.into()), limit)
        .await
        .map_err(authority::Error::from)?;
    Ok(ok(certs
        .into_iter()
        .map(|c| CertificateItem::new(c, now))
        .collect::<Vec<_>>()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct TrendQuery {
    /// This many days, ending today (UTC; default 30, at most 366).
    pub days: u32,
}

impl Default for TrendQuery {
    fn default() -> Self {
        Self { days: 30 }
    }
}

/// One day of the trend.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendDay {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    /// Certificates added to the inventory that day.
    pub issued: i64,
    /// Certificates revoked that day and still revoked.
    pub revoked: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Trend {
    /// Oldest first, one entry per day.
    pub trend: Vec<TrendDay>,
}

/// Certificates issued and revoked per day.
#[utoipa::path(get, path = "/dashboard/certificate-trend", tag = "dashboard",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(TrendQuery),
    responses((status = 200, description = "Per day", body = Envelope<Trend>),
              (status = 400, description = "days out of range", body = ErrorBody)))]
async fn trend(State(app): State<App>, ApiQuery(q): ApiQuery<TrendQuery>) -> ApiResult<Response> {
    let days = bounded("days", q.days, MAX_DAYS)?;
    Ok(ok(Trend {
        trend: certificate_trend(&app, days).await?,
    }))
}

/// Certificates issued and revoked on each of the last `days` days, oldest first; the
/// console's dashboard draws the same.
pub async fn certificate_trend(app: &App, days: u32) -> ApiResult<Vec<TrendDay>> {
    let counts = app
        .authority
        .reader()
        .certificate_trend(app.authority.now(), days)
        .await
        .map_err(authority::Error::from)?;
    Ok(counts
        .into_iter()
        .map(|d| TrendDay {
            date: d.day.to_string(),
            issued: d.issued,
            revoked: d.revoked,
        })
        .collect())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct RecentQuery {
    /// At most this many (default 5, at most 100).
    pub limit: u32,
}

impl Default for RecentQuery {
    fn default() -> Self {
        Self { limit: 5 }
    }
}

/// The newest CAs.
#[utoipa::path(get, path = "/dashboard/recent-cas", tag = "dashboard",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    params(RecentQuery),
    responses((status = 200, description = "Newest first", body = Envelope<Vec<CaItem>>),
              (status = 400, description = "limit out of range", body = ErrorBody)))]
async fn recent_cas(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<RecentQuery>,
) -> ApiResult<Response> {
    let limit = bounded("limit", q.limit, MAX_LIMIT)?;
    let cas = app
        .authority
        .reader()
        .recent_cas(limit)
        .await
        .map_err(authority::Error::from)?;
    Ok(ok(cas.into_iter().map(CaItem::from).collect::<Vec<_>>()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// At most this many (default 20, at most 100).
    pub limit: u32,
    /// Skip this many of the newest first (default 0, at most 10000).
    pub offset: u32,
}

impl Default for ActivityQuery {
    fn default() -> Self {
        Self {
            limit: 20,
            offset: 0,
        }
    }
}

/// Recent activity: the newest audit records, as `/audit/logs` shows them.
#[utoipa::path(get, path = "/dashboard/activity", tag = "dashboard",
    security(("session" = ["read:audit"]), ("api_key" = ["read:audit"])),
    params(ActivityQuery),
    responses((status = 200, description = "Newest first", body = Envelope<Vec<super::audit::AuditView>>),
              (status = 400, description = "limit or offset out of range", body = ErrorBody)))]
async fn activity(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<ActivityQuery>,
) -> ApiResult<Response> {
    let limit = bounded("limit", q.limit, MAX_LIMIT)?;
    if q.offset > MAX_OFFSET {
        return Err(ApiError::bad_request(format!(
            "offset must be at most {MAX_OFFSET}; older records are at /api/v2/audit/logs"
        )));
    }
    let records = app.authority.recent_activity(limit, q.offset).await?;
    Ok(ok(records
        .into_iter()
        .map(super::audit::AuditView::from)
        .collect::<Vec<_>>()))
}
