//! `/scep`: administration of the SCEP server as the reference has it — its settings (the
//! default profile's fields at the top level, and, in the same style, the other profiles),
//! statistics, the requests with approval and rejection, and one-time challenges. The protocol
//! itself is served at `/scep` outside `/api/v2`.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::v2::views::nullable;
use crate::envelope::{Envelope, Pagination, keyset_page, ok, ok_with};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller};
use crate::{App, Shared};
use authority::{
    CaId, ChallengeIssued, DEFAULT_SCEP_PROFILE, ScepConfig, ScepConfigChange, ScepProfileChange,
    ScepProfileRow, ScepProfileStats, ScepRequestFilter, ScepRequestRow, ScepRequestStatus,
    ScepStats, TemplateId,
};

pub(crate) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(config, update_config))
        .routes(routes!(stats))
        .routes(routes!(requests))
        .routes(routes!(request))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(challenge))
        .routes(routes!(regenerate_challenge))
}

/// A SCEP profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    pub id: i64,
    /// The name in its URL; `default` is the profile at `/scep`.
    pub name: String,
    /// Its PKIOperation URL under `external_url`, else its path.
    pub url: String,
    pub enabled: bool,
    /// The issuing CA; null is the default CA.
    pub ca_id: Option<i64>,
    /// The CA identifier clients send with GetCACert (informational).
    pub ca_ident: String,
    /// The template requests are checked against; null issues client certificates.
    pub template_id: Option<i64>,
    /// Whether requests with a good challenge are issued at once.
    pub auto_approve: bool,
    /// Whether a static challenge password is set (it is never shown).
    pub challenge_password_set: bool,
    /// Hours a one-time challenge for its CA stays good.
    pub challenge_validity: i64,
    /// The RA certificate clients encrypt to (made on first use).
    pub ra_certificate_id: Option<i64>,
}

impl ProfileView {
    /// The view of `p`, its URL as `app` shows links.
    pub fn new(p: &ScepProfileRow, app: &Shared) -> Self {
        Self {
            id: p.id,
            url: app.link(&profile_url(p)),
            name: p.name.clone(),
            enabled: p.enabled,
            ca_id: p.ca_id.map(i64::from),
            ca_ident: p.ca_ident.clone(),
            template_id: p.template_id.map(i64::from),
            auto_approve: p.auto_approve,
            challenge_password_set: p.challenge_digest.is_some(),
            challenge_validity: p.challenge_validity_hours,
            ra_certificate_id: p.ra_certificate_id.map(i64::from),
        }
    }
}

fn profile_url(p: &ScepProfileRow) -> String {
    if p.is_default {
        "/scep/pkiclient.exe".into()
    } else {
        format!("/scep/{}/pkiclient.exe", p.name)
    }
}

/// The SCEP settings: the switch, the default profile's fields (as the reference shows them),
/// and every profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigView {
    pub enabled: bool,
    /// The default profile's PKIOperation URL under `external_url`, else its path.
    pub url: String,
    /// The default profile's issuing CA; null is the default CA.
    pub ca_id: Option<i64>,
    pub ca_ident: String,
    pub template_id: Option<i64>,
    pub auto_approve: bool,
    pub challenge_password_set: bool,
    /// Hours a one-time challenge stays good.
    pub challenge_validity: i64,
    /// Every profile, the default first.
    pub profiles: Vec<ProfileView>,
}

impl ConfigView {
    /// The view of `c`, its URLs as `app` shows links.
    pub fn new(c: ScepConfig, app: &Shared) -> Self {
        let profiles: Vec<ProfileView> = c
            .profiles
            .iter()
            .map(|p| ProfileView::new(p, app))
            .collect();
        let default = c.profiles.iter().find(|p| p.is_default);
        Self {
            enabled: c.enabled,
            url: app.link(&default.map_or_else(|| "/scep/pkiclient.exe".into(), profile_url)),
            ca_id: default.and_then(|p| p.ca_id).map(i64::from),
            ca_ident: default.map(|p| p.ca_ident.clone()).unwrap_or_default(),
            template_id: default.and_then(|p| p.template_id).map(i64::from),
            auto_approve: default.is_some_and(|p| p.auto_approve),
            challenge_password_set: default.is_some_and(|p| p.challenge_digest.is_some()),
            challenge_validity: default.map_or(24, |p| p.challenge_validity_hours),
            profiles,
        }
    }
}

