//! Passkeys (WebAuthn): `/account/webauthn` (also at `/webauthn`, the reference's alias) for
//! one's own passkeys, and `/auth/login/webauthn/start|verify` to log in with one. Changes need
//! a login session: an API key cannot add the passkeys that open sessions.
//!
//! The relying party comes from the settings (`external_url`, else `public_url`, and
//! `webauthn_rp_id`), never from the request's `Host` header.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, created, ok, ok_with};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller, Id};
use crate::listen::Conn;

/// The routes: one's passkeys at `/account/webauthn` and `/webauthn`, and the login.
pub fn routes() -> OpenApiRouter<App> {
    super::aliased(&["", "/account"], endpoints)
        .routes(routes!(passkey_login_start))
        .routes(routes!(passkey_login_verify))
}

fn endpoints() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(passkeys_available))
        .routes(routes!(list_passkeys))
        .routes(routes!(passkey_register_options))
        .routes(routes!(passkey_register_verify))
        .routes(routes!(toggle_passkey))
        .routes(routes!(delete_passkey))
}

/// The relying party in force.
///
/// # Errors
/// [`authority::Error::Conflict`] naming why passkeys cannot be used with these settings.
pub(crate) fn relying_party(app: &App) -> Result<authority::RelyingParty, authority::Error> {
    let origin = match &app.external_url {
        Some(url) => url.clone(),
        None => app
            .settings
            .public_url()
            .map_err(|e| authority::Error::Conflict(e.to_string()))?,
    };
    authority::RelyingParty::new(&app.settings.webauthn_rp_id, &origin)
}

/// A registered passkey. Its public key stays on the server.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyView {
    pub id: i64,
    pub name: String,
    /// The authenticator's credential id, base64url.
    pub credential_id: String,
    pub enabled: bool,
    /// The authenticator's signature counter at its last use (0 for most synchronised
    /// passkeys, which keep none).
    pub sign_count: i64,
    /// Whether the passkey may be synchronised to the owner's other devices.
    pub backup_eligible: bool,
    /// Whether it is.
    pub backup_state: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<authority::PasskeyRow> for PasskeyView {
    fn from(p: authority::PasskeyRow) -> Self {
        Self {
            id: p.id,
            name: p.name,
            credential_id: p.credential_id,
            enabled: p.enabled,
            sign_count: p.sign_count,
            backup_eligible: p.backup_eligible,
            backup_state: p.backup_state,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// Whether passkeys can be used on this server, and for which relying party.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailableView {
    pub available: bool,
    /// The relying party id passkeys are bound to.
    pub rp_id: Option<String>,
    /// The origin browsers must use.
    pub origin: Option<String>,
    /// Why passkeys are not available.
    pub reason: Option<String>,
}

/// Options for `navigator.credentials.create()` or `.get()`: `{"publicKey": {…}}`, binary
/// fields in base64url.
#[derive(Debug, Serialize, ToSchema)]
pub struct CeremonyOptions {
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    pub public_key: Value,
}

impl CeremonyOptions {
    fn new(mut options: Value) -> Self {
        Self {
            public_key: options["publicKey"].take(),
        }
    }
}

/// Whether passkeys are available: they need the origin browsers use (`external_url`, else
/// `public_url`) to have a domain name, and `webauthn_rp_id` to be its host or a parent
/// domain of it.
#[utoipa::path(get, path = "/webauthn/available", tag = "account",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Availability", body = Envelope<AvailableView>)))]
async fn passkeys_available(State(app): State<App>) -> ApiResult<Response> {
    Ok(ok(match relying_party(&app) {
        Ok(rp) => AvailableView {
            available: true,
            rp_id: Some(rp.id().to_owned()),
            origin: Some(rp.origin()),
            reason: None,
        },
        Err(e) => AvailableView {
            available: false,
            rp_id: None,
            origin: None,
            reason: Some(e.to_string()),
        },
    }))
}

/// One's passkeys, oldest first.
#[utoipa::path(get, path = "/webauthn/credentials", tag = "account",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Passkeys", body = Envelope<Vec<PasskeyView>>)))]
async fn list_passkeys(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let passkeys = app.authority.passkeys(&principal).await?;
    Ok(ok(passkeys
        .into_iter()
        .map(PasskeyView::from)
        .collect::<Vec<_>>()))
}

/// Start registering a passkey: options for `navigator.credentials.create()`. Send the
/// browser's answer to `POST …/webauthn/register/verify` within five minutes.
#[utoipa::path(post, path = "/webauthn/register/options", tag = "account",
    security(("session" = [])),
    responses((status = 200, description = "Creation options", body = Envelope<CeremonyOptions>),
              (status = 403, description = "Not a login session", body = ErrorBody),
              (status = 409, description = "Passkeys are not available with these settings", body = ErrorBody)))]
