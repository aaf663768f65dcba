//! LDAP sign-in: `POST /sso/ldap/login` (a directory's username and password, answered as the
//! password login is), and `/settings/ldap`, the reference's view of one LDAP provider (the
//! provider named `ldap` among `/sso/providers`, made by the first change).

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zeroize::Zeroizing;

use super::sso::{ProviderTestView, RoleMappingBody};
use crate::App;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};
use crate::listen::Conn;
use authority::sso::ldap::{LdapConfig, LdapSettingsPatch};
use authority::sso::{Provider, ProviderSettings, RoleMapping};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(ldap_login))
        .routes(routes!(ldap_settings, update_ldap_settings))
        .routes(routes!(test_ldap_settings))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapLoginRequest {
    pub username: String,
    pub password: String,
    /// The LDAP provider to ask; the only enabled one (or the one `/settings/ldap` manages)
    /// when absent.
    pub provider_id: Option<i64>,
}

/// Log in with a directory's username and password: certmint's service account finds the
/// user's one entry, the password is checked by binding as it, and the local user linked to
/// it (made at the first login when the provider says so) is signed in with the role the
/// provider's group mappings give. Answers as `POST /auth/login/password` does, a pending
/// login when a second factor is due. Every refusal is audited with its reason.
/// Rate-limited per client address.
#[utoipa::path(post, path = "/sso/ldap/login", tag = "sso", security(()),
    request_body = LdapLoginRequest,
    responses(
        (status = 200, description = "Logged in, or waiting for a second factor", body = Envelope<super::auth::LoginAnswer>),
        (status = 401, description = "Wrong credentials, an empty password, a username certmint does not accept, an ambiguous entry, or a disabled user", body = ErrorBody),
        (status = 404, description = "No enabled LDAP provider of this id", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
        (status = 502, description = "The directory cannot be reached or refuses the service account", body = ErrorBody)))]
async fn ldap_login(
    State(app): State<App>,
    Extension(origin): Extension<authority::Origin>,
    conn: Option<Extension<Conn>>,
    ApiJson(body): ApiJson<LdapLoginRequest>,
) -> ApiResult<Response> {
    let password = Zeroizing::new(body.password);
    let step = app
        .authority
        .ldap_login(body.provider_id, &body.username, &password, &origin)
        .await?;
    Ok(super::auth::login_response(
        &app,
        step,
        super::auth::tls(conn.as_ref()),
    ))
}

/// The LDAP settings. The bind password is never returned, only whether one is set.
#[derive(Debug, Serialize, ToSchema)]
pub struct LdapSettingsView {
    /// The provider these settings are (`/sso/providers/{id}`); absent before the first change.
    pub provider_id: Option<i64>,
    pub enabled: bool,
    pub server: String,
    pub port: u16,
    /// TLS: LDAPS, or StartTLS when `starttls` is set.
    pub use_tls: bool,
    pub starttls: bool,
    /// Whether LDAP without TLS (passwords in clear) is allowed.
    pub allow_plain: bool,
    pub base_dn: String,
    pub bind_dn: String,
    pub has_bind_password: bool,
    /// `{username}` is replaced by the escaped login name.
    pub user_filter: String,
    pub username_attribute: String,
    pub email_attribute: String,
    pub name_attribute: String,
    pub group_base_dn: Option<String>,
    /// `{dn}` is replaced by the user's escaped DN.
    pub group_filter: String,
    pub timeout_seconds: u32,
    pub default_role: String,
    pub auto_create_users: bool,
    pub auto_update_users: bool,
    pub link_existing_users: bool,
    pub role_mappings: Vec<RoleMappingBody>,
}

