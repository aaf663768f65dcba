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
        .routes(routes!(login_second_factor))
        .routes(routes!(login_totp_setup))
        .routes(routes!(login_mtls))
        .routes(routes!(verify))
        .routes(routes!(logout))
        .routes(routes!(methods))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
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
    /// How the session was opened (`password`, `webauthn`, `mtls`, `sso`), or `api_key`.
    pub auth_method: String,
    /// Send this as `X-CSRF-Token` on state-changing requests made with the session cookie.
    pub csrf_token: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Recovery codes made by a login that set up an authenticator, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// Where a login stands: logged in, or waiting for a second factor.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    Done(Box<LoginData>),
    Pending(PendingData),
}

/// A login whose first step succeeded and that waits for a second factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingData {
    /// Always true: send a code to `POST /api/v2/auth/login/2fa` with `pending_token`.
    pub requires_2fa: bool,
    /// `totp` (an authenticator or recovery code) or `setup` (the role requires a second
    /// factor and none is set up: `POST /api/v2/auth/login/2fa/setup` first).
    pub second_factor: String,
    /// Presented with the code; valid until `expires_at`, for a few codes.
    pub pending_token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub username: String,
}

/// The answer to a login's first step; the session cookie when it is complete. Every login
/// door (password, passkey, client certificate, single sign-on) answers through this.
pub(crate) fn login_response(app: &App, step: authority::LoginStep, tls: bool) -> Response {
    match step {
        authority::LoginStep::Done(outcome) => session_response(app, outcome, tls),
        authority::LoginStep::SecondFactor(pending) => ok_with(
            LoginAnswer::Pending(PendingData {
                requires_2fa: true,
                second_factor: if pending.setup { "setup" } else { "totp" }.into(),
                pending_token: pending.token,
                expires_at: pending.expires_at,
                username: pending.user.username,
            }),
            "Second factor required",
        ),
    }
}

/// The answer to a complete login: the session's data and its cookie.
fn session_response(app: &App, outcome: authority::LoginOutcome, tls: bool) -> Response {
    let now = app.authority.now();
    let max_age = (outcome.expires_at - now).whole_seconds().max(0);
    let data = LoginData {
        permissions: outcome.permissions,
        role: outcome.role.as_str().to_owned(),
        user: UserView::new(outcome.user, now),
        auth_method: outcome.method.as_str().into(),
        csrf_token: Some(outcome.csrf_token),
        expires_at: Some(outcome.expires_at),
        recovery_codes: (!outcome.recovery_codes.is_empty()).then_some(outcome.recovery_codes),
    };
    let mut response = ok_with(LoginAnswer::Done(Box::new(data)), "Login successful");
    if let Some(cookie) = session_cookie(&outcome.token, max_age, tls) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Log in with a username and password. Sets the session cookie (HttpOnly, SameSite=Strict,
/// Secure over TLS) and returns the CSRF token; or, when the account has a second factor or
/// its role requires one, returns a pending login to complete with
/// `POST /api/v2/auth/login/2fa`. Rate-limited per client address.
#[utoipa::path(post, path = "/auth/login/password", tag = "auth", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in, or waiting for a second factor", body = Envelope<LoginAnswer>),
        (status = 401, description = "Wrong credentials, disabled or locked account", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody)))]
async fn login_password(
    State(app): State<App>,
    Extension(origin): Extension<authority::Origin>,
    conn: Option<Extension<Conn>>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let step = app
        .authority
        .login(&body.username, &body.password, &origin)
        .await?;
    Ok(login_response(&app, step, tls(conn.as_ref())))
}

/// Log in with the TLS client certificate presented on this HTTPS connection: one issued by a
/// CA the mTLS settings trust, valid, not revoked in certmint's inventory, and registered to
/// the user (or, with e-mail mapping on, naming exactly one enabled user's address). Answers as
/// the password login does, a pending login when a second factor is due. Every refusal is
/// audited with its reason. Rate-limited per client address.
#[utoipa::path(post, path = "/auth/login/mtls", tag = "auth", security(()),
    responses(
        (status = 200, description = "Logged in, or waiting for a second factor", body = Envelope<LoginAnswer>),
        (status = 401, description = "No certificate, or one that does not log anyone in (the message says why)", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody)))]
async fn login_mtls(
    State(app): State<App>,
    Extension(origin): Extension<authority::Origin>,
    conn: Option<Extension<Conn>>,
) -> ApiResult<Response> {
    let step = app
        .authority
        .login_with_certificate(client_certificate(conn.as_ref()), &origin)
        .await?;
    Ok(login_response(&app, step, tls(conn.as_ref())))
}

/// The certificate the client presented in the TLS handshake, its own (the chain's first).
fn client_certificate(conn: Option<&Extension<Conn>>) -> Option<&[u8]> {
    conn.and_then(|Extension(c)| c.client_chain.as_ref())
        .and_then(|chain| chain.first())
        .map(|c| c.as_ref())
}

pub(crate) fn tls(conn: Option<&Extension<Conn>>) -> bool {
    conn.is_some_and(|Extension(c)| c.tls)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorRequest {
    pub pending_token: String,
    /// The 6 digits the authenticator shows, or a recovery code.
    pub code: String,
}

/// Complete a login that waits for a second factor, with an authenticator code or a recovery
/// code. A code is accepted once; a pending login takes a few codes, and wrong codes count
/// towards the account's lockout. When the login set up an authenticator, the answer carries
/// the recovery codes, shown this once. Rate-limited per client address.
#[utoipa::path(post, path = "/auth/login/2fa", tag = "auth", security(()),
    request_body = SecondFactorRequest,
    responses(
        (status = 200, description = "Logged in", body = Envelope<LoginData>),
        (status = 401, description = "Wrong, reused or too many codes; unknown or expired pending login", body = ErrorBody),
        (status = 422, description = "Not a code", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody)))]
