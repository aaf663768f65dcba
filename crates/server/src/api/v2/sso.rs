//! `/sso`: single sign-on providers (OIDC and LDAP), the login page's list of them, and the
//! OIDC redirect and callback. The redirect and the callback are browser doors: they answer
//! with the console's pages (the login page with the reason, the second-factor form, or a
//! page that takes the browser on), not JSON.

use std::collections::BTreeMap;

use axum::Extension;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zeroize::Zeroizing;

use crate::App;
use crate::access;
use crate::console;
use crate::envelope::{Envelope, created, no_content, ok, ok_with};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id};
use crate::listen::Conn;
use authority::sso::{
    AvailableProvider, Provider, ProviderInput, ProviderSettings, ProviderType, RoleMapping,
};

/// The cookie that binds an OIDC login to the browser that began it.
const STATE_COOKIE: &str = "certmint_sso";
/// The callbacks' path prefix, the state cookie's path.
const CALLBACK_PREFIX: &str = "/api/v2/sso/callback/";

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_providers, create_provider))
        .routes(routes!(get_provider, update_provider, delete_provider))
        .routes(routes!(toggle_provider))
        .routes(routes!(test_provider))
        .routes(routes!(sessions))
        .routes(routes!(available))
        .routes(routes!(login))
        .routes(routes!(callback_get, callback_post))
}

/// A mapping rule: members of `group` get `role`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleMappingBody {
    /// An LDAP group's DN or name, or a value of the OIDC groups claim (compared without case).
    pub group: String,
    /// admin, operator, auditor or viewer.
    pub role: String,
}

/// A provider. Besides the fields below, the type's own settings sit at the top level:
/// OIDC `issuer_url`, `client_id`, `scopes`, `username_claim`, `groups_claim`; LDAP `server`,
/// `port`, `use_tls`, `starttls`, `allow_plain`, `base_dn`, `bind_dn`, `user_filter`,
/// `username_attribute`, `email_attribute`, `name_attribute`, `group_base_dn`,
/// `group_filter`, `timeout_seconds`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    pub id: i64,
    pub name: String,
    /// `oidc` or `ldap`.
    pub provider_type: String,
    pub display_name: String,
    pub icon: Option<String>,
    pub enabled: bool,
    /// The role of users no mapping rule matches.
    pub default_role: String,
    pub auto_create_users: bool,
    pub auto_update_users: bool,
    /// Whether a first login may take over the unlinked local user of the same name.
    pub link_existing_users: bool,
    pub role_mappings: Vec<RoleMappingBody>,
    /// Whether the client secret (OIDC) or bind password (LDAP) is set.
    pub has_secret: bool,
    /// How many local users the provider has signed in.
    pub linked_users: i64,
    /// The callback URL to register at an OIDC provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// The secret, only with `include_secrets=true` (needs `admin:system`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_password: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

fn redirect_uri(app: &App, id: i64) -> String {
    format!("{}{CALLBACK_PREFIX}{id}", app.public_base())
}

