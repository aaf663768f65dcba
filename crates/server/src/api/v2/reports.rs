//! `/reports`: the report types, generating one as JSON, CSV or PDF, the executive PDF, the
//! delivery schedules and a test delivery.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, attachment, done, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};
use authority::reports::{ReportFormat, ReportParams, ReportSchedule, ReportType, ScheduleChange};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(types))
        .routes(routes!(generate))
        .routes(routes!(executive_pdf))
        .routes(routes!(schedules, update_schedule))
        .routes(routes!(send_test))
}

/// A report type.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportTypeView {
    /// The key to ask for it by.
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// The parameters it takes, when it takes any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<&'static str>>,
}

impl From<ReportType> for ReportTypeView {
    fn from(t: ReportType) -> Self {
        Self {
            id: t.id(),
            name: t.name(),
            description: t.description(),
            params: (!t.params().is_empty()).then(|| t.params().to_vec()),
        }
    }
}

/// The report types.
#[utoipa::path(get, path = "/reports/types", tag = "reports",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Report types", body = Envelope<Vec<ReportTypeView>>)))]
async fn types(Caller(_principal): Caller) -> ApiResult<Response> {
    Ok(ok(ReportType::ALL
        .into_iter()
        .map(ReportTypeView::from)
        .collect::<Vec<_>>()))
}

/// A report's parameters.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamsBody {
    /// Look-ahead for `expiring_certificates`, look-back for `audit_summary`: 1 to 3650 days
    /// (default 30).
    pub days: Option<i64>,
}

/// What report to generate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    /// One of the keys of `/reports/types`.
    pub report_type: String,
    #[serde(default)]
    pub params: ParamsBody,
    /// `json` (default: the report in the envelope), `csv` or `pdf` (a file to save).
    pub format: Option<String>,
}

/// A generated report (JSON format). `total` counts every match; `records` holds at most
/// 10,000 of them, and `truncated` says when some were left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    pub report_type: String,
    pub generated_at: String,
    pub params: serde_json::Value,
    pub records: Vec<serde_json::Value>,
    pub total: i64,
    pub truncated: bool,
}

/// Generate a report: JSON in the envelope, or CSV or PDF as a file to save. Reading a report
/// needs the permission of what it shows: `read:certificates`, `read:cas` (ca_hierarchy) or
/// `read:audit` (audit_summary).
#[utoipa::path(post, path = "/reports/generate", tag = "reports",
    security(("session" = []), ("api_key" = [])),
    request_body = GenerateBody,
    responses((status = 200, description = "The report (JSON), or a CSV or PDF file", body = Envelope<ReportView>),
              (status = 403, description = "Without the report's permission", body = ErrorBody),
              (status = 422, description = "Unknown report type or format, or days out of range", body = ErrorBody)))]
async fn generate(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<GenerateBody>,
) -> ApiResult<Response> {
    let report_type: ReportType = body.report_type.parse()?;
    let format: ReportFormat = body.format.as_deref().unwrap_or("json").parse()?;
    let params = ReportParams::new(body.params.days)?;
    let report = app
        .authority
        .generate_report(&principal, report_type, params)
        .await?;
    if format == ReportFormat::Json {
        return Ok(ok(report.to_json()));
    }
    let organization = app.authority.report_organization().await?;
    let file = report.render(format, &organization)?;
    Ok(attachment(file.content_type, &file.filename, file.bytes))
}

/// The executive report: a PDF with a cover page, summary metrics, risk assessment, inventory
/// breakdown, compliance status, lifecycle analysis, CA overview and recommendations.
#[utoipa::path(get, path = "/reports/executive-pdf", tag = "reports",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    responses((status = 200, description = "The PDF, as an attachment", content_type = "application/pdf"),
              (status = 403, description = "Without read:certificates", body = ErrorBody)))]
async fn executive_pdf(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let pdf = app.authority.executive_report(&principal).await?;
    let name = format!("executive-report-{}.pdf", app.authority.now().date());
    Ok(attachment("application/pdf", &name, pdf))
}