async fn login_second_factor(
    State(app): State<App>,
    Extension(origin): Extension<authority::Origin>,
    conn: Option<Extension<Conn>>,
    ApiJson(body): ApiJson<SecondFactorRequest>,
) -> ApiResult<Response> {
    let outcome = app
        .authority
        .login_second_factor(&body.pending_token, &body.code, &origin)
        .await?;
    Ok(session_response(&app, outcome, tls(conn.as_ref())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PendingRequest {
    pub pending_token: String,
}

/// Set up an authenticator during a login whose role requires a second factor: answers the
/// secret, its `otpauth://` URI and a QR code; the first code sent to
/// `POST /api/v2/auth/login/2fa` confirms it and completes the login.
#[utoipa::path(post, path = "/auth/login/2fa/setup", tag = "auth", security(()),
    request_body = PendingRequest,
    responses(
        (status = 200, description = "A new authenticator", body = Envelope<super::two_factor::EnrollmentView>),
        (status = 401, description = "Unknown or expired pending login", body = ErrorBody),
        (status = 409, description = "This login does not set up an authenticator", body = ErrorBody)))]
async fn login_totp_setup(
    State(app): State<App>,
    Extension(origin): Extension<authority::Origin>,
    ApiJson(body): ApiJson<PendingRequest>,
) -> ApiResult<Response> {
    let enrollment = app
        .authority
        .login_totp_setup(&body.pending_token, &origin)
        .await?;
    Ok(ok(super::two_factor::EnrollmentView::from(enrollment)))
}

/// Who am I: the authenticated user, role and permissions in force.
#[utoipa::path(get, path = "/auth/verify", tag = "auth",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Authenticated", body = Envelope<LoginData>),
              (status = 401, description = "Not authenticated", body = ErrorBody)))]
async fn verify(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let user = principal.account()?.clone();
    let (auth_method, csrf_token) = match &principal.credential {
        authority::Credential::Session {
            csrf_token, method, ..
        } => (method.clone(), Some(csrf_token.clone())),
        _ => ("api_key".to_owned(), None),
    };
    Ok(ok(LoginData {
        permissions: principal.permissions(),
        role: principal.role.as_str().to_owned(),
        user: UserView::new(user, app.authority.now()),
        auth_method,
        csrf_token,
        expires_at: None,
        recovery_codes: None,
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
/// used to find out which accounts exist: `webauthn` says whether passkeys work on this server
/// (whoever holds them), and `webauthn_credentials` stays 0; `mtls` says whether certificate
/// login is on, and `mtls_status` whether this connection presented a client certificate
/// (`present`) or not (`not_present`).
#[utoipa::path(post, path = "/auth/methods", tag = "auth", security(()),
    request_body = MethodsRequest,
    responses((status = 200, description = "Available methods", body = Envelope<MethodsData>),
              (status = 422, description = "Empty username", body = ErrorBody)))]
async fn methods(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    ApiJson(body): ApiJson<MethodsRequest>,
) -> ApiResult<Response> {
    if body.username.trim().is_empty() {
        return Err(crate::error::ApiError::invalid(
            "username must not be empty",
        ));
    }
    let mtls = app.authority.mtls_settings().await?.enabled;
    let presented = client_certificate(conn.as_ref()).is_some();
    Ok(ok(MethodsData {
        password: true,
        webauthn: super::passkeys::relying_party(&app).is_ok(),
        webauthn_credentials: 0,
        mtls,
        mtls_status: if presented { "present" } else { "not_present" }.into(),
        totp_enabled: false,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    pub email: String,
}

/// Ask for a password reset link by mail. The answer is the same, at once, whether or not an
/// account has this address or mail is set up, so it cannot be used to find accounts. The link
/// is built on the server's configured public URL and works once, for 30 minutes.
/// Rate-limited per client address.
#[utoipa::path(post, path = "/auth/forgot-password", tag = "auth", security(()),
    request_body = ForgotPasswordRequest,
    responses((status = 200, description = "Accepted; a link is mailed if the address has an account"),
              (status = 422, description = "Not an e-mail address", body = ErrorBody),
              (status = 429, description = "Too many attempts from this address", body = ErrorBody)))]
async fn forgot_password(
    State(app): State<App>,
    Extension(origin): Extension<authority::Origin>,
    ApiJson(body): ApiJson<ForgotPasswordRequest>,
) -> ApiResult<Response> {
    app.authority
        .request_password_reset(&body.email, &app.public_base(), &origin)?;
    Ok(crate::envelope::done(
        "If an account has this address, a reset link is on its way",
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token of the mailed link.
    pub token: String,
    pub password: String,
}

/// Set a new password with the token of a mailed reset link. The link then stops working, and
/// every session of the account ends. A second factor stays on. Rate-limited per client
/// address.
#[utoipa::path(post, path = "/auth/reset-password", tag = "auth", security(()),
    request_body = ResetPasswordRequest,
    responses((status = 200, description = "Password set"),
              (status = 401, description = "Unknown, used or expired link", body = ErrorBody),
              (status = 422, description = "The password breaks the policy", body = ErrorBody),
              (status = 429, description = "Too many attempts from this address", body = ErrorBody)))]
async fn reset_password(
    State(app): State<App>,
    Extension(origin): Extension<authority::Origin>,
    ApiJson(body): ApiJson<ResetPasswordRequest>,
) -> ApiResult<Response> {
    app.authority
        .reset_forgotten_password(&body.token, &body.password, &origin)
        .await?;
    Ok(crate::envelope::done("Password set; log in with it"))
}
