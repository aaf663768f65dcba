//! `/system/syslog`: forwarding the audit trail to a syslog server (RFC 5424 over TCP or
//! TLS), how far forwarding is, and a test message. Everything goes through the authority,
//! which checks `admin:system` and audits as it does for the REST API.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::{Form, number};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::audit_syslog::{SyslogTestView, SyslogView};
use crate::error::{ApiError, ApiResult};
use authority::syslog::SyslogChange;

/// The page.
const PAGE: &str = "/system/syslog";

/// What the page shows once, as the answer to an action.
#[derive(Default)]
struct Shown {
    tested: Option<SyslogTestView>,
    error: Option<ApiError>,
}

#[derive(Template)]
#[template(path = "console/syslog.html")]
struct SyslogPage {
    head: Head,
    frame: Frame,
    syslog: SyslogView,
    tested: Option<SyslogTestView>,
    error: Option<String>,
}

/// The page, with `shown`.
async fn syslog_page(app: &App, visitor: &Visitor, shown: Shown) -> Response {
    let frame = visitor.frame(PAGE);
    match app.authority.syslog(&visitor.principal).await {
        Ok(status) => page::render(
            shown
                .error
                .as_ref()
                .map_or(StatusCode::OK, ApiError::status),
            &SyslogPage {
                head: Head::new(),
                frame,
                syslog: status.into(),
                tested: shown.tested,
                error: shown.error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e.into()),
    }
}

/// GET `/system/syslog`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    syslog_page(&app, &visitor, Shown::default()).await
}

/// The settings' form. An empty CA bundle removes the one set.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SyslogForm {
    enabled: Option<String>,
    host: String,
    port: String,
    protocol: String,
    facility: String,
    ca_pem: String,
}

impl SyslogForm {
    fn to_change(&self) -> ApiResult<SyslogChange> {
        Ok(SyslogChange {
            enabled: Some(self.enabled.is_some()),
            host: Some(self.host.trim().to_owned()),
            port: number("port", &self.port)?,
            protocol: Some(self.protocol.trim().to_owned()),
            ca_pem: Some(self.ca_pem.trim().to_owned()),
            facility: Some(self.facility.trim().to_owned()),
        })
    }
}

/// POST `/system/syslog`.
pub async fn update(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<SyslogForm>,
) -> Response {
    let done = async {
        app.authority
            .update_syslog(&visitor.principal, form.to_change()?)
            .await?;
        Ok::<_, ApiError>(())
    };
    match done.await {
        Ok(()) => Redirect::to(&format!("{PAGE}#settings")).into_response(),
        Err(e) => {
            let shown = Shown {
                error: Some(e),
                ..Shown::default()
            };
            syslog_page(&app, &visitor, shown).await
        }
    }
}

/// POST `/system/syslog/test`: a test message now; the page says whether the server took it.
pub async fn test(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    let shown = match app.authority.test_syslog(&visitor.principal).await {
        Ok(tried) => Shown {
            tested: Some(tried.into()),
            ..Shown::default()
        },
        Err(e) => Shown {
            error: Some(e.into()),
            ..Shown::default()
        },
    };
    syslog_page(&app, &visitor, shown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_sets_every_field() -> ApiResult<()> {
        let change = SyslogForm {
            enabled: None,
            host: " logs.example ".into(),
            port: "6514".into(),
            protocol: "tls".into(),
            facility: " local3 ".into(),
            ca_pem: "\n".into(),
        }
        .to_change()?;
        assert_eq!(change.enabled, Some(false));
        assert_eq!(change.host.as_deref(), Some("logs.example"));
        assert_eq!(change.port, Some(6514));
        assert_eq!(change.facility.as_deref(), Some("local3"));
        assert_eq!(
            change.ca_pem.as_deref(),
            Some(""),
            "empty removes the bundle"
        );
        assert!(
            SyslogForm {
                port: "syslog".into(),
                ..SyslogForm::default()
            }
            .to_change()
            .is_err()
        );
        Ok(())
    }
}