/// A profile's fields to set; absent fields stay.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// The profile to create or change: 1 to 63 lowercase letters, digits or hyphens; its URL
    /// is `/scep/{name}`.
    pub name: String,
    pub enabled: Option<bool>,
    /// The issuing CA; null for the default CA. It must be able to issue.
    #[serde(default, deserialize_with = "nullable")]
    pub ca_id: Option<Option<i64>>,
    pub ca_ident: Option<String>,
    /// A template for end-entity certificates; null for none (client certificates).
    #[serde(default, deserialize_with = "nullable")]
    pub template_id: Option<Option<i64>>,
    pub auto_approve: Option<bool>,
    /// The static challenge password, 12 to 255 characters, write-only; null or "" removes it.
    #[serde(default, deserialize_with = "nullable")]
    pub challenge_password: Option<Option<String>>,
    /// 1 to 744 hours.
    pub challenge_validity: Option<i64>,
}

impl From<ProfilePatch> for ScepProfileChange {
    fn from(p: ProfilePatch) -> Self {
        Self {
            name: p.name,
            enabled: p.enabled,
            ca_id: p.ca_id.map(|c| c.map(CaId)),
            ca_ident: p.ca_ident,
            template_id: p.template_id.map(|t| t.map(TemplateId)),
            auto_approve: p.auto_approve,
            challenge_password: p.challenge_password,
            challenge_validity_hours: p.challenge_validity,
        }
    }
}

/// The settings to change; absent fields stay. The top-level profile fields are the default
/// profile's, as in the reference.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    pub enabled: Option<bool>,
    /// The default profile's issuing CA; null for the default CA.
    #[serde(default, deserialize_with = "nullable")]
    pub ca_id: Option<Option<i64>>,
    pub ca_ident: Option<String>,
    /// The default profile's template; null for none.
    #[serde(default, deserialize_with = "nullable")]
    pub template_id: Option<Option<i64>>,
    pub auto_approve: Option<bool>,
    /// The default profile's static challenge password, write-only; null or "" removes it.
    #[serde(default, deserialize_with = "nullable")]
    pub challenge_password: Option<Option<String>>,
    /// 1 to 744 hours.
    pub challenge_validity: Option<i64>,
    /// Profiles to create or change, by name.
    #[serde(default)]
    pub profiles: Vec<ProfilePatch>,
    /// Profiles to delete (not the default one), with their requests.
    #[serde(default)]
    pub remove_profiles: Vec<String>,
}

/// The SCEP server's settings and profiles.
#[utoipa::path(get, path = "/scep/config", tag = "scep",
    security(("session" = ["read:scep"]), ("api_key" = ["read:scep"])),
    responses((status = 200, description = "Settings", body = Envelope<ConfigView>)))]
async fn config(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(ConfigView::new(
        app.authority.scep_config(&principal).await?,
        &app,
    )))
}

/// Change the SCEP server's settings and profiles, in one transaction; served at once.
#[utoipa::path(patch, path = "/scep/config", tag = "scep",
    security(("session" = ["write:scep"]), ("api_key" = ["write:scep"])),
    request_body = ConfigPatch,
    responses((status = 200, description = "Updated", body = Envelope<ConfigView>),
              (status = 404, description = "A profile to remove does not exist", body = ErrorBody),
              (status = 422, description = "A value is wrong", body = ErrorBody)))]
async fn update_config(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(patch): ApiJson<ConfigPatch>,
) -> ApiResult<Response> {
    let default_profile = ProfilePatch {
        name: DEFAULT_SCEP_PROFILE.to_owned(),
        enabled: None,
        ca_id: patch.ca_id,
        ca_ident: patch.ca_ident,
        template_id: patch.template_id,
        auto_approve: patch.auto_approve,
        challenge_password: patch.challenge_password,
        challenge_validity: patch.challenge_validity,
    };
    let touches_default = default_profile.ca_id.is_some()
        || default_profile.ca_ident.is_some()
        || default_profile.template_id.is_some()
        || default_profile.auto_approve.is_some()
        || default_profile.challenge_password.is_some()
        || default_profile.challenge_validity.is_some();
    let mut profiles = Vec::new();
    if touches_default {
        profiles.push(ScepProfileChange::from(default_profile));
    }
    profiles.extend(patch.profiles.into_iter().map(ScepProfileChange::from));
    let change = ScepConfigChange {
        enabled: patch.enabled,
        profiles,
        remove_profiles: patch.remove_profiles,
    };
    let config = app.authority.update_scep_config(&principal, change).await?;
    Ok(ok_with(
        ConfigView::new(config, &app),
        "SCEP settings updated",
    ))
}

