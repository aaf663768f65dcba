//! `/settings/general`: every setting with its value, where the value comes from, and whether
//! it changes live (through this API, for every node) or needs a restart (the configuration
//! file, environment or flags).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};
use crate::{App, Settings};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(general, update_general))
}

/// One setting.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingView {
    /// The value in force (a database URL without its password).
    #[schema(value_type = Object)]
    pub value: Value,
    /// `default` (built in), `file` (the configuration file, environment or flags) or
    /// `database` (set through this API).
    pub source: &'static str,
    /// `live` (changed with PATCH, on every node within a second) or `restart` (changed in
    /// the configuration, taken up at the next start).
    pub applies: &'static str,
    /// For live settings: the value from the configuration, which the database's overrides.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configured: Option<Value>,
}

/// The settings by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct GeneralView(pub BTreeMap<String, SettingView>);

/// `settings` as JSON, by top-level name.
fn by_name(settings: &Settings) -> ApiResult<Map<String, Value>> {
    match serde_json::to_value(settings) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(authority::Error::Internal("settings are not a JSON object".into()).into()),
    }
}

/// `url` with the password of its user part and of a `password` parameter replaced.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (host_part, tail) = rest.split_at(end);
    let host_part = match host_part.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{user_info}@{host}"),
        },
        None => host_part.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{host_part}{tail}")
}

/// Where a configured `value` comes from, given the built-in `default` (none for a setting
/// the configuration cannot set).
fn configured_source(value: &Value, default: Option<&Value>) -> &'static str {
    match default {
        Some(default) if default != value => "file",
        _ => "default",
    }
}

pub(crate) async fn view(app: &App, principal: &authority::Principal) -> ApiResult<GeneralView> {
    let live = app.authority.live_settings(principal).await?;
    let file = by_name(&app.settings)?;
    let defaults = by_name(&Settings::default())?;
    let mut all = BTreeMap::new();
    for (name, value) in file {
        if authority::LIVE_SETTINGS.contains(&name.as_str()) {
            continue;
        }
        let source = configured_source(&value, defaults.get(&name));
        let value = match (name.as_str(), value) {
            ("database_url", Value::String(url)) => Value::String(without_password(&url)),
            (_, value) => value,
        };
        all.insert(
            name,
            SettingView {
                value,
                source,
                applies: "restart",
                configured: None,
            },
        );
    }
    for setting in live {
        let source = if setting.stored {
            "database"
        } else {
            configured_source(&setting.configured, defaults.get(setting.name))
        };
        all.insert(
            setting.name.to_owned(),
            SettingView {
                value: setting.value,
                source,
                applies: "live",
                configured: Some(setting.configured),
            },
        );
    }
    Ok(GeneralView(all))
}

/// The live settings a PATCH body names, refusing restart-only and unknown names.
fn live_change(body: Map<String, Value>) -> ApiResult<authority::LiveValues> {
    if body.is_empty() {
        return Err(ApiError::bad_request(format!(
            "name at least one setting to change: {}",
            authority::LIVE_SETTINGS.join(", ")
        )));
    }
    let restart = by_name(&Settings::default())?;
    for (name, value) in &body {
        if authority::LIVE_SETTINGS.contains(&name.as_str()) {
            if value.is_null() {
                return Err(ApiError::invalid(format!("{name} cannot be null")));
            }
        } else if restart.contains_key(name) {
            return Err(ApiError::invalid(format!(
                "{name} is read at start: change it in the configuration file or environment \
                 and restart; live settings are {}",
                authority::LIVE_SETTINGS.join(", ")
            )));
        } else {
            return Err(ApiError::bad_request(format!(
                "{name} is not a setting; live settings are {}",
                authority::LIVE_SETTINGS.join(", ")
            )));
        }
    }
    serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::invalid(format!("bad setting value: {e}")))
}

/// Every setting: its value, where it comes from (`default`, `file` or `database`) and
/// whether it changes `live` or needs a `restart`. Secrets (the database password) are left
/// out.
#[utoipa::path(get, path = "/settings/general", tag = "settings",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "The settings by name", body = Envelope<GeneralView>)))]
async fn general(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(view(&app, &principal).await?))
}

/// Change live settings (password_min_length, lockout_threshold, lockout_minutes,
/// session_idle_minutes, session_absolute_minutes, auth_rate_limit_per_minute,
/// auth_rate_limit_enabled, second_factor_roles): stored in the database, in force on every node within a second,
/// audited with the old and new values. The others are refused: they need a restart.
#[utoipa::path(patch, path = "/settings/general", tag = "settings",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body(content_type = "application/json", description = "Live setting names and their new values, e.g. {\"lockout_threshold\": 5}"),
    responses((status = 200, description = "Updated; the settings by name", body = Envelope<GeneralView>),
              (status = 400, description = "No setting, or a name that is not a setting", body = ErrorBody),
              (status = 422, description = "A value out of bounds, or a setting that needs a restart", body = ErrorBody)))]
async fn update_general(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    Ok(ok_with(
        changed(&app, &principal, body).await?,
        "settings updated",
    ))
}

/// The live settings `body` names set to its values, and this node's limits following them;
/// the settings as they then are.
pub(crate) async fn changed(
    app: &App,
    principal: &authority::Principal,
    body: Map<String, Value>,
) -> ApiResult<GeneralView> {
    let change = live_change(body)?;
    app.authority
        .update_live_settings(principal, &change)
        .await?;
    app.limits.apply(&app.authority.in_force().await);
    view(app, principal).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_left_out() {
        for (url, shown) in [
            (
                "postgres://certmint:s3cret@db.example:5432/ca",
                "postgres://certmint:***@db.example:5432/ca",
            ),
            (
                "postgres://db.example/ca?user=c&password=s3cret&sslmode=require",
                "postgres://db.example/ca?user=c&password=***&sslmode=require",
            ),
            (
                "postgres://certmint@db.example/ca",
                "postgres://certmint@db.example/ca",
            ),
            ("", ""),
        ] {
            assert_eq!(without_password(url), shown);
        }
    }

    #[test]
    fn restart_and_unknown_names_are_refused() {
        let body = |v: Value| v.as_object().cloned().unwrap();
        let restart = live_change(body(serde_json::json!({"public_url": "http://x"})));
        assert!(restart.unwrap_err().message().contains("restart"));
        let unknown = live_change(body(serde_json::json!({"site_name": "x"})));
        assert!(unknown.unwrap_err().message().contains("not a setting"));
        let change = live_change(body(serde_json::json!({"lockout_threshold": 3}))).unwrap();
        assert_eq!(change.lockout_threshold, Some(3));
    }
}
