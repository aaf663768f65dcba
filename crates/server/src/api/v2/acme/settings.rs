//! `/acme/settings`: the instance-wide switch and rate limits, and the default profile's CA
//! and validity.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::v2::views::nullable;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};
use crate::{App, Shared};
use authority::CaId;
use authority::acme::{AcmeSettings, AcmeSettingsChange};

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(settings, update_settings))
}

/// The ACME server's settings: the instance-wide switch and rate limits, and the default
/// profile's CA and validity (the one at `/acme/directory`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    /// Whether ACME serves at all.
    pub enabled: bool,
    /// The default profile's issuing CA; null is the default CA.
    pub issuing_ca_id: Option<i64>,
    /// The default profile's certificate validity, in days.
    pub validity_days: Option<i64>,
    /// Always false: ACME orders are issued once their authorizations are valid.
    pub require_approval: bool,
    /// New orders one account may place per hour; 0 is no limit.
    pub orders_per_account_hour: i64,
    /// New accounts one client address may register per hour; 0 is no limit.
    pub accounts_per_address_hour: i64,
    /// The default profile.
    pub default_profile_id: Option<i64>,
    /// The default profile's directory: its URL under `external_url`, else its path.
    pub directory: String,
}

impl SettingsView {
    /// The view of `s`, its directory as `app` shows links.
    pub fn new(s: AcmeSettings, app: &Shared) -> Self {
        let profile = s.default_profile.as_ref();
        Self {
            enabled: s.state.enabled,
            issuing_ca_id: (profile.and_then(|p| p.ca_id)).map(i64::from),
            validity_days: profile.map(|p| p.validity_days),
            require_approval: false,
            orders_per_account_hour: s.state.orders_per_account_hour,
            accounts_per_address_hour: s.state.accounts_per_address_hour,
            default_profile_id: profile.map(|p| p.id),
            directory: app.link("/acme/directory"),
        }
    }
}

/// The settings to change; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub enabled: Option<bool>,
    /// The default profile's issuing CA; null for the default CA. It must be able to issue.
    #[serde(default, deserialize_with = "nullable")]
    pub issuing_ca_id: Option<Option<i64>>,
    /// 1 to 3650, within the default profile's template.
    pub validity_days: Option<i64>,
    /// Only false is accepted: there is no approval step for ACME orders.
    pub require_approval: Option<bool>,
    /// 0 (no limit) to 1000000.
    pub orders_per_account_hour: Option<i64>,
    /// 0 (no limit) to 1000000.
    pub accounts_per_address_hour: Option<i64>,
}

/// The ACME server's settings.
#[utoipa::path(get, path = "/acme/settings", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    responses((status = 200, description = "Settings", body = Envelope<SettingsView>)))]
async fn settings(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let settings = app.authority.acme_settings(&principal).await?;
    Ok(ok(SettingsView::new(settings, &app)))
}

/// Change the ACME server's settings; directories serve the change at once.
#[utoipa::path(patch, path = "/acme/settings", tag = "acme-admin",
    security(("session" = ["write:acme"]), ("api_key" = ["write:acme"])),
    request_body = SettingsPatch,
    responses((status = 200, description = "Updated", body = Envelope<SettingsView>),
              (status = 409, description = "No default profile to set the CA or validity of", body = ErrorBody),
              (status = 422, description = "A value is wrong, or require_approval is true", body = ErrorBody)))]
async fn update_settings(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> ApiResult<Response> {
    let change = AcmeSettingsChange {
        enabled: patch.enabled,
        orders_per_account_hour: patch.orders_per_account_hour,
        accounts_per_address_hour: patch.accounts_per_address_hour,
        issuing_ca_id: patch.issuing_ca_id.map(|ca| ca.map(CaId)),
        validity_days: patch.validity_days,
        require_approval: patch.require_approval,
    };
    let settings = app
        .authority
        .update_acme_settings(&principal, change)
        .await?;
    Ok(ok_with(
        SettingsView::new(settings, &app),
        "ACME settings updated",
    ))
}
