//! `/system/settings`: every setting with its value and where it comes from; those that apply
//! live (`authority::LIVE_SETTINGS`) change here for every node, the others are read at start
//! from the configuration file or environment and are shown only. The change goes through
//! `PATCH /api/v2/settings/general`'s own function, so it is checked and audited the same.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value};

use super::form::{Form, blank_is_none, number};
use super::page::{self, Frame, Head, Visitor};
use crate::App;
use crate::api::v2::general_settings::{self, GeneralView};
use crate::error::{ApiError, ApiResult};

/// The page.
const PAGE: &str = "/system/settings";

/// A setting as the page shows it.
pub struct Row {
    name: String,
    /// The value in force, as JSON.
    value: String,
    /// `default`, `file` or `database`.
    source: &'static str,
    /// Whether it changes here (else at a restart).
    live: bool,
    /// A live switch's state; `None` for a live number.
    switch: Option<bool>,
}

impl Row {
    fn rows(view: GeneralView) -> Vec<Self> {
        view.0
            .into_iter()
            .map(|(name, s)| Self {
                value: match &s.value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                },
                source: s.source,
                live: s.applies == "live",
                switch: s.value.as_bool(),
                name,
            })
            .collect()
    }
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage {
    head: Head,
    frame: Frame,
    rows: Vec<Row>,
    error: Option<String>,
}

/// The page, with a refusal of what was just asked.
async fn settings_page(app: &App, visitor: &Visitor, error: Option<ApiError>) -> Response {
    let frame = visitor.frame(PAGE);
    match general_settings::view(app, &visitor.principal).await {
        Ok(view) => page::render(
            error.as_ref().map_or(StatusCode::OK, ApiError::status),
            &SettingsPage {
                head: Head::new(),
                frame,
                rows: Row::rows(view),
                error: error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/system/settings`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    settings_page(&app, &visitor, None).await
}

/// The live settings of the form as the API takes them: a switch is on when its box is
/// ticked, a blank number is left as it is.
fn change(rows: &[Row], fields: &[(String, String)]) -> ApiResult<Map<String, Value>> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let mut change = Map::new();
    for row in rows.iter().filter(|r| r.live) {
        let value = match row.switch {
            Some(_) => Some(Value::Bool(blank_is_none(field(&row.name)).is_some())),
            None => number::<u64>(&row.name, field(&row.name))?.map(Value::from),
        };
        if let Some(value) = value {
            change.insert(row.name.clone(), value);
        }
    }
    Ok(change)
}

/// POST `/system/settings`.
pub async fn update(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let done = async {
        let rows = Row::rows(general_settings::view(&app, &visitor.principal).await?);
        general_settings::changed(&app, &visitor.principal, change(&rows, &fields)?).await?;
        Ok::<_, ApiError>(())
    };
    match done.await {
        Ok(()) => Redirect::to(&format!("{PAGE}#live")).into_response(),
        Err(e) => settings_page(&app, &visitor, Some(e)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_follow_their_box_and_blank_numbers_stay() -> ApiResult<()> {
        let row = |name: &str, live, switch| Row {
            name: name.into(),
            value: String::new(),
            source: "default",
            live,
            switch,
        };
        let rows = [
            row("lockout_threshold", true, None),
            row("lockout_minutes", true, None),
            row("auth_rate_limit_enabled", true, Some(true)),
            row("public_url", false, None),
        ];
        let fields = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let sent = change(
            &rows,
            &fields(&[
                ("lockout_threshold", " 7 "),
                ("lockout_minutes", ""),
                ("public_url", "http://x"),
            ]),
        )?;
        assert_eq!(
            Value::Object(sent),
            serde_json::json!({"lockout_threshold": 7, "auth_rate_limit_enabled": false})
        );
        assert!(change(&rows, &fields(&[("lockout_threshold", "many")])).is_err());
        Ok(())
    }
}
