//! `/est/config`: the switch, the default endpoint's CA, template and credentials, and the
//! labels. Passwords are write-only: the settings say whether one is set.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zeroize::Zeroizing;

use crate::api::v2::views::nullable;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};
use crate::{App, Shared};
use authority::est::{EstEndpointSettings, EstLabelInput, EstSettings, EstSettingsChange};
use authority::{CaId, TemplateId};

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(config, update_config))
}

/// An EST label: an endpoint of its own.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabelView {
    pub label: String,
    /// Its issuing CA; null is the default CA.
    pub ca_id: Option<i64>,
    pub template_id: Option<i64>,
    /// The HTTP Basic user name; empty when there is none.
    pub username: String,
    /// Whether a password is set (it is never shown).
    pub password_set: bool,
    /// Where it is served: its URL under `external_url`, else its path.
    pub url: String,
}

/// The EST server's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigView {
    /// Whether EST serves at all.
    pub enabled: bool,
    /// Where the default endpoint is served: its URL under `external_url`, else its path.
    pub url: String,
    /// The default endpoint's issuing CA; null is the default CA.
    pub ca_id: Option<i64>,
    pub template_id: Option<i64>,
    /// The default endpoint's HTTP Basic user name; empty when there is none.
    pub username: String,
    /// Whether the default endpoint has a password (it is never shown).
    pub password_set: bool,
    pub labels: Vec<LabelView>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

impl ConfigView {
    /// The view of `s`, its endpoints as `app` shows links.
    pub fn new(s: EstSettings, app: &Shared) -> Self {
        let EstEndpointSettings {
            ca_id,
            template_id,
            username,
            password_set,
        } = s.default;
        Self {
            enabled: s.enabled,
            url: app.link("/.well-known/est/"),
            ca_id: ca_id.map(i64::from),
            template_id: template_id.map(i64::from),
            username,
            password_set,
            labels: s
                .labels
                .into_iter()
                .map(|(label, e)| LabelView {
                    url: app.link(&format!("/.well-known/est/{label}/")),
                    label,
                    ca_id: e.ca_id.map(i64::from),
                    template_id: e.template_id.map(i64::from),
                    username: e.username,
                    password_set: e.password_set,
                })
                .collect(),
            updated_at: s.updated_at,
        }
    }
}

/// A label as given: the whole label, apart from its password, which stays when absent.
#[derive(Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelPatch {
    /// 1 to 64 letters, digits, `-`, `_` or `.`; not `default`.
    pub label: String,
    /// Null or absent: the default CA. It must be able to issue.
    pub ca_id: Option<i64>,
    pub template_id: Option<i64>,
    /// Empty or absent: no password, only client certificates.
    #[serde(default)]
    pub username: String,
    /// Write-only; absent keeps the label's password, null removes it.
    #[serde(default, deserialize_with = "nullable")]
    pub password: Option<Option<String>>,
}

/// The settings to change; absent fields stay.
#[derive(Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    pub enabled: Option<bool>,
    /// Null for the default CA. It must be able to issue.
    #[serde(default, deserialize_with = "nullable")]
    pub ca_id: Option<Option<i64>>,
    /// Null for none.
    #[serde(default, deserialize_with = "nullable")]
    pub template_id: Option<Option<i64>>,
    /// Empty for none.
    pub username: Option<String>,
    /// Write-only; null removes it. It must meet the password policy.
    #[serde(default, deserialize_with = "nullable")]
    pub password: Option<Option<String>>,
    /// The whole list of labels, replacing the one there is.
    pub labels: Option<Vec<LabelPatch>>,
}

impl From<&LabelView> for LabelPatch {
    /// The label as it is, its password kept (a view never holds it).
    fn from(l: &LabelView) -> Self {
        Self {
            label: l.label.clone(),
            ca_id: l.ca_id,
            template_id: l.template_id,
            username: l.username.clone(),
            password: None,
        }
    }
}

impl From<LabelPatch> for EstLabelInput {
    fn from(l: LabelPatch) -> Self {
        Self {
            label: l.label,
            ca_id: l.ca_id.map(CaId),
            template_id: l.template_id.map(TemplateId),
            username: l.username,
            password: l.password.map(|p| p.map(Zeroizing::new)),
        }
    }
}

impl From<ConfigPatch> for EstSettingsChange {
    fn from(p: ConfigPatch) -> Self {
        Self {
            enabled: p.enabled,
            ca_id: p.ca_id.map(|c| c.map(CaId)),
            template_id: p.template_id.map(|t| t.map(TemplateId)),
            username: p.username,
            password: p.password.map(|p| p.map(Zeroizing::new)),
            labels: p
                .labels
                .map(|labels| labels.into_iter().map(EstLabelInput::from).collect()),
        }
    }
}

/// The EST server's settings.
#[utoipa::path(get, path = "/est/config", tag = "est-admin",
    security(("session" = ["read:est"]), ("api_key" = ["read:est"])),
    responses((status = 200, description = "Settings", body = Envelope<ConfigView>)))]
async fn config(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(ConfigView::new(
        app.authority.est_settings(&principal).await?,
        &app,
    )))
}

/// Change the EST server's settings; the endpoints serve the change at once.
#[utoipa::path(patch, path = "/est/config", tag = "est-admin",
    security(("session" = ["write:est"]), ("api_key" = ["write:est"])),
    request_body = ConfigPatch,
    responses((status = 200, description = "Updated", body = Envelope<ConfigView>),
              (status = 422, description = "A CA that cannot issue, an unknown template, a bad label, user name or password", body = ErrorBody)))]
async fn update_config(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(patch): ApiJson<ConfigPatch>,
) -> ApiResult<Response> {
    let settings = app
        .authority
        .update_est_settings(&principal, patch.into())
        .await?;
    Ok(ok_with(
        ConfigView::new(settings, &app),
        "EST settings updated",
    ))
}
