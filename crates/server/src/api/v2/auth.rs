//! `/auth`: password login, verification, logout, and the login methods a user has.

use axum::Extension;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::UserView;
use crate::App;
use crate::access::session_cookie;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};
use crate::listen::Conn;
use axum::extract::State;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(login_password))
        .routes(routes!(verify))
        .routes(routes!(logout))
        .routes(routes!(methods))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginData {
    pub user: UserView,
    pub role: String,
    pub permissions: Vec<String>,
    /// `password` or `api_key`.
    pub auth_method: String,
    /// Send this as `X-CSRF-Token` on state-changing requests made with the session cookie.
    pub csrf_token: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// Log in with a username and password. Sets the session cookie (HttpOnly, SameSite=Strict,
/// Secure over TLS) and returns the CSRF token. Rate-limited per client address.
#[utoipa::path(post, path = "/auth/login/password", tag = "auth", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = Envelope<LoginData>),
        (status = 401, description = "Wrong credentials, disabled or locked account", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody)))]
async fn login_password(
    State(app): State<App>,
    Extension(origin): Extension<authority::Origin>,
    conn: Option<Extension<Conn>>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let outcome = app
        .authority
        .login(&body.username, &body.password, &origin)
        .await?;
    let now = app.authority.now();
    let max_age = (outcome.expires_at - now).whole_seconds().max(0);
    let data = LoginData {
        permissions: outcome
            .role
            .permissions()
            .iter()
            .map(|p| (*p).to_owned())
            .collect(),
        role: outcome.role.as_str().to_owned(),
        user: UserView::new(outcome.user, now),
        auth_method: "password".into(),
        csrf_token: Some(outcome.csrf_token),
        expires_at: Some(outcome.expires_at),
    };
    let mut response = ok_with(data, "Login successful");
    let tls = conn.is_some_and(|Extension(c)| c.tls);
    if let Some(cookie) = session_cookie(&outcome.token, max_age, tls) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Who am I: the authenticated user, role and permissions in force.
#[utoipa::path(get, path = "/auth/verify", tag = "auth",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Authenticated", body = Envelope<LoginData>),
              (status = 401, description = "Not authenticated", body = ErrorBody)))]
async fn verify(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let user = principal.account()?.clone();
    let (auth_method, csrf_token) = match &principal.credential {
        authority::Credential::Session { csrf_token, .. } => ("password", Some(csrf_token.clone())),
        _ => ("api_key", None),
    };
    Ok(ok(LoginData {
        permissions: principal.permissions(),
        role: principal.role.as_str().to_owned(),
        user: UserView::new(user, app.authority.now()),
        auth_method: auth_method.into(),
        csrf_token,
        expires_at: None,
    }))
}

/// End the current session and clear the cookie.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Logged out")))]
async fn logout(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    Caller(principal): Caller,
) -> ApiResult<Response> {
    app.authority.logout(&principal).await?;
    let mut response = crate::envelope::done("Logged out");
    let tls = conn.is_some_and(|Extension(c)| c.tls);
    if let Some(cookie) = session_cookie("", 0, tls) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response.into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MethodsRequest {
    pub username: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MethodsData {
    pub password: bool,
    pub webauthn: bool,
    pub webauthn_credentials: u32,
    pub mtls: bool,
    pub mtls_status: String,
    pub totp_enabled: bool,
}

/// The login methods available. The answer is the same for every username, so it cannot be
/// used to find out which accounts exist.
#[utoipa::path(post, path = "/auth/methods", tag = "auth", security(()),
    request_body = MethodsRequest,
    responses((status = 200, description = "Available methods", body = Envelope<MethodsData>),
              (status = 422, description = "Empty username", body = ErrorBody)))]
async fn methods(ApiJson(body): ApiJson<MethodsRequest>) -> ApiResult<Response> {
    if body.username.trim().is_empty() {
        return Err(crate::error::ApiError::invalid(
            "username must not be empty",
        ));
    }
    Ok(ok(MethodsData {
        password: true,
        webauthn: false,
        webauthn_credentials: 0,
        mtls: false,
        mtls_status: "not_present".into(),
        totp_enabled: false,
    }))
}
