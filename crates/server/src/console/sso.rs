//! `/sso`: the single sign-on providers (OpenID Connect and LDAP) with their linked users and
//! the live sessions they opened; a form to add one of either type, and per provider its
//! settings, a switch, a connection test and removal. Reading needs `read:users`; everything
//! that changes a provider goes through the authority's functions, which ask `admin:system`
//! as they do for the REST API (a provider that maps a group to `admin` hands out
//! administrators).
//!
//! A provider's secret (the OIDC client secret, the LDAP bind password) is never put on a
//! page: the form's secret field starts empty, and left empty on a change it keeps the stored
//! one.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::form::{Form, blank_is_none, lines, number};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::sso::{ProviderView, view};
use crate::error::{ApiError, ApiResult};
use authority::sso::{ProviderInput, ProviderSettings, ProviderType, RoleMapping};

/// The list.
const LIST: &str = "/sso";

/// How a type's setting is typed in and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Text; left empty, the setting's default (or, for a required one, a refusal).
    Text,
    /// A whole number; left empty, its default.
    Number,
    /// A box.
    Flag,
    /// Words separated by spaces or commas.
    Words,
}

/// A setting of a provider type, as its form shows it.
pub struct Setting {
    /// Its JSON name.
    key: &'static str,
    label: &'static str,
    /// What to type, shown after the label.
    hint: &'static str,
    kind: Kind,
    /// Whether the type has no default for it.
    required: bool,
}

const fn setting(
    key: &'static str,
    label: &'static str,
    hint: &'static str,
    kind: Kind,
    required: bool,
) -> Setting {
    Setting {
        key,
        label,
        hint,
        kind,
        required,
    }
}

/// The settings of an OIDC provider (`authority::sso::oidc::OidcConfig`).
const OIDC: &[Setting] = &[
    setting(
        "issuer_url",
        "Issuer URL",
        "https://; its /.well-known/openid-configuration describes the provider",
        Kind::Text,
        true,
    ),
    setting(
        "client_id",
        "Client id",
        "certmint's client at the provider",
        Kind::Text,
        true,
    ),
    setting(
        "scopes",
        "Scopes",
        "separated by spaces; openid is always asked for",
        Kind::Words,
        false,
    ),
    setting(
        "username_claim",
        "Username claim",
        "the ID token claim that is the login name here",
        Kind::Text,
        false,
    ),
    setting(
        "groups_claim",
        "Groups claim",
        "the ID token claim the role mappings look at",
        Kind::Text,
        false,
    ),
];

/// The settings of an LDAP provider (`authority::sso::ldap::LdapConfig`).
const LDAP: &[Setting] = &[
    setting(
        "server",
        "Server",
        "the directory's host name or address",
        Kind::Text,
        true,
    ),
    setting(
        "port",
        "Port",
        "636 for LDAPS, 389 for StartTLS",
        Kind::Number,
        false,
    ),
    setting("use_tls", "Use TLS", "", Kind::Flag, false),
    setting(
        "starttls",
        "Upgrade with StartTLS",
        "rather than LDAPS",
        Kind::Flag,
        false,
    ),
    setting(
        "allow_plain",
        "Allow plain LDAP without TLS",
        "passwords cross the network in clear",
        Kind::Flag,
        false,
    ),
    setting(
        "base_dn",
        "Base DN",
        "where users are searched",
        Kind::Text,
        true,
    ),
    setting(
        "bind_dn",
        "Bind DN",
        "the service account that searches",
        Kind::Text,
        true,
    ),
    setting(
        "user_filter",
        "User filter",
        "{username} is the escaped login name",
        Kind::Text,
        false,
    ),
    setting(
        "username_attribute",
        "Username attribute",
        "",
        Kind::Text,
        false,
    ),
    setting("email_attribute", "E-mail attribute", "", Kind::Text, false),
    setting("name_attribute", "Name attribute", "", Kind::Text, false),
    setting(
        "group_base_dn",
        "Group base DN",
        "the base DN when empty",
        Kind::Text,
        false,
    ),
    setting(
        "group_filter",
        "Group filter",
        "{dn} is the user's escaped DN",
        Kind::Text,
        false,
    ),
    setting(
        "timeout_seconds",
        "Timeout in seconds",
        "for each step with the server",
        Kind::Number,
        false,
    ),
];

