//! `/system/email`: the SMTP server certmint sends mail through with a test message, and the
//! expiry alerts that mail announces, with a scan now. Everything goes through the authority,
//! which checks `admin:system` as it does for the REST API.
//!
//! The SMTP password is write-only: the page shows whether one is set, a blank field keeps
//! it, and a box removes it.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::{Form, lines, number};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::alerts::{ExpiryAlertsView, NoticeView};
use crate::api::v2::email::EmailView;
use crate::error::{ApiError, ApiResult};
use authority::email::EmailChange;
use authority::jobs::ExpiryAlertsChange;

/// The page.
const PAGE: &str = "/system/email";

/// The security choices, as the API names them, with what they mean.
const SECURITY: [(&str, &str); 3] = [
    ("starttls", "STARTTLS (usually port 587)"),
    ("tls", "TLS from the start (usually port 465)"),
    ("none", "None: a relay on a trusted network, no password"),
];

/// What an expiry check found and sent.
pub struct Checked {
    notices: Vec<NoticeView>,
    messages_sent: usize,
    recipients: Vec<String>,
}

/// What the page shows once, as the answer to an action.
#[derive(Default)]
struct Shown {
    /// The address a test message went to.
    tested: Option<String>,
    checked: Option<Checked>,
    error: Option<ApiError>,
}

#[derive(Template)]
#[template(path = "console/email.html")]
struct EmailPage {
    head: Head,
    frame: Frame,
    email: EmailView,
    alerts: ExpiryAlertsView,
    security: [(&'static str, &'static str); 3],
    tested: Option<String>,
    checked: Option<Checked>,
    error: Option<String>,
}