pub(crate) fn view(
    app: &App,
    p: Provider,
    secret: Option<Zeroizing<String>>,
) -> ApiResult<ProviderView> {
    let settings = match p.settings.to_json()? {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let kind = p.kind();
    let secret = secret.map(|s| s.to_string());
    Ok(ProviderView {
        id: p.id,
        provider_type: kind.as_str().into(),
        redirect_uri: (kind == ProviderType::Oidc).then(|| redirect_uri(app, p.id)),
        name: p.name,
        display_name: p.display_name,
        icon: p.icon,
        enabled: p.enabled,
        default_role: p.default_role,
        auto_create_users: p.auto_create_users,
        auto_update_users: p.auto_update_users,
        link_existing_users: p.link_existing,
        role_mappings: p
            .role_mappings
            .into_iter()
            .map(|r| RoleMappingBody {
                group: r.group,
                role: r.role,
            })
            .collect(),
        has_secret: p.has_secret,
        linked_users: p.linked_users,
        client_secret: secret.clone().filter(|_| kind == ProviderType::Oidc),
        bind_password: secret.filter(|_| kind == ProviderType::Ldap),
        created_at: p.created_at,
        updated_at: p.updated_at,
        settings,
    })
}

fn viewer() -> String {
    "viewer".into()
}
fn yes() -> bool {
    true
}

/// A provider to create or replace. Besides these fields, the type's own settings (see
/// `ProviderView`) sit at the top level; an unknown field is refused.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ProviderBody {
    pub name: String,
    /// `oidc` (or the reference's `oauth2`) or `ldap`.
    pub provider_type: String,
    pub display_name: Option<String>,
    pub icon: Option<String>,
    #[serde(default)]
    pub enabled: bool,
    /// The role of users no mapping rule matches (default viewer).
    #[serde(default = "viewer")]
    pub default_role: String,
    /// Create users at their first login (default true).
    #[serde(default = "yes")]
    pub auto_create_users: bool,
    /// Update e-mail, name and mapped role at each login.
    #[serde(default)]
    pub auto_update_users: bool,
    /// Let a first login take over the unlinked local user of the same name (for moving
    /// existing accounts to the provider); off, such a login is refused.
    #[serde(default)]
    pub link_existing_users: bool,
    #[serde(default)]
    pub role_mappings: Vec<RoleMappingBody>,
    /// OIDC: the client secret. Absent keeps the stored one; empty removes it.
    pub client_secret: Option<String>,
    /// LDAP: the service account's password. Absent keeps the stored one; empty removes it.
    pub bind_password: Option<String>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

impl ProviderBody {
    fn into_input(self) -> ApiResult<ProviderInput> {
        let kind = ProviderType::parse(&self.provider_type)?;
        let secret = match (kind, self.client_secret, self.bind_password) {
            (ProviderType::Oidc, secret, None) | (ProviderType::Ldap, None, secret) => secret,
            (ProviderType::Oidc, _, Some(_)) => {
                return Err(ApiError::bad_request(
                    "bind_password is an LDAP provider's; an OIDC provider has a client_secret",
                ));
            }
            (ProviderType::Ldap, Some(_), _) => {
                return Err(ApiError::bad_request(
                    "client_secret is an OIDC provider's; an LDAP provider has a bind_password",
                ));
            }
        };
        let settings = ProviderSettings::from_json(
            kind,
            serde_json::Value::Object(self.settings.into_iter().collect()),
        )?;
        Ok(ProviderInput {
            name: self.name,
            display_name: self.display_name,
            icon: self.icon,
            enabled: self.enabled,
            default_role: self.default_role,
            auto_create_users: self.auto_create_users,
            auto_update_users: self.auto_update_users,
            link_existing: self.link_existing_users,
            role_mappings: self
                .role_mappings
                .into_iter()
                .map(|r| RoleMapping {
                    group: r.group,
                    role: r.role,
                })
                .collect(),
            secret: secret.map(Zeroizing::new),
            settings,
        })
    }
}

/// The providers, by name; never their secrets.
#[utoipa::path(get, path = "/sso/providers", tag = "sso",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    responses((status = 200, description = "Providers", body = Envelope<Vec<ProviderView>>)))]
async fn list_providers(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let views = app
        .authority
        .sso_providers(&principal)
        .await?
        .into_iter()
        .map(|p| view(&app, p, None))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(ok(views))
}

/// Create a provider. A provider that maps a group to a role hands out that role, so this
/// needs `admin:system`.
#[utoipa::path(post, path = "/sso/providers", tag = "sso",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = ProviderBody,
    responses((status = 201, description = "Created", body = Envelope<ProviderView>),
              (status = 400, description = "A field of the other type", body = ErrorBody),
              (status = 409, description = "Name taken", body = ErrorBody),
              (status = 422, description = "A field breaks a rule", body = ErrorBody)))]
async fn create_provider(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<ProviderBody>,
) -> ApiResult<Response> {
    let provider = app
        .authority
        .create_sso_provider(&principal, body.into_input()?)
        .await?;
    Ok(created(view(&app, provider, None)?, "SSO provider created"))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct SecretsQuery {
    /// Include the secret in clear (needs `admin:system`; audited).
    pub include_secrets: bool,
}

/// One provider; with `include_secrets=true`, its secret too.
#[utoipa::path(get, path = "/sso/providers/{provider_id}", tag = "sso",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    params(("provider_id" = i64, Path), SecretsQuery),
    responses((status = 200, description = "Provider", body = Envelope<ProviderView>),
              (status = 403, description = "Secrets without admin:system", body = ErrorBody),
              (status = 404, description = "No such provider", body = ErrorBody)))]