/// The settings of `kind`, in the order shown.
fn settings_of(kind: ProviderType) -> &'static [Setting] {
    match kind {
        ProviderType::Oidc => OIDC,
        ProviderType::Ldap => LDAP,
    }
}

/// The type named `name` in a form or query; OIDC when none is named.
fn kind_named(name: &str) -> ApiResult<ProviderType> {
    match blank_is_none(name) {
        None => Ok(ProviderType::Oidc),
        Some(name) => Ok(ProviderType::parse(name)?),
    }
}

/// The defaults of `kind`'s settings, as its form starts: the type's own defaults, read by
/// giving it its required settings empty.
fn defaults(kind: ProviderType) -> Map<String, Value> {
    let required: Map<String, Value> = settings_of(kind)
        .iter()
        .filter(|s| s.required)
        .map(|s| (s.key.to_owned(), Value::String(String::new())))
        .collect();
    let filled = match kind {
        ProviderType::Oidc => {
            serde_json::from_value::<authority::sso::oidc::OidcConfig>(Value::Object(required))
                .ok()
                .and_then(|c| serde_json::to_value(c).ok())
        }
        ProviderType::Ldap => {
            serde_json::from_value::<authority::sso::ldap::LdapConfig>(Value::Object(required))
                .ok()
                .and_then(|c| serde_json::to_value(c).ok())
        }
    };
    match filled {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// A setting's value as its field shows it.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "1" } else { "" }.to_owned(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(" "),
        Some(other) => other.to_string(),
    }
}

/// What a provider's form holds (never its secret).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProviderForm {
    provider_type: String,
    name: String,
    display_name: String,
    icon: String,
    enabled: bool,
    default_role: String,
    auto_create_users: bool,
    auto_update_users: bool,
    link_existing_users: bool,
    /// One `group = role` a line.
    role_mappings: String,
    /// The type's settings as typed, by JSON name; a ticked box is present.
    settings: Vec<(String, String)>,
}

/// The prefix of the type's settings' field names.
const SETTING_PREFIX: &str = "settings.";

impl ProviderForm {
    /// A new provider's form: the type's defaults, viewer for the unmatched, users created.
    fn blank(kind: ProviderType) -> Self {
        Self {
            provider_type: kind.as_str().to_owned(),
            default_role: authority::Role::Viewer.as_str().to_owned(),
            auto_create_users: true,
            settings: Self::settings_shown(kind, &defaults(kind)),
            ..Self::default()
        }
    }

    /// The form of `provider`, a `kind` provider, to change it.
    fn of(kind: ProviderType, provider: &ProviderView) -> Self {
        Self {
            provider_type: provider.provider_type.clone(),
            name: provider.name.clone(),
            display_name: provider.display_name.clone(),
            icon: provider.icon.clone().unwrap_or_default(),
            enabled: provider.enabled,
            default_role: provider.default_role.clone(),
            auto_create_users: provider.auto_create_users,
            auto_update_users: provider.auto_update_users,
            link_existing_users: provider.link_existing_users,
            role_mappings: provider
                .role_mappings
                .iter()
                .map(|r| format!("{} = {}", r.group, r.role))
                .collect::<Vec<_>>()
                .join("\n"),
            settings: Self::settings_shown(kind, &provider.settings),
        }
    }

    fn settings_shown(kind: ProviderType, values: &Map<String, Value>) -> Vec<(String, String)> {
        settings_of(kind)
            .iter()
            .map(|s| (s.key.to_owned(), shown(values.get(s.key))))
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }

    /// The form as posted; the secret is taken out apart, to be zeroized.
    fn from_fields(fields: Vec<(String, String)>) -> (Self, Zeroizing<String>) {
        let mut form = Self::default();
        let mut secret = Zeroizing::new(String::new());
        for (name, value) in fields {
            match name.as_str() {
                "provider_type" => form.provider_type = value,
                "name" => form.name = value,
                "display_name" => form.display_name = value,
                "icon" => form.icon = value,
                "enabled" => form.enabled = true,
                "default_role" => form.default_role = value,
                "auto_create_users" => form.auto_create_users = true,
                "auto_update_users" => form.auto_update_users = true,
                "link_existing_users" => form.link_existing_users = true,
                "role_mappings" => form.role_mappings = value,
                "secret" => secret = Zeroizing::new(value),
                other => {
                    if let Some(key) = other.strip_prefix(SETTING_PREFIX) {
                        form.settings.push((key.to_owned(), value));
                    }
                }
            }
        }
        (form, secret)
    }

    /// The type the form is for.
    fn kind(&self) -> ApiResult<ProviderType> {
        kind_named(&self.provider_type)
    }

    /// Setting `key` as typed.
    fn value(&self, key: &str) -> &str {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Whether box `key` is ticked.
    fn ticked(&self, key: &str) -> bool {
        !self.value(key).is_empty()
    }

    /// The type's settings: `kept` (what is stored, so that settings this form does not show
    /// survive a change) with the form's fields over it.
    fn settings_json(&self, kind: ProviderType, mut kept: Map<String, Value>) -> ApiResult<Value> {
        for s in settings_of(kind) {
            let typed = self.value(s.key).trim();
            let value = match s.kind {
                Kind::Flag => Some(Value::Bool(!typed.is_empty())),
                _ if typed.is_empty() => None,
                Kind::Text => Some(Value::String(typed.to_owned())),
                Kind::Number => number::<u64>(s.label, typed)?.map(Value::from),
                Kind::Words => Some(Value::Array(
                    typed
                        .split([' ', ',', '\n', '\t'])
                        .filter(|w| !w.is_empty())
                        .map(|w| Value::String(w.to_owned()))
                        .collect(),
                )),
            };
            match value {
                Some(value) => kept.insert(s.key.to_owned(), value),
                None => kept.remove(s.key),
            };
        }
        Ok(Value::Object(kept))
    }

    /// The provider the authority takes, with `secret` (empty: keep the stored one) and the
    /// stored settings `kept`.
    fn to_input(&self, secret: &str, kept: Map<String, Value>) -> ApiResult<ProviderInput> {
        let kind = self.kind()?;
        let settings = ProviderSettings::from_json(kind, self.settings_json(kind, kept)?)?;
        Ok(ProviderInput {
            name: self.name.trim().to_owned(),
            display_name: blank_is_none(&self.display_name).map(str::to_owned),
            icon: blank_is_none(&self.icon).map(str::to_owned),
            enabled: self.enabled,
            default_role: self.default_role.trim().to_owned(),
            auto_create_users: self.auto_create_users,
            auto_update_users: self.auto_update_users,
            link_existing: self.link_existing_users,
            role_mappings: role_mappings(&self.role_mappings)?,
            // A secret is taken as typed: spaces may be part of it.
            secret: (!secret.is_empty()).then(|| Zeroizing::new(secret.to_owned())),
            settings,
        })
    }
}

/// `group = role` lines as mapping rules. A group may be a DN, which has `=` of its own: the
/// role is after the last one.
fn role_mappings(text: &str) -> ApiResult<Vec<RoleMapping>> {
    lines(text)
        .map(|line| {
            let (group, role) = line
                .rsplit_once('=')
                .filter(|(g, r)| !g.trim().is_empty() && !r.trim().is_empty())
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "role mappings: '{line}' is not a line of the form 'group = role'"
                    ))
                })?;
            Ok(RoleMapping {
                group: group.trim().to_owned(),
                role: role.trim().to_owned(),
            })
        })
        .collect()
}

/// The roles a provider may give, in the order the form offers them.
fn roles() -> Vec<&'static str> {
    authority::Role::ALL.iter().map(|r| r.as_str()).collect()
}

/// A live session opened through single sign-on, with its user's name.
pub struct SsoSession {
    session: authority::SessionRow,
    username: String,
}

#[derive(Template)]
#[template(path = "console/sso.html")]
struct ListPage {
    head: Head,
    frame: Frame,
    providers: Vec<ProviderView>,
    sessions: Vec<SsoSession>,
}