/// The page, with `shown`.
async fn email_page(app: &App, visitor: &Visitor, shown: Shown) -> Response {
    let frame = visitor.frame(PAGE);
    let read = async {
        let email = app.authority.email_settings(&visitor.principal).await?;
        let alerts = app.authority.expiry_alerts(&visitor.principal).await?;
        Ok::<_, ApiError>((email, alerts))
    };
    match read.await {
        Ok((email, alerts)) => page::render(
            shown
                .error
                .as_ref()
                .map_or(StatusCode::OK, ApiError::status),
            &EmailPage {
                head: Head::new(),
                frame,
                email: email.into(),
                alerts: alerts.into(),
                security: SECURITY,
                tested: shown.tested,
                checked: shown.checked,
                error: shown.error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/system/email`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    email_page(&app, &visitor, Shown::default()).await
}

/// Back to the page at `anchor` once `done` succeeded; the page with the refusal otherwise.
async fn then_back(
    app: &App,
    visitor: &Visitor,
    done: impl Future<Output = ApiResult<()>>,
    anchor: &str,
) -> Response {
    match done.await {
        Ok(()) => Redirect::to(&format!("{PAGE}#{anchor}")).into_response(),
        Err(e) => {
            let shown = Shown {
                error: Some(e),
                ..Shown::default()
            };
            email_page(app, visitor, shown).await
        }
    }
}

/// The SMTP form. A blank password keeps the current one.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SmtpForm {
    enabled: Option<String>,
    host: String,
    port: String,
    security: String,
    username: String,
    password: String,
    remove_password: Option<String>,
    from_address: String,
}

impl SmtpForm {
    /// The change the authority takes: every field set but the password, which is kept
    /// (`None`), removed (empty) or replaced. A password is taken as typed.
    fn to_change(&self) -> ApiResult<EmailChange> {
        let password = match (self.remove_password.is_some(), self.password.is_empty()) {
            (false, true) => None,
            (true, true) => Some(String::new()),
            (false, false) => Some(self.password.clone()),
            (true, false) => {
                return Err(ApiError::invalid(
                    "either type a new password or remove it, not both",
                ));
            }
        };
        Ok(EmailChange {
            enabled: Some(self.enabled.is_some()),
            host: Some(self.host.trim().to_owned()),
            port: number("port", &self.port)?,
            security: Some(self.security.trim().to_owned()),
            username: Some(self.username.trim().to_owned()),
            password,
            from_address: Some(self.from_address.trim().to_owned()),
        })
    }
}

/// POST `/system/email/smtp`.
pub async fn update_smtp(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<SmtpForm>,
) -> Response {
    let done = async {
        app.authority
            .update_email_settings(&visitor.principal, form.to_change()?)
            .await?;
        Ok(())
    };
    then_back(&app, &visitor, done, "smtp").await
}

/// The test message's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TestForm {
    to: String,
}

/// POST `/system/email/test`: a message now; the page says whether the server took it.
pub async fn send_test(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<TestForm>,
) -> Response {
    let to = form.to.trim().to_owned();
    let shown = match app.authority.send_test_email(&visitor.principal, &to).await {
        Ok(()) => Shown {
            tested: Some(to),
            ..Shown::default()
        },
        Err(e) => Shown {
            error: Some(e.into()),
            ..Shown::default()
        },
    };
    email_page(&app, &visitor, shown).await
}

/// The expiry alerts' form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AlertsForm {
    enabled: Option<String>,
    /// Days, separated by commas or spaces.
    thresholds: String,
    /// One address a line.
    recipients: String,
}

impl AlertsForm {
    fn to_change(&self) -> ApiResult<ExpiryAlertsChange> {
        let thresholds = self
            .thresholds
            .split([',', ' '])
            .filter_map(|t| number("thresholds", t).transpose())
            .collect::<ApiResult<Vec<i64>>>()?;
        Ok(ExpiryAlertsChange {
            enabled: Some(self.enabled.is_some()),
            thresholds: Some(thresholds),
            recipients: Some(lines(&self.recipients).map(str::to_owned).collect()),
        })
    }
}

/// POST `/system/email/expiry-alerts`.
pub async fn update_alerts(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<AlertsForm>,
) -> Response {
    let done = async {
        app.authority
            .update_expiry_alerts(&visitor.principal, form.to_change()?)
            .await?;
        Ok(())
    };
    then_back(&app, &visitor, done, "alerts").await
}

/// POST `/system/email/expiry-alerts/check`: the expiry scan now; the page says what it
/// announced and sent.
pub async fn check(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    let shown = match app.authority.check_expiry(&visitor.principal).await {
        Ok(scan) => Shown {
            checked: Some(Checked {
                notices: scan.notices.into_iter().map(NoticeView::from).collect(),
                messages_sent: scan.messages_sent,
                recipients: scan.recipients,
            }),
            ..Shown::default()
        },
        Err(e) => Shown {
            error: Some(e.into()),
            ..Shown::default()
        },
    };
    email_page(&app, &visitor, shown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smtp_form_keeps_replaces_or_removes_the_password() -> ApiResult<()> {
        let form = SmtpForm {
            enabled: Some("1".into()),
            host: " mail.example.com ".into(),
            port: "465".into(),
            security: "tls".into(),
            username: " certmint ".into(),
            password: " typed as is ".into(),
            remove_password: None,
            from_address: " pki@example.com ".into(),
        };
        let change = form.to_change()?;
        assert_eq!(change.enabled, Some(true));
        assert_eq!(change.host.as_deref(), Some("mail.example.com"));
        assert_eq!(change.port, Some(465));
        assert_eq!(change.security.as_deref(), Some("tls"));
        assert_eq!(change.username.as_deref(), Some("certmint"));
        assert_eq!(change.password.as_deref(), Some(" typed as is "));
        assert_eq!(change.from_address.as_deref(), Some("pki@example.com"));

        let keep = SmtpForm::default().to_change()?;
        assert_eq!(keep.password, None, "blank keeps it");
        assert_eq!(keep.enabled, Some(false), "an unticked box turns mail off");
        assert_eq!(keep.port, None, "a blank port stays");
        let remove = SmtpForm {
            remove_password: Some("1".into()),
            ..SmtpForm::default()
        };
        assert_eq!(remove.to_change()?.password.as_deref(), Some(""));
        let both = SmtpForm {
            remove_password: Some("1".into()),
            password: "a new one".into(),
            ..SmtpForm::default()
        };
        assert!(both.to_change().is_err());
        let port = SmtpForm {
            port: "smtp".into(),
            ..SmtpForm::default()
        };
        assert!(port.to_change().is_err());
        Ok(())
    }

    #[test]
    fn the_alerts_form_reads_days_and_addresses() -> ApiResult<()> {
        let change = AlertsForm {
            enabled: None,
            thresholds: "30, 14 7,,1".into(),
            recipients: " pki@example.com \n\n ops@example.com\r\n".into(),
        }
        .to_change()?;
        assert_eq!(change.enabled, Some(false));
        assert_eq!(change.thresholds, Some(vec![30, 14, 7, 1]));
        assert_eq!(
            change.recipients,
            Some(vec!["pki@example.com".into(), "ops@example.com".into()])
        );
        assert!(
            AlertsForm {
                thresholds: "a week".into(),
                ..AlertsForm::default()
            }
            .to_change()
            .is_err()
        );
        Ok(())
    }
}
