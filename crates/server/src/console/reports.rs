//! `/reports`: the reports from the console — each type to download as JSON, CSV or PDF, the
//! executive PDF, and (for `admin:system`) each type's delivery schedule and a test mail.
//! Everything goes through the authority, which checks each report's permission as it does
//! for the REST API.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::{Form, number};
use super::page::{self, Frame, Head, Visitor};
use crate::App;
use crate::envelope::attachment;
use crate::error::{ApiError, ApiResult};
use authority::Permission;
use authority::reports::{
    DEFAULT_DAYS, ReportFormat, ReportParams, ReportSchedule, ReportType, ScheduleChange,
};

/// The page.
const PAGE: &str = "/reports";

/// A report type as the page lists it, with its schedule when the visitor may see them.
struct Row {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    takes_days: bool,
    schedule: Option<ScheduleRow>,
}

/// A schedule as its form shows it.
struct ScheduleRow {
    enabled: bool,
    frequency: &'static str,
    time: String,
    weekdays: Vec<(u8, &'static str, bool)>,
    day_of_month: u8,
    recipients: String,
    format: String,
}

/// The days a weekly schedule may fall on, 0 being Monday.
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

impl From<ReportSchedule> for ScheduleRow {
    fn from(s: ReportSchedule) -> Self {
        Self {
            enabled: s.enabled,
            frequency: s.frequency.as_str(),
            time: s.time,
            weekdays: (0u8..)
                .zip(WEEKDAYS)
                .map(|(n, day)| (n, day, n == s.day_of_week))
                .collect(),
            day_of_month: s.day_of_month,
            recipients: s.recipients.join(", "),
            format: s.format,
        }
    }
}

#[derive(Template)]
#[template(path = "console/reports.html")]
struct ReportsPage {
    head: Head,
    frame: Frame,
    rows: Vec<Row>,
    default_days: i64,
    error: Option<String>,
    notice: Option<String>,
}

/// The page, with a refusal of what was just asked or a note of what was done.
async fn reports_page(
    app: &App,
    visitor: &Visitor,
    error: Option<ApiError>,
    notice: Option<String>,
) -> Response {
    let frame = visitor.frame(PAGE);
    let schedules = if visitor.principal.can(Permission::AdminSystem) {
        match app.authority.report_schedules(&visitor.principal).await {
            Ok(s) => Some(s),
            Err(e) => return page::refused(frame, &e.into()),
        }
    } else {
        None
    };
    let rows = ReportType::ALL
        .into_iter()
        .map(|t| Row {
            id: t.id(),
            name: t.name(),
            description: t.description(),
            takes_days: !t.params().is_empty(),
            schedule: schedules
                .as_ref()
                .and_then(|all| all.iter().find(|(k, _)| *k == t))
                .map(|(_, s)| ScheduleRow::from(s.clone())),
        })
        .collect();
    page::render(
        error.as_ref().map_or(StatusCode::OK, ApiError::status),
        &ReportsPage {
            head: Head::new(),
            frame,
            rows,
            default_days: DEFAULT_DAYS,
            error: error.map(|e| e.message().to_owned()),
            notice,
        },
    )
}

/// GET `/reports`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    reports_page(&app, &visitor, None, None).await
}

/// `?days=` of a download.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DownloadQuery {
    days: String,
}

/// GET `/reports/{type}/{format}`: the report as a file.
pub async fn download(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path((id, format)): Path<(String, String)>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    let file = async {
        let report_type: ReportType = id.parse()?;
        let format: ReportFormat = format.parse()?;
        let params = ReportParams::new(number("days", &query.days)?)?;
        let report = app
            .authority
            .generate_report(&visitor.principal, report_type, params)
            .await?;
        let organization = app.authority.report_organization().await?;
        let file = report.render(format, &organization)?;
        Ok::<_, ApiError>(attachment(file.content_type, &file.filename, file.bytes))
    };
    match file.await {
        Ok(response) => response,
        Err(e) => reports_page(&app, &visitor, Some(e), None).await,
    }
}

/// GET `/reports/executive-pdf`.
pub async fn executive(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    match app.authority.executive_report(&visitor.principal).await {
        Ok(pdf) => attachment(
            "application/pdf",
            &format!("executive-report-{}.pdf", app.authority.now().date()),
            pdf,
        ),
        Err(e) => reports_page(&app, &visitor, Some(e.into()), None).await,
    }
}

/// A schedule's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ScheduleForm {
    enabled: Option<String>,
    frequency: String,
    time: String,
    day_of_week: String,
    day_of_month: String,
    /// Addresses separated by commas, spaces or lines.
    recipients: String,
    format: String,
}

impl ScheduleForm {
    fn to_change(&self) -> ApiResult<ScheduleChange> {
        Ok(ScheduleChange {
            enabled: self.enabled.is_some(),
            frequency: self.frequency.trim().to_owned(),
            time: self.time.trim().to_owned(),
            day_of_week: number("day_of_week", &self.day_of_week)?,
            day_of_month: number("day_of_month", &self.day_of_month)?,
            recipients: self
                .recipients
                .split([',', ';', ' ', '\n', '\r', '\t'])
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
            format: self.format.trim().to_owned(),
        })
    }
}

/// POST `/reports/{type}/schedule`.
pub async fn update_schedule(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    Form(form): Form<ScheduleForm>,
) -> Response {
    let done = async {
        let report_type: ReportType = id.parse()?;
        app.authority
            .update_report_schedule(&visitor.principal, report_type, form.to_change()?)
            .await?;
        Ok::<_, ApiError>(())
    };
    match done.await {
        Ok(()) => Redirect::to(&format!("{PAGE}#schedule-{id}")).into_response(),
        Err(e) => reports_page(&app, &visitor, Some(e), None).await,
    }
}

/// The test mail's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SendTestForm {
    recipient: String,
}

/// POST `/reports/{type}/send-test`.
pub async fn send_test(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    Form(form): Form<SendTestForm>,
) -> Response {
    let done = async {
        let report_type: ReportType = id.parse()?;
        app.authority
            .send_test_report(&visitor.principal, report_type, form.recipient.trim())
            .await?;
        Ok::<_, ApiError>(())
    };
    match done.await {
        Ok(()) => {
            let note = format!("Test report sent to {}.", form.recipient.trim());
            reports_page(&app, &visitor, None, Some(note)).await
        }
        Err(e) => reports_page(&app, &visitor, Some(e), None).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_form_becomes_the_change_the_authority_takes() -> ApiResult<()> {
        let change = ScheduleForm {
            enabled: Some("1".into()),
            frequency: " weekly ".into(),
            time: "08:00".into(),
            day_of_week: "2".into(),
            day_of_month: String::new(),
            recipients: "a@example.com, b@example.com\nc@example.com".into(),
            format: "pdf".into(),
        }
        .to_change()?;
        assert!(change.enabled);
        assert_eq!(change.frequency, "weekly");
        assert_eq!(change.day_of_week, Some(2));
        assert_eq!(change.day_of_month, None);
        assert_eq!(change.recipients.len(), 3);
        assert!(
            ScheduleForm {
                day_of_week: "Monday".into(),
                ..ScheduleForm::default()
            }
            .to_change()
            .is_err()
        );
        Ok(())
    }
}
