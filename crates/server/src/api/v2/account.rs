//! `/account`: one's own profile, password, API keys, sessions and activity.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit::AuditView;
use super::views::{UserView, nullable};
use crate::App;
use crate::envelope::{Envelope, created, no_content, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(profile))
        .routes(routes!(update_profile))
        .routes(routes!(change_password))
        .routes(routes!(list_keys))
        .routes(routes!(create_key))
        .routes(routes!(get_key))
        .routes(routes!(update_key))
        .routes(routes!(delete_key))
        .routes(routes!(regenerate_key))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(revoke_all_sessions))
        .routes(routes!(activity))
}

/// The caller's own account.
#[utoipa::path(get, path = "/account/profile", tag = "account",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Profile", body = Envelope<UserView>)))]
async fn profile(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(UserView::new(
        principal.account()?.clone(),
        app.authority.now(),
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    #[serde(default, deserialize_with = "nullable")]
    pub full_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub email: Option<Option<String>>,
}

/// Change one's display name or e-mail (`null` clears a field).
#[utoipa::path(patch, path = "/account/profile", tag = "account",
    security(("session" = []), ("api_key" = [])),
    request_body = ProfileUpdate,
    responses((status = 200, description = "Updated profile", body = Envelope<UserView>),
              (status = 422, description = "A field breaks a rule", body = ErrorBody)))]
async fn update_profile(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<ProfileUpdate>,
) -> ApiResult<Response> {
    let user = app
        .authority
        .update_profile(&principal, body.email, body.full_name)
        .await?;
    Ok(ok_with(
        UserView::new(user, app.authority.now()),
        "Profile updated",
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// What a password change did to the account's other credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordChangeView {
    /// Other login sessions ended.
    pub sessions_ended: u64,
    /// API keys that keep working: revoke them too if the old password leaked.
    pub api_keys_kept: usize,
}

/// Change one's password (login sessions only, not API keys). Ends one's other sessions; API
/// keys keep working, and the answer counts them. Wrong current passwords count towards the
/// lockout and are rate-limited like logins.
#[utoipa::path(post, path = "/account/password", tag = "account",
    security(("session" = [])),
    request_body = PasswordChange,
    responses((status = 200, description = "Password changed", body = Envelope<PasswordChangeView>),
              (status = 403, description = "Current password is wrong, or not a login session", body = ErrorBody),
              (status = 422, description = "New password breaks the policy", body = ErrorBody),
              (status = 401, description = "Account locked after too many wrong passwords", body = ErrorBody),
              (status = 429, description = "Too many attempts from this address", body = ErrorBody)))]
async fn change_password(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<PasswordChange>,
) -> ApiResult<Response> {
    let (changed, message) = password_change(&app, &principal, body).await?;
    Ok(ok_with(changed, message))
}

/// Changes the caller's password as `body` asks, and says what that did to its other
/// credentials; the console's form changes it the same way (after the same rate limit, which
/// the caller applies).
pub async fn password_change(
    app: &App,
    principal: &authority::Principal,
    body: PasswordChange,
) -> ApiResult<(PasswordChangeView, String)> {
    let changed = app
        .authority
        .change_password(principal, &body.current_password, &body.new_password)
        .await?;
    let message = format!(
        "Password changed; {} other sessions ended; {} API keys still work (revoke them if the \
         old password leaked)",
        changed.sessions_ended, changed.api_keys_kept
    );
    Ok((
        PasswordChangeView {
            sessions_ended: changed.sessions_ended,
            api_keys_kept: changed.api_keys_kept,
        },
        message,
    ))
}

/// An API key as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: i64,
    pub name: String,
    /// The first characters of the key, to tell keys apart.
    pub key_prefix: String,
    pub permissions: Vec<String>,
    pub enabled: bool,
    pub expired: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl ApiKeyView {
    fn new(k: authority::ApiKeyRow, now: OffsetDateTime) -> Self {
        Self {
            id: k.id,
            expired: k.expires_at.is_some_and(|t| t <= now),
            name: k.name,
            key_prefix: k.key_prefix,
            permissions: k.permissions,
            enabled: k.enabled,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            created_at: k.created_at,
        }
    }
}

/// A key with its secret, returned once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKeyView {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    /// The secret: shown now and never again.
    pub key: String,
}

impl IssuedKeyView {
    fn new(issued: authority::IssuedApiKey, now: OffsetDateTime) -> Self {
        Self {
            key: issued.secret.to_string(),
            api_key: ApiKeyView::new(issued.key, now),
        }
    }
}

/// The caller's API keys.
#[utoipa::path(get, path = "/account/apikeys", tag = "account",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Keys", body = Envelope<Vec<ApiKeyView>>)))]
async fn list_keys(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(key_views(&app, &principal).await?))
}

/// The caller's API keys, without their secrets; the console's account page lists them the
/// same way.
pub async fn key_views(app: &App, principal: &authority::Principal) -> ApiResult<Vec<ApiKeyView>> {
    let now = app.authority.now();
    let keys = app.authority.api_keys(principal).await?;
    Ok(keys.into_iter().map(|k| ApiKeyView::new(k, now)).collect())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    pub name: String,
    /// Lifetime in days (1 to 3650); omit for a key that does not expire.
    pub expires_days: Option<i64>,
    /// Permission strings, each held by the caller.
    pub permissions: Vec<String>,
}

/// Create an API key. The secret is in `data.key`, shown once.
#[utoipa::path(post, path = "/account/apikeys", tag = "account",
    security(("session" = []), ("api_key" = [])),
    request_body = ApiKeyCreate,
    responses((status = 201, description = "Created", body = Envelope<IssuedKeyView>),
              (status = 403, description = "A permission the caller does not hold", body = ErrorBody),
              (status = 422, description = "Bad name, lifetime or permission", body = ErrorBody)))]
