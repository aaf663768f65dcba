//! `/system/alerts/expiry`: which expiry thresholds announce certificates and CAs, to whom,
//! and a scan now.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(expiry, update_expiry))
        .routes(routes!(check))
}

/// The expiry alerts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiryAlertsView {
    /// Whether the `expiry_scan` job announces anything.
    pub enabled: bool,
    /// Days before expiry at which certificates and CAs are announced, largest first.
    pub thresholds: Vec<i64>,
    /// Who gets every alert mail, besides each certificate's owner.
    pub recipients: Vec<String>,
}

impl From<authority::jobs::ExpiryAlerts> for ExpiryAlertsView {
    fn from(a: authority::jobs::ExpiryAlerts) -> Self {
        Self {
            enabled: a.enabled,
            thresholds: a.thresholds,
            recipients: a.recipients,
        }
    }
}

/// A change to the expiry alerts; absent fields stay. `days` (one threshold) is accepted for
/// `thresholds`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpiryAlertsPatch {
    pub enabled: Option<bool>,
    /// 1 to 10 thresholds, each 1 to 365 days.
    pub thresholds: Option<Vec<i64>>,
    pub days: Option<i64>,
    /// At most 50 email addresses.
    pub recipients: Option<Vec<String>>,
}

/// The expiry alerts.
#[utoipa::path(get, path = "/system/alerts/expiry", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Expiry alerts", body = Envelope<ExpiryAlertsView>)))]
async fn expiry(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(ExpiryAlertsView::from(
        app.authority.expiry_alerts(&principal).await?,
    )))
}

/// Change the expiry alerts.
#[utoipa::path(put, path = "/system/alerts/expiry", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = ExpiryAlertsPatch,
    responses((status = 200, description = "Updated", body = Envelope<ExpiryAlertsView>),
              (status = 422, description = "Thresholds out of range or a bad address", body = ErrorBody)))]
async fn update_expiry(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(patch): ApiJson<ExpiryAlertsPatch>,
) -> ApiResult<Response> {
    let change = authority::jobs::ExpiryAlertsChange {
        enabled: patch.enabled,
        thresholds: patch.thresholds.or(patch.days.map(|d| vec![d])),
        recipients: patch.recipients,
    };
    let alerts = app
        .authority
        .update_expiry_alerts(&principal, change)
        .await?;
    Ok(ok_with(
        ExpiryAlertsView::from(alerts),
        "expiry alerts updated",
    ))
}

/// A certificate or CA announced.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeView {
    /// `certificate` or `ca`.
    pub subject_type: String,
    pub id: i64,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// The threshold crossed; 0 when it expired.
    pub threshold_days: i64,
}

impl From<authority::jobs::ExpiryNotice> for NoticeView {
    fn from(n: authority::jobs::ExpiryNotice) -> Self {
        Self {
            subject_type: n.subject_type.to_owned(),
            id: n.id,
            name: n.name,
            not_after: n.not_after,
            threshold_days: n.threshold_days,
        }
    }
}

/// What a scan did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckData {
    /// What it announced for the first time (events queued).
    pub notices: Vec<NoticeView>,
    /// Mail messages the mail server took, one per recipient.
    pub messages_sent: usize,
    pub recipients: Vec<String>,
}

/// Scan for expiring certificates and CAs now, as the `expiry_scan` job does.
#[utoipa::path(post, path = "/system/alerts/expiry/check", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "What the scan found and sent", body = Envelope<CheckData>),
              (status = 502, description = "The mail server did not take the mail (it stays queued)", body = ErrorBody)))]
async fn check(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let scan = app.authority.check_expiry(&principal).await?;
    let message = format!(
        "{} new notices, {} messages sent",
        scan.notices.len(),
        scan.messages_sent
    );
    Ok(ok_with(
        CheckData {
            notices: scan.notices.into_iter().map(NoticeView::from).collect(),
            messages_sent: scan.messages_sent,
            recipients: scan.recipients,
        },
        message,
    ))
}