/// One profile's requests by outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileStatsView {
    pub profile: String,
    pub issued: i64,
    pub pending: i64,
    pub rejected: i64,
    pub failed: i64,
    /// Requests in the last 24 hours.
    pub last_24h: i64,
}

impl From<ScepProfileStats> for ProfileStatsView {
    fn from(s: ScepProfileStats) -> Self {
        Self {
            profile: s.name,
            issued: s.issued,
            pending: s.pending,
            rejected: s.rejected,
            failed: s.failed,
            last_24h: s.last_24h,
        }
    }
}

/// SCEP's statistics, from the database (every node shows the same).
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    pub enabled: bool,
    pub total_requests: i64,
    pub issued: i64,
    pub pending: i64,
    pub rejected: i64,
    pub failed: i64,
    pub last_24h: i64,
    pub profiles: Vec<ProfileStatsView>,
}

impl From<ScepStats> for StatsView {
    fn from(s: ScepStats) -> Self {
        let t = &s.total;
        Self {
            enabled: s.enabled,
            total_requests: t.issued + t.pending + t.rejected + t.failed,
            issued: t.issued,
            pending: t.pending,
            rejected: t.rejected,
            failed: t.failed,
            last_24h: t.last_24h,
            profiles: s.profiles.into_iter().map(ProfileStatsView::from).collect(),
        }
    }
}

/// SCEP's statistics: requests per profile and outcome.
#[utoipa::path(get, path = "/scep/stats", tag = "scep",
    security(("session" = ["read:scep"]), ("api_key" = ["read:scep"])),
    responses((status = 200, description = "Statistics", body = Envelope<StatsView>)))]
async fn stats(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(StatsView::from(
        app.authority.scep_stats(&principal).await?,
    )))
}

/// A SCEP request (PKCSReq or RenewalReq) and what came of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    pub id: i64,
    pub profile_id: i64,
    pub transaction_id: String,
    /// PKCSReq or RenewalReq.
    pub message_type: String,
    /// pending, issued, rejected or failed.
    pub status: String,
    pub subject: String,
    /// SHA-256 of the requested public key, hex.
    pub public_key_sha256: String,
    /// The certificate a RenewalReq renews.
    pub renewed_from: Option<i64>,
    pub certificate_id: Option<i64>,
    /// Why it failed or was rejected.
    pub reason: Option<String>,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
    pub origin_ip: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<ScepRequestRow> for RequestView {
    fn from(r: ScepRequestRow) -> Self {
        Self {
            id: r.id,
            profile_id: r.profile_id,
            transaction_id: r.transaction_id,
            message_type: r.message_type,
            status: r.status.to_string(),
            subject: r.subject,
            public_key_sha256: r.public_key_sha256,
            renewed_from: r.renewed_from.map(i64::from),
            certificate_id: r.certificate_id.map(i64::from),
            reason: r.reason,
            decided_by: r.decided_by,
            origin_ip: r.origin_ip,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    /// pending, issued, rejected or failed.
    pub status: Option<String>,
    /// Only this profile's.
    pub profile_id: Option<i64>,
}

/// The request list's filter: `status` by name (blank or absent: any) and `profile_id`.
///
/// # Errors
/// 400 for a status that is not one of the four.
pub(crate) fn request_filter(
    status: Option<&str>,
    profile_id: Option<i64>,
) -> ApiResult<ScepRequestFilter> {
    let status = match status.filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(ScepRequestStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown status '{s}'; expected pending, issued, rejected or failed"
            ))
        })?),
    };
    Ok(ScepRequestFilter { profile_id, status })
}

/// SCEP requests, newest first.
#[utoipa::path(get, path = "/scep/requests", tag = "scep",
    security(("session" = ["read:scep"]), ("api_key" = ["read:scep"])),
    params(RequestQuery, Pagination),
    responses((status = 200, description = "Requests", body = Envelope<Vec<RequestView>>),
              (status = 400, description = "Unknown status", body = ErrorBody)))]
async fn requests(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<RequestQuery>,
    ApiQuery(p): ApiQuery<Pagination>,
) -> ApiResult<Response> {
    let request = p.keyset_request()?;
    let filter = request_filter(q.status.as_deref(), q.profile_id)?;
    let found = app
        .authority
        .scep_requests(&principal, &filter, request)
        .await?;
    let items = found.items.into_iter().map(RequestView::from).collect();
    Ok(keyset_page(items, request, found.total, |r| r.id))
}

