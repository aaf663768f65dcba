//! `/account/2fa`: one's own authenticator (TOTP) and recovery codes. Every change needs a
//! login session: an API key cannot set up or remove the factor that guards the logins that
//! make keys.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(enable))
        .routes(routes!(confirm))
        .routes(routes!(disable))
        .routes(routes!(recovery_codes))
        .routes(routes!(regenerate_recovery_codes))
}

/// A new authenticator: add it to an app by scanning the QR code or typing the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentView {
    /// The secret, base32.
    pub secret: String,
    /// The `otpauth://totp/…` URI the QR code holds (SHA-1, 6 digits, 30 seconds).
    pub otpauth_uri: String,
    /// The QR code, an SVG document.
    pub qr_code: String,
    /// Always `image/svg+xml`.
    pub qr_code_type: String,
}

impl From<authority::TotpEnrollment> for EnrollmentView {
    fn from(e: authority::TotpEnrollment) -> Self {
        Self {
            secret: e.secret.to_string(),
            otpauth_uri: e.otpauth_uri.to_string(),
            qr_code: e.qr_svg,
            qr_code_type: "image/svg+xml".into(),
        }
    }
}

/// Where one's second factor stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    /// A confirmed authenticator guards logins.
    pub enabled: bool,
    /// An authenticator was set up and waits for its first code.
    pub pending: bool,
    /// The role requires a second factor (it cannot be turned off).
    pub required: bool,
    pub recovery_codes_remaining: i64,
    pub recovery_codes_total: i64,
}

impl From<authority::SecondFactorStatus> for StatusView {
    fn from(s: authority::SecondFactorStatus) -> Self {
        Self {
            enabled: s.enabled,
            pending: s.pending,
            required: s.required,
            recovery_codes_remaining: s.recovery_codes_left,
            recovery_codes_total: s.recovery_codes_total,
        }
    }
}

/// Recovery codes, shown only when made.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesView {
    /// Single-use codes, each accepted in place of an authenticator code.
    pub recovery_codes: Vec<String>,
}

/// Whether two-factor authentication is on, required, and how many recovery codes are left.
#[utoipa::path(get, path = "/account/2fa", tag = "account",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Second-factor status", body = Envelope<StatusView>)))]
async fn status(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(StatusView::from(
        app.authority.second_factor_status(&principal).await?,
    )))
}

/// Start setting up an authenticator (TOTP): answers its secret, `otpauth://` URI and QR code
/// (SVG). It guards logins once `POST /account/2fa/confirm` takes its first code; starting
/// again before that replaces it.
#[utoipa::path(post, path = "/account/2fa/enable", tag = "account",
    security(("session" = [])),
    responses((status = 200, description = "A new authenticator", body = Envelope<EnrollmentView>),
              (status = 403, description = "Not a login session", body = ErrorBody),
              (status = 409, description = "Two-factor authentication is already on", body = ErrorBody)))]
async fn enable(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(EnrollmentView::from(
        app.authority.totp_enable(&principal).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The 6 digits the authenticator shows.
    pub code: String,
}

/// Confirm the new authenticator with its first code: two-factor authentication is on from
/// now, and the answer carries ten recovery codes, shown this once.
#[utoipa::path(post, path = "/account/2fa/confirm", tag = "account",
    security(("session" = [])),
    request_body = CodeRequest,
    responses((status = 200, description = "On; the recovery codes", body = Envelope<RecoveryCodesView>),
              (status = 401, description = "Wrong or reused code", body = ErrorBody),
              (status = 409, description = "Nothing to confirm", body = ErrorBody),
              (status = 422, description = "Not a code", body = ErrorBody)))]
async fn confirm(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<CodeRequest>,
) -> ApiResult<Response> {
    let recovery_codes = app.authority.totp_confirm(&principal, &body.code).await?;
    Ok(ok_with(
        RecoveryCodesView { recovery_codes },
        "Two-factor authentication enabled",
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    /// A current authenticator code or a recovery code.
    pub code: Option<String>,
    /// Or the account's password.
    pub password: Option<String>,
}

/// Turn two-factor authentication off, given a current code, a recovery code or the
/// password. Refused while the role requires a second factor.
#[utoipa::path(post, path = "/account/2fa/disable", tag = "account",
    security(("session" = [])),
    request_body = DisableRequest,
    responses((status = 200, description = "Off"),
              (status = 401, description = "Wrong code or password", body = ErrorBody),
              (status = 409, description = "Off already, or required by the role", body = ErrorBody),
              (status = 422, description = "Neither a code nor a password", body = ErrorBody)))]
async fn disable(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<DisableRequest>,
) -> ApiResult<Response> {
    app.authority
        .totp_disable(&principal, body.code.as_deref(), body.password.as_deref())
        .await?;
    Ok(crate::envelope::done("Two-factor authentication disabled"))
}

/// How many recovery codes are left. The codes themselves are stored only as digests and are
/// shown once, when made.
#[utoipa::path(get, path = "/account/2fa/recovery-codes", tag = "account",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Recovery code counts", body = Envelope<StatusView>)))]
async fn recovery_codes(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(StatusView::from(
        app.authority.second_factor_status(&principal).await?,
    )))
}

/// Replace the recovery codes with ten new ones, shown this once; the old ones stop working.
#[utoipa::path(post, path = "/account/2fa/recovery-codes/regenerate", tag = "account",
    security(("session" = [])),
    responses((status = 200, description = "The new recovery codes", body = Envelope<RecoveryCodesView>),
              (status = 409, description = "Two-factor authentication is off", body = ErrorBody)))]
async fn regenerate_recovery_codes(
    State(app): State<App>,
    Caller(principal): Caller,
) -> ApiResult<Response> {
    let recovery_codes = app.authority.regenerate_recovery_codes(&principal).await?;
    Ok(ok_with(
        RecoveryCodesView { recovery_codes },
        "Recovery codes regenerated",
    ))
}