/// GET `/sso`.
pub async fn list(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    let frame = visitor.frame(LIST);
    let principal = &visitor.principal;
    let read = async {
        let providers = app
            .authority
            .sso_providers(principal)
            .await?
            .into_iter()
            .map(|p| view(&app, p, None))
            .collect::<ApiResult<Vec<_>>>()?;
        let sessions = app
            .authority
            .sso_sessions(principal)
            .await?
            .into_iter()
            .map(|(session, username)| SsoSession { session, username })
            .collect();
        Ok::<_, ApiError>((providers, sessions))
    };
    match read.await {
        Ok((providers, sessions)) => page::render(
            StatusCode::OK,
            &ListPage {
                head: Head::new(),
                frame,
                providers,
                sessions,
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

#[derive(Template)]
#[template(path = "console/sso_new.html")]
struct NewPage {
    head: Head,
    frame: Frame,
    kind: ProviderType,
    fields: &'static [Setting],
    form: ProviderForm,
    roles: Vec<&'static str>,
    error: Option<String>,
}

/// The new provider's page for `form`, with the refusal `error`.
fn new_page(visitor: &Visitor, form: ProviderForm, error: Option<ApiError>) -> Response {
    let frame = visitor.frame(LIST);
    let kind = match form.kind() {
        Ok(kind) => kind,
        Err(e) => return page::refused(frame, &e),
    };
    page::render(
        error.as_ref().map_or(StatusCode::OK, ApiError::status),
        &NewPage {
            head: Head::new(),
            frame,
            kind,
            fields: settings_of(kind),
            form,
            roles: roles(),
            error: error.map(|e| e.message().to_owned()),
        },
    )
}

/// The new provider's type, as the query string names it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewQuery {
    provider_type: String,
}

/// GET `/sso/new?provider_type=oidc|ldap`: the form for a provider of that type.
pub async fn new(Extension(visitor): Extension<Visitor>, Query(q): Query<NewQuery>) -> Response {
    match kind_named(&q.provider_type) {
        Ok(kind) => new_page(&visitor, ProviderForm::blank(kind), None),
        Err(e) => page::refused(visitor.frame(LIST), &e),
    }
}

/// POST `/sso/new`: adds the provider and shows it; on a refusal, the form again as sent,
/// with the reason.
pub async fn create(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (form, secret) = ProviderForm::from_fields(fields);
    let made = async {
        let input = form.to_input(&secret, Map::new())?;
        Ok::<_, ApiError>(
            app.authority
                .create_sso_provider(&visitor.principal, input)
                .await?,
        )
    };
    match made.await {
        Ok(provider) => Redirect::to(&provider_path(provider.id)).into_response(),
        Err(e) => new_page(&visitor, form, Some(e)),
    }
}

/// What a provider's page shows once, as the answer to an action.
#[derive(Default)]
struct Shown {
    /// A connection test's outcome.
    test: Option<authority::sso::ProviderTest>,
    /// The edit form as sent, when it was refused.
    form: Option<ProviderForm>,
    error: Option<ApiError>,
}

#[derive(Template)]
#[template(path = "console/sso_provider.html")]
struct ProviderPage {
    head: Head,
    frame: Frame,
    provider: ProviderView,
    kind: ProviderType,
    fields: &'static [Setting],
    form: ProviderForm,
    roles: Vec<&'static str>,
    test: Option<authority::sso::ProviderTest>,
    error: Option<String>,
}

impl ProviderPage {
    /// A setting of the provider as shown, by its label.
    fn settings_shown(&self) -> Vec<(&'static str, String)> {
        self.fields
            .iter()
            .map(|s| {
                let value = self.provider.settings.get(s.key);
                match s.kind {
                    Kind::Flag if value == Some(&Value::Bool(true)) => (s.label, "yes".into()),
                    Kind::Flag => (s.label, "no".into()),
                    _ => (s.label, shown(value)),
                }
            })
            .collect()
    }
}

/// Provider `id`'s page with `shown`, in the status of its refusal or 200.
async fn provider_page(app: &App, visitor: &Visitor, id: i64, shown: Shown) -> Response {
    let frame = visitor.frame(LIST);
    let read = async {
        let provider = app.authority.sso_provider(&visitor.principal, id).await?;
        Ok::<_, ApiError>((provider.kind(), view(app, provider, None)?))
    };
    let (kind, provider) = match read.await {
        Ok(read) => read,
        Err(e) => return page::refused(frame, &e),
    };
    page::render(
        shown
            .error
            .as_ref()
            .map_or(StatusCode::OK, ApiError::status),
        &ProviderPage {
            head: Head::new(),
            frame,
            kind,
            fields: settings_of(kind),
            form: shown
                .form
                .unwrap_or_else(|| ProviderForm::of(kind, &provider)),
            provider,
            roles: roles(),
            test: shown.test,
            error: shown.error.map(|e| e.message().to_owned()),
        },
    )
}

fn provider_path(id: i64) -> String {
    format!("{LIST}/{id}")
}

/// GET `/sso/{id}`.
pub async fn show(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    provider_page(&app, &visitor, id, Shown::default()).await
}

/// Back to provider `id`'s page once `done` succeeded; the page with the refusal otherwise.
async fn then_back(
    app: &App,
    visitor: &Visitor,
    id: i64,
    done: impl Future<Output = ApiResult<()>>,
) -> Response {
    match done.await {
        Ok(()) => Redirect::to(&provider_path(id)).into_response(),
        Err(e) => {
            let shown = Shown {
                error: Some(e),
                ..Shown::default()
            };
            provider_page(app, visitor, id, shown).await
        }
    }
}

/// POST `/sso/{id}/edit`: its fields as the form holds them; its type stays, and an empty
/// secret keeps the stored one.
pub async fn update(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (form, secret) = ProviderForm::from_fields(fields);
    let done = async {
        let stored = app.authority.sso_provider(&visitor.principal, id).await?;
        let kept = match stored.settings.to_json()? {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let input = ProviderForm {
            provider_type: stored.kind().as_str().to_owned(),
            ..form.clone()
        }
        .to_input(&secret, kept)?;
        app.authority
            .update_sso_provider(&visitor.principal, id, input)
            .await?;
        Ok::<_, ApiError>(())
    };
    match done.await {
        Ok(()) => Redirect::to(&provider_path(id)).into_response(),
        Err(e) => {
            let shown = Shown {
                form: Some(form),
                error: Some(e),
                ..Shown::default()
            };
            provider_page(&app, &visitor, id, shown).await
        }
    }
}

/// POST `/sso/{id}/toggle`: on when it was off, off when it was on.
pub async fn toggle(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    let done = async {
        app.authority
            .toggle_sso_provider(&visitor.principal, id)
            .await?;
        Ok(())
    };
    then_back(&app, &visitor, id, done).await
}

/// POST `/sso/{id}/test`: whether certmint can talk to the provider; the page says.
pub async fn test(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    let shown = match app
        .authority
        .test_sso_provider(&visitor.principal, id)
        .await
    {
        Ok(test) => Shown {
            test: Some(test),
            ..Shown::default()
        },
        Err(e) => Shown {
            error: Some(e.into()),
            ..Shown::default()
        },
    };
    provider_page(&app, &visitor, id, shown).await
}

/// The deletion form: its box must be ticked.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    confirm: String,
}

/// POST `/sso/{id}/delete`: with the box ticked, the provider goes; the users it made stay.
pub async fn delete(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let deleted = async {
        if form.confirm.is_empty() {
            return Err(ApiError::invalid("tick the box to confirm the deletion"));
        }
        Ok(app
            .authority
            .delete_sso_provider(&visitor.principal, id)
            .await?)
    };
    match deleted.await {
        Ok(()) => Redirect::to(LIST).into_response(),
        Err(e) => {
            let shown = Shown {
                error: Some(e),
                ..Shown::default()
            };
            provider_page(&app, &visitor, id, shown).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn mapping_lines_split_at_the_last_equals_sign() -> ApiResult<()> {
        let rules = role_mappings(
            "cn=pki-admins,ou=groups,dc=example,dc=com = admin\r\n\n  auditors=auditor \n",
        )?;
        assert_eq!(
            rules,
            [
                RoleMapping {
                    group: "cn=pki-admins,ou=groups,dc=example,dc=com".into(),
                    role: "admin".into()
                },
                RoleMapping {
                    group: "auditors".into(),
                    role: "auditor".into()
                }
            ]
        );
        for bad in ["no sign", "= admin", "group ="] {
            assert!(role_mappings(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn an_oidc_form_becomes_the_provider_the_authority_takes() -> ApiResult<()> {
        let (form, secret) = ProviderForm::from_fields(fields(&[
            ("csrf_token", "t"),
            ("provider_type", "oidc"),
            ("name", " corp "),
            ("display_name", ""),
            ("default_role", "viewer"),
            ("auto_create_users", "1"),
            ("role_mappings", "pki = operator"),
            ("secret", " s3cret "),
            ("settings.issuer_url", " https://idp.example.com "),
            ("settings.client_id", "certmint"),
            ("settings.scopes", "openid, email groups"),
            ("settings.username_claim", ""),
        ]));
        let input = form.to_input(&secret, Map::new())?;
        assert_eq!(input.name, "corp");
        assert_eq!(input.display_name, None);
        assert!(input.auto_create_users && !input.auto_update_users && !input.enabled);
        assert_eq!(
            input.secret.as_deref().map(String::as_str),
            Some(" s3cret ")
        );
        let ProviderSettings::Oidc(config) = input.settings else {
            return Err(ApiError::invalid("not OIDC"));
        };
        assert_eq!(config.issuer_url, "https://idp.example.com");
        assert_eq!(config.scopes, ["openid", "email", "groups"]);
        assert_eq!(
            Some(&Value::String(config.username_claim)),
            defaults(ProviderType::Oidc).get("username_claim"),
            "an empty field takes the default"
        );

        let (form, secret) = ProviderForm::from_fields(fields(&[
            ("provider_type", "oidc"),
            ("name", "corp"),
            ("default_role", "viewer"),
            ("settings.client_id", "certmint"),
        ]));
        assert!(secret.is_empty());
        assert!(
            form.to_input(&secret, Map::new())
                .is_err_and(|e| e.message().contains("issuer_url")),
            "a required setting left empty is refused"
        );
        Ok(())
    }

    #[test]
    fn an_ldap_form_keeps_settings_it_does_not_show_and_reads_its_boxes() -> ApiResult<()> {
        let blank = ProviderForm::blank(ProviderType::Ldap);
        assert!(blank.ticked("use_tls"), "LDAPS by default: {blank:?}");
        assert_eq!(blank.value("port"), "636");
        let (form, secret) = ProviderForm::from_fields(fields(&[
            ("provider_type", "ldap"),
            ("name", "directory"),
            ("default_role", "viewer"),
            ("settings.server", "ldap.example.com"),
            ("settings.port", "389"),
            ("settings.starttls", "1"),
            ("settings.use_tls", "1"),
            ("settings.base_dn", "dc=example,dc=com"),
            ("settings.bind_dn", "cn=certmint,dc=example,dc=com"),
        ]));
        let kept = Map::from_iter([("unshown".to_owned(), Value::from(7))]);
        let json = form.settings_json(ProviderType::Ldap, kept)?;
        assert_eq!(json["port"], 389);
        assert_eq!(json["starttls"], true);
        assert_eq!(json["allow_plain"], false, "an unticked box is off");
        assert_eq!(json["unshown"], 7, "what the form does not show is kept");
        assert!(json.get("group_base_dn").is_none());
        let input = form.to_input(&secret, Map::new())?;
        assert_eq!(input.secret, None, "an empty secret keeps the stored one");
        assert!(matches!(input.settings, ProviderSettings::Ldap(_)));

        let (form, _) = ProviderForm::from_fields(fields(&[
            ("provider_type", "ldap"),
            ("settings.port", "ninety"),
        ]));
        assert!(form.settings_json(ProviderType::Ldap, Map::new()).is_err());
        let (form, _) = ProviderForm::from_fields(fields(&[("provider_type", "saml")]));
        assert!(form.kind().is_err());
        Ok(())
    }
}