async fn create_key(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<ApiKeyCreate>,
) -> ApiResult<Response> {
    Ok(created(
        create_api_key(&app, &principal, body).await?,
        "API key created; store the key now, it is not shown again",
    ))
}

/// Creates the API key `body` describes for the caller, its secret in the answer only; the
/// console's form creates keys the same way.
pub async fn create_api_key(
    app: &App,
    principal: &authority::Principal,
    body: ApiKeyCreate,
) -> ApiResult<IssuedKeyView> {
    let issued = app
        .authority
        .create_api_key(
            principal,
            authority::ApiKeyInput {
                name: body.name,
                expires_days: body.expires_days,
                permissions: body.permissions,
            },
        )
        .await?;
    Ok(IssuedKeyView::new(issued, app.authority.now()))
}

/// One of the caller's API keys.
#[utoipa::path(get, path = "/account/apikeys/{key_id}", tag = "account",
    security(("session" = []), ("api_key" = [])),
    params(("key_id" = i64, Path)),
    responses((status = 200, description = "Key", body = Envelope<ApiKeyView>),
              (status = 404, description = "No such key", body = ErrorBody)))]
async fn get_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let key = app.authority.api_key(&principal, id).await?;
    Ok(ok(ApiKeyView::new(key, app.authority.now())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyPatch {
    pub name: Option<String>,
    pub enabled: Option<bool>,
}

/// Rename, enable or disable one of the caller's API keys.
#[utoipa::path(patch, path = "/account/apikeys/{key_id}", tag = "account",
    security(("session" = []), ("api_key" = [])),
    params(("key_id" = i64, Path)),
    request_body = ApiKeyPatch,
    responses((status = 200, description = "Updated", body = Envelope<ApiKeyView>),
              (status = 404, description = "No such key", body = ErrorBody)))]
async fn update_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<ApiKeyPatch>,
) -> ApiResult<Response> {
    let update = authority::ApiKeyUpdate {
        name: body.name,
        enabled: body.enabled,
    };
    let key = app.authority.update_api_key(&principal, id, update).await?;
    Ok(ok_with(
        ApiKeyView::new(key, app.authority.now()),
        "API key updated",
    ))
}

/// Delete one of the caller's API keys.
#[utoipa::path(delete, path = "/account/apikeys/{key_id}", tag = "account",
    security(("session" = []), ("api_key" = [])),
    params(("key_id" = i64, Path)),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such key", body = ErrorBody)))]
async fn delete_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.delete_api_key(&principal, id).await?;
    Ok(no_content())
}

/// Replace the secret of one of the caller's API keys. The new secret is in `data.key`.
#[utoipa::path(post, path = "/account/apikeys/{key_id}/regenerate", tag = "account",
    security(("session" = []), ("api_key" = [])),
    params(("key_id" = i64, Path)),
    responses((status = 200, description = "Regenerated", body = Envelope<IssuedKeyView>),
              (status = 404, description = "No such key", body = ErrorBody)))]
async fn regenerate_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let issued = app.authority.regenerate_api_key(&principal, id).await?;
    Ok(ok_with(
        IssuedKeyView::new(issued, app.authority.now()),
        "API key regenerated; the old key no longer works",
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: i64,
    pub auth_method: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// The caller's active sessions.
#[utoipa::path(get, path = "/account/sessions", tag = "account",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Sessions", body = Envelope<Vec<SessionView>>)))]
async fn list_sessions(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(session_views(&app, &principal).await?))
}

/// The caller's live sessions, the one it is using marked; the console's account page lists
/// them the same way.
pub async fn session_views(
    app: &App,
    principal: &authority::Principal,
) -> ApiResult<Vec<SessionView>> {
    let current = principal.session_id();
    let sessions = app.authority.sessions(principal).await?;
    Ok(sessions
        .into_iter()
        .map(|s| SessionView {
            current: Some(s.id) == current,
            id: s.id,
            auth_method: s.auth_method,
            ip_address: s.ip_address,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
        })
        .collect())
}

/// End one of the caller's sessions.
#[utoipa::path(delete, path = "/account/sessions/{session_id}", tag = "account",
    security(("session" = [])),
    params(("session_id" = i64, Path)),
    responses((status = 204, description = "Revoked"),
              (status = 404, description = "No such active session", body = ErrorBody)))]
async fn revoke_session(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.revoke_session(&principal, id).await?;
    Ok(no_content())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedCount {
    pub revoked: u64,
}

/// End all of the caller's sessions except the current one.
#[utoipa::path(post, path = "/account/sessions/revoke-all", tag = "account",
    security(("session" = [])),
    responses((status = 200, description = "Revoked", body = Envelope<RevokedCount>)))]
async fn revoke_all_sessions(
    State(app): State<App>,
    Caller(principal): Caller,
) -> ApiResult<Response> {
    let revoked = app.authority.revoke_other_sessions(&principal).await?;
    Ok(ok_with(RevokedCount { revoked }, "Other sessions revoked"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// How many records, 1 to 100 (default 50).
    pub limit: u32,
}

impl Default for ActivityQuery {
    fn default() -> Self {
        Self { limit: 50 }
    }
}

/// The caller's own recent audit records.
#[utoipa::path(get, path = "/account/activity", tag = "account",
    security(("session" = []), ("api_key" = [])),
    params(ActivityQuery),
    responses((status = 200, description = "Activity", body = Envelope<Vec<AuditView>>)))]
async fn activity(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<ActivityQuery>,
) -> ApiResult<Response> {
    let records = app.authority.activity(&principal, q.limit).await?;
    Ok(ok(records
        .into_iter()
        .map(AuditView::from)
        .collect::<Vec<_>>()))
}