/// One SCEP request.
#[utoipa::path(get, path = "/scep/requests/{request_id}", tag = "scep",
    security(("session" = ["read:scep"]), ("api_key" = ["read:scep"])),
    params(("request_id" = i64, Path, description = "The request's id")),
    responses((status = 200, description = "Request", body = Envelope<RequestView>),
              (status = 404, description = "No such request", body = ErrorBody)))]
async fn request(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    Ok(ok(RequestView::from(
        app.authority.scep_request(&principal, id).await?,
    )))
}

/// Approve a pending request: its certificate is issued now (as the profile's SCEP client, the
/// approver recorded), and the client receives it when it next polls.
#[utoipa::path(post, path = "/scep/{request_id}/approve", tag = "scep",
    security(("session" = ["write:scep"]), ("api_key" = ["write:scep"])),
    params(("request_id" = i64, Path, description = "The request's id")),
    responses((status = 200, description = "Approved and issued", body = Envelope<RequestView>),
              (status = 404, description = "No such request", body = ErrorBody),
              (status = 409, description = "Not pending", body = ErrorBody),
              (status = 422, description = "Issuing refused it (it is marked failed)", body = ErrorBody)))]
async fn approve(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let row = app.authority.approve_scep_request(&principal, id).await?;
    Ok(ok_with(RequestView::from(row), "SCEP request approved"))
}

/// Why a request is rejected.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// At most 1,000 characters.
    pub reason: Option<String>,
}

/// Reject a pending request; the client receives a failure when it next polls.
#[utoipa::path(post, path = "/scep/{request_id}/reject", tag = "scep",
    security(("session" = ["write:scep"]), ("api_key" = ["write:scep"])),
    params(("request_id" = i64, Path, description = "The request's id")),
    request_body = RejectBody,
    responses((status = 200, description = "Rejected", body = Envelope<RequestView>),
              (status = 404, description = "No such request", body = ErrorBody),
              (status = 409, description = "Not pending", body = ErrorBody)))]
async fn reject(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<RejectBody>,
) -> ApiResult<Response> {
    let row = app
        .authority
        .reject_scep_request(&principal, id, body.reason.as_deref())
        .await?;
    Ok(ok_with(RequestView::from(row), "SCEP request rejected"))
}

/// A one-time challenge password, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeView {
    pub ca_id: i64,
    /// The challenge password, good for one enrollment.
    pub challenge: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Hours it is good for.
    pub challenge_validity: i64,
    /// Open challenges of the CA ended by a regeneration.
    pub revoked: u64,
}

impl From<ChallengeIssued> for ChallengeView {
    fn from(c: ChallengeIssued) -> Self {
        Self {
            ca_id: c.ca_id.into(),
            challenge: c.challenge,
            expires_at: c.expires_at,
            challenge_validity: c.validity_hours,
            revoked: c.revoked,
        }
    }
}

/// A new one-time challenge password for enrollments from CA `ca_id` (through any enabled
/// profile issuing from it), good once, until it expires. Each call makes another.
#[utoipa::path(get, path = "/scep/challenge/{ca_id}", tag = "scep",
    security(("session" = ["write:scep"]), ("api_key" = ["write:scep"])),
    params(("ca_id" = i64, Path, description = "The CA")),
    responses((status = 200, description = "A challenge", body = Envelope<ChallengeView>),
              (status = 422, description = "Unknown or unusable CA, or no profile issues from it", body = ErrorBody)))]
async fn challenge(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(ca_id): Path<i64>,
) -> ApiResult<Response> {
    let issued = app
        .authority
        .scep_challenge(&principal, CaId(ca_id), false)
        .await?;
    Ok(ok(ChallengeView::from(issued)))
}

/// End every open one-time challenge of CA `ca_id` and make a new one.
#[utoipa::path(post, path = "/scep/challenge/{ca_id}/regenerate", tag = "scep",
    security(("session" = ["write:scep"]), ("api_key" = ["write:scep"])),
    params(("ca_id" = i64, Path, description = "The CA")),
    responses((status = 200, description = "A new challenge; the old ones no longer work", body = Envelope<ChallengeView>),
              (status = 422, description = "Unknown or unusable CA, or no profile issues from it", body = ErrorBody)))]
async fn regenerate_challenge(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(ca_id): Path<i64>,
) -> ApiResult<Response> {
    let issued = app
        .authority
        .scep_challenge(&principal, CaId(ca_id), true)
        .await?;
    Ok(ok_with(
        ChallengeView::from(issued),
        "SCEP challenges regenerated",
    ))
}