async fn passkey_register_options(
    State(app): State<App>,
    Caller(principal): Caller,
) -> ApiResult<Response> {
    let rp = relying_party(&app)?;
    let options = app
        .authority
        .passkey_register_start(&principal, &rp)
        .await?;
    Ok(ok(CeremonyOptions::new(options)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// A name for the passkey (at most 64 characters); `Passkey` when empty.
    #[serde(default)]
    pub name: String,
    /// The `PublicKeyCredential` `navigator.credentials.create()` gave, binary fields in
    /// base64url (`credential` is accepted too).
    #[serde(alias = "credential")]
    #[schema(value_type = Object)]
    pub response: Value,
}

/// Finish registering a passkey with the browser's answer. The answer must be made for this
/// server's origin and relying party id, for a registration begun in the last five minutes
/// and not finished yet.
#[utoipa::path(post, path = "/webauthn/register/verify", tag = "account",
    security(("session" = [])),
    request_body = RegisterRequest,
    responses((status = 201, description = "Registered", body = Envelope<PasskeyView>),
              (status = 400, description = "Unreadable answer, another origin or RP id, an unknown, used or expired registration, or an answer that does not verify", body = ErrorBody),
              (status = 403, description = "Not a login session", body = ErrorBody),
              (status = 409, description = "Passkey registered already, or passkeys not available", body = ErrorBody),
              (status = 422, description = "Bad name", body = ErrorBody)))]
async fn passkey_register_verify(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> ApiResult<Response> {
    let rp = relying_party(&app)?;
    let passkey = app
        .authority
        .passkey_register_finish(&principal, &rp, &body.name, &body.response)
        .await?;
    Ok(created(PasskeyView::from(passkey), "Passkey registered"))
}

/// `POST …/toggle`: the state wanted, or the other one when absent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToggleBody {
    pub enabled: Option<bool>,
}

/// Turn one of one's passkeys on or off (`{"enabled": …}`, or the other state without a
/// body). A disabled passkey does not sign in.
#[utoipa::path(post, path = "/webauthn/credentials/{credential_id}/toggle", tag = "account",
    security(("session" = [])),
    params(("credential_id" = i64, Path, description = "Passkey id")),
    request_body(content = Option<ToggleBody>),
    responses((status = 200, description = "Switched", body = Envelope<PasskeyView>),
              (status = 403, description = "Not a login session", body = ErrorBody),
              (status = 404, description = "No such passkey of yours", body = ErrorBody)))]
async fn toggle_passkey(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let enabled = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<ToggleBody>(&body)
            .map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))?
            .enabled
    };
    let passkey = app
        .authority
        .passkey_toggle(&principal, id, enabled)
        .await?;
    let message = if passkey.enabled {
        "Passkey enabled"
    } else {
        "Passkey disabled"
    };
    Ok(ok_with(PasskeyView::from(passkey), message))
}

/// Remove one of one's passkeys.
#[utoipa::path(delete, path = "/webauthn/credentials/{credential_id}", tag = "account",
    security(("session" = [])),
    params(("credential_id" = i64, Path, description = "Passkey id")),
    responses((status = 204, description = "Removed"),
              (status = 403, description = "Not a login session", body = ErrorBody),
              (status = 404, description = "No such passkey of yours", body = ErrorBody)))]
async fn delete_passkey(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.passkey_delete(&principal, id).await?;
    Ok(crate::envelope::no_content())
}

/// Start logging in with a passkey: options for `navigator.credentials.get()`, naming no
/// account (the authenticator offers its passkeys for this server) and requiring user
/// verification. A body (the reference's `{"username"}`) is not needed and not read: the
/// answer is the same whoever asks. Send the browser's answer to
/// `POST /api/v2/auth/login/webauthn/verify` within five minutes. Rate-limited per client
/// address.
#[utoipa::path(post, path = "/auth/login/webauthn/start", tag = "auth", security(()),
    responses((status = 200, description = "Request options", body = Envelope<CeremonyOptions>),
              (status = 409, description = "Passkeys are not available with these settings", body = ErrorBody),
              (status = 429, description = "Too many attempts from this address", body = ErrorBody)))]
async fn passkey_login_start(State(app): State<App>) -> ApiResult<Response> {
    let rp = relying_party(&app)?;
    Ok(ok(CeremonyOptions::new(
        app.authority.passkey_login_start(&rp).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginVerifyRequest {
    /// When given, the passkey must be this account's (it names its account itself).
    pub username: Option<String>,
    /// The `PublicKeyCredential` `navigator.credentials.get()` gave, binary fields in
    /// base64url (`credential` is accepted too).
    #[serde(alias = "credential")]
    #[schema(value_type = Object)]
    pub response: Value,
}

/// Finish logging in with a passkey: sets the session cookie and answers as a password login
/// does, with `auth_method` `webauthn`. A passkey with user verification is two factors, so no
/// code follows. Refused (and audited) for an answer made for another origin or RP id, one
/// that does not verify, a login begun over five minutes ago or finished already, an unknown
/// or disabled passkey, or a disabled account. Rate-limited per client address.
#[utoipa::path(post, path = "/auth/login/webauthn/verify", tag = "auth", security(()),
    request_body = LoginVerifyRequest,
    responses(
        (status = 200, description = "Logged in", body = Envelope<super::auth::LoginAnswer>),
        (status = 400, description = "Unreadable answer, or made for another origin or RP id", body = ErrorBody),
        (status = 401, description = "Refused: see the message", body = ErrorBody),
        (status = 409, description = "Passkeys are not available with these settings", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody)))]
async fn passkey_login_verify(
    State(app): State<App>,
    Extension(origin): Extension<authority::Origin>,
    conn: Option<Extension<Conn>>,
    ApiJson(body): ApiJson<LoginVerifyRequest>,
) -> ApiResult<Response> {
    let rp = relying_party(&app)?;
    let step = app
        .authority
        .passkey_login_finish(&rp, &body.response, body.username.as_deref(), &origin)
        .await?;
    Ok(super::auth::login_response(
        &app,
        step,
        super::auth::tls(conn.as_ref()),
    ))
}