/// A report's delivery schedule.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    pub enabled: bool,
    /// `daily`, `weekly` or `monthly`.
    pub frequency: String,
    /// `HH:MM`, 24-hour, UTC.
    pub time: String,
    /// For weekly: 0 (Monday) to 6 (Sunday).
    pub day_of_week: i64,
    /// For monthly: 1 to 28.
    pub day_of_month: i64,
    /// At most 50 email addresses.
    pub recipients: Vec<String>,
    /// `csv`, `json` or `pdf`.
    pub format: String,
}

impl From<ReportSchedule> for ScheduleView {
    fn from(s: ReportSchedule) -> Self {
        Self {
            enabled: s.enabled,
            frequency: s.frequency.as_str().to_owned(),
            time: s.time,
            day_of_week: i64::from(s.day_of_week),
            day_of_month: i64::from(s.day_of_month),
            recipients: s.recipients,
            format: s.format,
        }
    }
}

/// Every report type's schedule, by report type.
#[utoipa::path(get, path = "/reports/schedule", tag = "reports",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Schedules by report type", body = Envelope<std::collections::BTreeMap<String, ScheduleView>>)))]
async fn schedules(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let all = app.authority.report_schedules(&principal).await?;
    Ok(ok(all
        .into_iter()
        .map(|(t, s)| (t.id().to_owned(), ScheduleView::from(s)))
        .collect::<std::collections::BTreeMap<_, _>>()))
}

/// A schedule as given.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub enabled: bool,
    /// `daily`, `weekly` or `monthly`.
    pub frequency: String,
    /// `HH:MM`, 24-hour, UTC.
    pub time: String,
    /// For weekly: 0 (Monday) to 6 (Sunday); default 0.
    pub day_of_week: Option<i64>,
    /// For monthly: 1 to 28; default 1.
    pub day_of_month: Option<i64>,
    /// At most 50 email addresses; at least one when enabled.
    pub recipients: Vec<String>,
    /// `csv`, `json` or `pdf`.
    pub format: String,
}

/// A schedule change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    pub report_type: String,
    pub config: ScheduleConfig,
}

/// Set a report type's delivery schedule. The report goes out by mail at each scheduled time
/// from now on, once per time whichever node runs the `report_delivery` job.
#[utoipa::path(put, path = "/reports/schedule", tag = "reports",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = ScheduleBody,
    responses((status = 200, description = "The schedule", body = Envelope<ScheduleView>),
              (status = 422, description = "A bad report type, frequency, time, day, address or format, or over 50 recipients", body = ErrorBody)))]
async fn update_schedule(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> ApiResult<Response> {
    let report_type: ReportType = body.report_type.parse()?;
    let c = body.config;
    let change = ScheduleChange {
        enabled: c.enabled,
        frequency: c.frequency,
        time: c.time,
        day_of_week: c.day_of_week,
        day_of_month: c.day_of_month,
        recipients: c.recipients,
        format: c.format,
    };
    let schedule = app
        .authority
        .update_report_schedule(&principal, report_type, change)
        .await?;
    Ok(ok_with(ScheduleView::from(schedule), "schedule saved"))
}

/// A test delivery.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendTestBody {
    pub report_type: String,
    /// The address to send the report to.
    pub recipient: String,
}

/// Generate a report now and mail it to one address, in its schedule's format, through the
/// stored mail settings.
#[utoipa::path(post, path = "/reports/send-test", tag = "reports",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = SendTestBody,
    responses((status = 200, description = "The mail server took it", body = Envelope<Option<String>>),
              (status = 422, description = "A bad report type or address, or mail not set up", body = ErrorBody),
              (status = 503, description = "The mail server did not take it", body = ErrorBody)))]
async fn send_test(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<SendTestBody>,
) -> ApiResult<Response> {
    let report_type: ReportType = body.report_type.parse()?;
    app.authority
        .send_test_report(&principal, report_type, &body.recipient)
        .await?;
    Ok(done(format!("test report sent to {}", body.recipient)))
}