impl LdapSettingsView {
    fn new(provider: Option<Provider>) -> Self {
        let config = match provider.as_ref().map(|p| &p.settings) {
            Some(ProviderSettings::Ldap(config)) => config.clone(),
            _ => LdapConfig::default(),
        };
        let provider = provider.as_ref();
        Self {
            provider_id: provider.map(|p| p.id),
            enabled: provider.is_some_and(|p| p.enabled),
            server: config.server,
            port: config.port,
            use_tls: config.use_tls,
            starttls: config.starttls,
            allow_plain: config.allow_plain,
            base_dn: config.base_dn,
            bind_dn: config.bind_dn,
            has_bind_password: provider.is_some_and(|p| p.has_secret),
            user_filter: config.user_filter,
            username_attribute: config.username_attribute,
            email_attribute: config.email_attribute,
            name_attribute: config.name_attribute,
            group_base_dn: config.group_base_dn,
            group_filter: config.group_filter,
            timeout_seconds: config.timeout_seconds,
            default_role: provider.map_or_else(|| "viewer".into(), |p| p.default_role.clone()),
            auto_create_users: provider.is_none_or(|p| p.auto_create_users),
            auto_update_users: provider.is_some_and(|p| p.auto_update_users),
            link_existing_users: provider.is_some_and(|p| p.link_existing),
            role_mappings: provider
                .map(|p| {
                    p.role_mappings
                        .iter()
                        .map(|r| RoleMappingBody {
                            group: r.group.clone(),
                            role: r.role.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A change to the LDAP settings; absent fields stay as they are. The first change makes the
/// provider and needs `server`, `base_dn` and `bind_dn` (and `bind_password` to enable it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapSettingsPatchBody {
    pub enabled: Option<bool>,
    pub server: Option<String>,
    pub port: Option<u16>,
    pub use_tls: Option<bool>,
    pub starttls: Option<bool>,
    /// LDAP without TLS sends passwords in clear: refused unless this is set.
    pub allow_plain: Option<bool>,
    pub base_dn: Option<String>,
    pub bind_dn: Option<String>,
    /// Write-only: sealed at rest, never returned. Empty removes it.
    pub bind_password: Option<String>,
    pub user_filter: Option<String>,
    pub username_attribute: Option<String>,
    pub email_attribute: Option<String>,
    pub name_attribute: Option<String>,
    /// Empty: search groups under `base_dn`.
    pub group_base_dn: Option<String>,
    pub group_filter: Option<String>,
    /// 1 to 60.
    pub timeout_seconds: Option<u32>,
    pub default_role: Option<String>,
    pub auto_create_users: Option<bool>,
    pub auto_update_users: Option<bool>,
    pub link_existing_users: Option<bool>,
    pub role_mappings: Option<Vec<RoleMappingBody>>,
}

impl LdapSettingsPatchBody {
    fn into_patch(self) -> LdapSettingsPatch {
        use serde_json::Value;
        let mut settings = serde_json::Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                settings.insert(name.to_owned(), value);
            }
        };
        put("server", self.server.map(Value::from));
        put("port", self.port.map(Value::from));
        put("use_tls", self.use_tls.map(Value::from));
        put("starttls", self.starttls.map(Value::from));
        put("allow_plain", self.allow_plain.map(Value::from));
        put("base_dn", self.base_dn.map(Value::from));
        put("bind_dn", self.bind_dn.map(Value::from));
        put("user_filter", self.user_filter.map(Value::from));
        put(
            "username_attribute",
            self.username_attribute.map(Value::from),
        );
        put("email_attribute", self.email_attribute.map(Value::from));
        put("name_attribute", self.name_attribute.map(Value::from));
        put(
            "group_base_dn",
            self.group_base_dn.map(|dn| {
                if dn.is_empty() {
                    Value::Null
                } else {
                    dn.into()
                }
            }),
        );
        put("group_filter", self.group_filter.map(Value::from));
        put("timeout_seconds", self.timeout_seconds.map(Value::from));
        LdapSettingsPatch {
            enabled: self.enabled,
            default_role: self.default_role,
            auto_create_users: self.auto_create_users,
            auto_update_users: self.auto_update_users,
            link_existing: self.link_existing_users,
            role_mappings: self.role_mappings.map(|rules| {
                rules
                    .into_iter()
                    .map(|r| RoleMapping {
                        group: r.group,
                        role: r.role,
                    })
                    .collect()
            }),
            bind_password: self.bind_password.map(Zeroizing::new),
            settings,
        }
    }
}

/// The LDAP settings: the provider named `ldap` among `/sso/providers`.
#[utoipa::path(get, path = "/settings/ldap", tag = "settings",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    responses((status = 200, description = "LDAP settings", body = Envelope<LdapSettingsView>)))]
async fn ldap_settings(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(LdapSettingsView::new(
        app.authority.ldap_settings(&principal).await?,
    )))
}

/// Change the LDAP settings (making the provider at the first change). A provider that maps
/// a group to a role hands out that role, so this needs `admin:system`. Audited.
#[utoipa::path(patch, path = "/settings/ldap", tag = "settings",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = LdapSettingsPatchBody,
    responses((status = 200, description = "Updated", body = Envelope<LdapSettingsView>),
              (status = 422, description = "A bad or missing field, plain LDAP without allow_plain, or enabling without a bind password", body = ErrorBody)))]
async fn update_ldap_settings(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<LdapSettingsPatchBody>,
) -> ApiResult<Response> {
    let provider = app
        .authority
        .patch_ldap_settings(&principal, body.into_patch())
        .await?;
    Ok(ok_with(
        LdapSettingsView::new(Some(provider)),
        "LDAP settings updated",
    ))
}

/// Check the saved LDAP settings: connect (TLS checked), bind as the service account, read
/// the base DN. A directory that does not answer is a test that did not succeed. Audited.
#[utoipa::path(post, path = "/settings/ldap/test", tag = "settings",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Tested", body = Envelope<ProviderTestView>),
              (status = 404, description = "No LDAP settings yet", body = ErrorBody)))]
async fn test_ldap_settings(
    State(app): State<App>,
    Caller(principal): Caller,
) -> ApiResult<Response> {
    let test = app.authority.test_ldap_settings(&principal).await?;
    Ok(ok(ProviderTestView {
        success: test.success,
        message: test.message,
    }))
}
