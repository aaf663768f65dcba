//! `/settings/email`: the SMTP server certmint sends mail through, a test message, and
//! `/auth/email-configured` for the login page.

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
        .routes(routes!(settings, update_settings))
        .routes(routes!(send_test))
        .routes(routes!(configured))
}

/// The mail settings. The password is never returned, only whether one is set.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailView {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    /// `starttls`, `tls` or `none`.
    pub security: String,
    pub username: Option<String>,
    pub password_set: bool,
    pub from_address: Option<String>,
}

impl From<authority::email::EmailSettings> for EmailView {
    fn from(s: authority::email::EmailSettings) -> Self {
        Self {
            enabled: s.enabled,
            host: s.host,
            port: s.port,
            security: s.security.as_str().to_owned(),
            username: s.username,
            password_set: s.password_set,
            from_address: s.from_address,
        }
    }
}

/// A change to the mail settings; absent fields stay, an empty username or password removes
/// it. The `smtp_*` names and `smtp_tls` (true: `starttls`, false: `none`) are accepted too.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailPatch {
    pub enabled: Option<bool>,
    #[serde(alias = "smtp_host")]
    pub host: Option<String>,
    /// 1 to 65535.
    #[serde(alias = "smtp_port")]
    pub port: Option<i64>,
    /// `starttls` (the default), `tls` or `none` (no password then).
    pub security: Option<String>,
    pub smtp_tls: Option<bool>,
    #[serde(alias = "smtp_user")]
    pub username: Option<String>,
    /// Write-only: sealed at rest, never returned.
    #[serde(alias = "smtp_password")]
    pub password: Option<String>,
    pub from_address: Option<String>,
}

/// The mail settings.
#[utoipa::path(get, path = "/settings/email", tag = "settings",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Mail settings", body = Envelope<EmailView>)))]
async fn settings(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(EmailView::from(
        app.authority.email_settings(&principal).await?,
    )))
}

/// Change the mail settings.
#[utoipa::path(patch, path = "/settings/email", tag = "settings",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = EmailPatch,
    responses((status = 200, description = "Updated", body = Envelope<EmailView>),
              (status = 422, description = "A bad port, security, host or address", body = ErrorBody)))]
async fn update_settings(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(patch): ApiJson<EmailPatch>,
) -> ApiResult<Response> {
    let security = patch.security.or_else(|| {
        patch
            .smtp_tls
            .map(|tls| if tls { "starttls" } else { "none" }.to_owned())
    });
    let change = authority::email::EmailChange {
        enabled: patch.enabled,
        host: patch.host,
        port: patch.port,
        security,
        username: patch.username,
        password: patch.password,
        from_address: patch.from_address,
    };
    let settings = app
        .authority
        .update_email_settings(&principal, change)
        .await?;
    Ok(ok_with(EmailView::from(settings), "email settings updated"))
}

/// Where to send a test message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    pub to: String,
}

/// Who the test message went to.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestData {
    pub to: String,
}

/// Send a test message with the stored settings (whether or not mail is on).
#[utoipa::path(post, path = "/settings/email/test", tag = "settings",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = TestRequest,
    responses((status = 200, description = "The mail server took the message", body = Envelope<TestData>),
              (status = 422, description = "A bad address, no settings, or a refused mail server address", body = ErrorBody),
              (status = 502, description = "The mail server could not be reached or refused the message", body = ErrorBody)))]
async fn send_test(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<TestRequest>,
) -> ApiResult<Response> {
    app.authority.send_test_email(&principal, &body.to).await?;
    Ok(ok_with(TestData { to: body.to }, "test message sent"))
}

/// Whether mail is on.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfiguredData {
    pub configured: bool,
}

/// Whether mail is set up and on, for the login page; says nothing more.
#[utoipa::path(get, path = "/auth/email-configured", tag = "auth", security(()),
    responses((status = 200, description = "Whether mail is on", body = Envelope<ConfiguredData>)))]
async fn configured(State(app): State<App>) -> ApiResult<Response> {
    Ok(ok(ConfiguredData {
        configured: app.authority.email_configured().await?,
    }))
}