async fn get_provider(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiQuery(q): ApiQuery<SecretsQuery>,
) -> ApiResult<Response> {
    let provider = app.authority.sso_provider(&principal, id).await?;
    let secret = if q.include_secrets {
        app.authority.sso_provider_secret(&principal, id).await?
    } else {
        None
    };
    Ok(ok(view(&app, provider, secret)?))
}

/// Replace a provider's fields (its type cannot change); an absent secret is kept.
#[utoipa::path(put, path = "/sso/providers/{provider_id}", tag = "sso",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("provider_id" = i64, Path)),
    request_body = ProviderBody,
    responses((status = 200, description = "Updated", body = Envelope<ProviderView>),
              (status = 404, description = "No such provider", body = ErrorBody),
              (status = 409, description = "Name taken", body = ErrorBody),
              (status = 422, description = "A field breaks a rule", body = ErrorBody)))]
async fn update_provider(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<ProviderBody>,
) -> ApiResult<Response> {
    let provider = app
        .authority
        .update_sso_provider(&principal, id, body.into_input()?)
        .await?;
    Ok(ok_with(view(&app, provider, None)?, "SSO provider updated"))
}

/// Delete a provider; the users it made stay, no longer linked.
#[utoipa::path(delete, path = "/sso/providers/{provider_id}", tag = "sso",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("provider_id" = i64, Path)),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such provider", body = ErrorBody)))]
async fn delete_provider(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.delete_sso_provider(&principal, id).await?;
    Ok(no_content())
}

/// Turn a provider on or off.
#[utoipa::path(post, path = "/sso/providers/{provider_id}/toggle", tag = "sso",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("provider_id" = i64, Path)),
    responses((status = 200, description = "Toggled", body = Envelope<ProviderView>),
              (status = 404, description = "No such provider", body = ErrorBody),
              (status = 422, description = "No secret to enable it with", body = ErrorBody)))]
async fn toggle_provider(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let provider = app.authority.toggle_sso_provider(&principal, id).await?;
    Ok(ok(view(&app, provider, None)?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderTestView {
    pub success: bool,
    /// What was tried and what came of it.
    pub message: String,
}

/// Check that certmint can talk to the provider: OIDC discovery and keys; the LDAP server's
/// TLS, the service account's bind and the base DN. A provider that fails answers 200 with
/// `success: false`.
#[utoipa::path(post, path = "/sso/providers/{provider_id}/test", tag = "sso",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("provider_id" = i64, Path)),
    responses((status = 200, description = "Tested", body = Envelope<ProviderTestView>),
              (status = 404, description = "No such provider", body = ErrorBody)))]
async fn test_provider(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let test = app.authority.test_sso_provider(&principal, id).await?;
    Ok(ok(ProviderTestView {
        success: test.success,
        message: test.message,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SsoSessionView {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// The live sessions opened through single sign-on, newest first (at most 500).
#[utoipa::path(get, path = "/sso/sessions", tag = "sso",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    responses((status = 200, description = "Sessions", body = Envelope<Vec<SsoSessionView>>)))]
async fn sessions(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let views: Vec<SsoSessionView> = app
        .authority
        .sso_sessions(&principal)
        .await?
        .into_iter()
        .map(|(s, username)| SsoSessionView {
            id: s.id,
            user_id: s.user_id,
            username,
            ip_address: s.ip_address,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
        })
        .collect();
    Ok(ok(views))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AvailableView {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub icon: Option<String>,
    /// `oidc`: send the browser to `login_url`; `ldap`: post a username and password to
    /// `/api/v2/sso/ldap/login`.
    pub provider_type: String,
    /// Where an OIDC login begins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_url: Option<String>,
}

impl From<AvailableProvider> for AvailableView {
    fn from(p: AvailableProvider) -> Self {
        Self {
            login_url: (p.kind == ProviderType::Oidc)
                .then(|| format!("/api/v2/sso/login/{}", p.id)),
            id: p.id,
            name: p.name,
            display_name: p.display_name,
            icon: p.icon,
            provider_type: p.kind.as_str().into(),
        }
    }
}

/// The enabled providers, for the login page. No authentication required.
#[utoipa::path(get, path = "/sso/available", tag = "sso", security(()),
    responses((status = 200, description = "Enabled providers", body = Envelope<Vec<AvailableView>>)))]
async fn available(State(app): State<App>) -> ApiResult<Response> {
    let views: Vec<AvailableView> = app
        .authority
        .sso_available()
        .await?
        .into_iter()
        .map(AvailableView::from)
        .collect();
    Ok(ok(views))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    /// A path of certmint's to go to once logged in (the console's home when absent).
    pub next: String,
}

/// Begin an OIDC login: the browser is sent to the provider (303), with a state bound to it
/// by a cookie, a nonce and a PKCE challenge. No authentication required; rate-limited per
/// client address. Failures show the console's login page with the reason.
#[utoipa::path(get, path = "/sso/login/{provider_id}", tag = "sso", security(()),
    params(("provider_id" = i64, Path), LoginQuery),
    responses((status = 303, description = "To the provider"),
              (status = 404, description = "No enabled OIDC provider of this id"),
              (status = 502, description = "The provider cannot be reached")))]
async fn login(
    State(app): State<App>,
    Extension(origin): Extension<authority::Origin>,
    conn: Option<Extension<Conn>>,
    Id(id): Id,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = console::page::local_path(&q.next);
    let next = if next == "/" { "/console/" } else { next };
    let begun = app
        .authority
        .oidc_begin(id, &redirect_uri(&app, id), Some(next), &origin)
        .await;
    match begun {
        Ok(redirect) => {
            let mut response = Redirect::to(&redirect.url).into_response();
            let secure = if super::auth::tls(conn.as_ref()) {
                "; Secure"
            } else {
                ""
            };
            if let Ok(cookie) = HeaderValue::from_str(&format!(
                "{STATE_COOKIE}={}; Path={CALLBACK_PREFIX}; HttpOnly; SameSite=Lax; \
                 Max-Age=600{secure}",
                redirect.state
            )) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => console::login::refused(&app, next, e.into()).await,
    }
}

/// What the provider sends back, in the query (GET) or a form (POST, `form_post`).
#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The issuer (RFC 9207).
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The provider's redirect back after an OIDC login: the state must match the browser's
/// cookie and a login in flight, the code is exchanged (with the PKCE verifier) and the ID
/// token checked. Then the console: signed in, on to a second factor, or the login page with
/// the reason. No authentication required.
#[utoipa::path(get, path = "/sso/callback/{provider_id}", tag = "sso", security(()),
    params(("provider_id" = i64, Path), CallbackParams),
    responses((status = 200, description = "A console page: on to the console, a second factor, or the reason")))]
async fn callback_get(
    State(app): State<App>,
    Extension(origin): Extension<authority::Origin>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    Id(id): Id,
    Query(params): Query<CallbackParams>,
) -> Response {
    callback(&app, &origin, conn.as_ref(), &headers, id, params).await
}

/// The same as the GET callback, for providers answering with `response_mode=form_post`.
#[utoipa::path(post, path = "/sso/callback/{provider_id}", tag = "sso", security(()),
    params(("provider_id" = i64, Path)),
    request_body(content = CallbackParams, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "A console page: on to the console, a second factor, or the reason")))]
async fn callback_post(
    State(app): State<App>,
    Extension(origin): Extension<authority::Origin>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    Id(id): Id,
    Form(params): Form<CallbackParams>,
) -> Response {
    callback(&app, &origin, conn.as_ref(), &headers, id, params).await
}

async fn callback(
    app: &App,
    origin: &authority::Origin,
    conn: Option<&Extension<Conn>>,
    headers: &HeaderMap,
    id: i64,
    params: CallbackParams,
) -> Response {
    let finished = app
        .authority
        .oidc_finish(
            id,
            &redirect_uri(app, id),
            authority::sso::oidc::OidcCallback {
                code: params.code,
                state: params.state,
                iss: params.iss,
                error: params.error,
                error_description: params.error_description,
            },
            access::cookie(headers, STATE_COOKIE),
            origin,
        )
        .await;
    let (step, next) = match finished {
        Ok((step, next)) => (Ok(step), next),
        Err(e) => (Err(e), None),
    };
    let next = next
        .as_deref()
        .map(console::page::local_path)
        .unwrap_or("/console/");
    let mut response =
        console::login::single_sign_on_done(app, step, next, origin, super::auth::tls(conn)).await;
    // The state is used up whatever the outcome.
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{STATE_COOKIE}=; Path={CALLBACK_PREFIX}; HttpOnly; SameSite=Lax; Max-Age=0"
    )) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
