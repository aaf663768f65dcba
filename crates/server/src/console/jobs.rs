//! `/system/jobs`: the scheduled jobs from the console — each one's schedule, latest run and
//! next, a form to change its schedule, a button to run it now — and the audit retention its
//! `audit_retention` job applies. Everything goes through the authority, which checks
//! `admin:system` as it does for the REST API.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::{Form, number};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::jobs::JobView;
use crate::error::{ApiError, ApiResult};
use authority::jobs::{AuditRetention, AuditRetentionChange, JobChange};

/// The page.
const PAGE: &str = "/system/jobs";

#[derive(Template)]
#[template(path = "console/jobs.html")]
struct JobsPage {
    head: Head,
    frame: Frame,
    jobs: Vec<JobView>,
    retention: AuditRetention,
    error: Option<String>,
}

/// The page, with a refusal of what was just asked.
async fn jobs_page(app: &App, visitor: &Visitor, error: Option<ApiError>) -> Response {
    let frame = visitor.frame(PAGE);
    let read = async {
        let jobs = app.authority.jobs(&visitor.principal).await?;
        let retention = app.authority.audit_retention(&visitor.principal).await?;
        Ok::<_, ApiError>((jobs, retention))
    };
    match read.await {
        Ok((jobs, retention)) => page::render(
            error.as_ref().map_or(StatusCode::OK, ApiError::status),
            &JobsPage {
                head: Head::new(),
                frame,
                jobs: jobs.into_iter().map(JobView::from).collect(),
                retention,
                error: error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/system/jobs`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    jobs_page(&app, &visitor, None).await
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
        Err(e) => jobs_page(app, visitor, Some(e)).await,
    }
}

/// A job's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct JobForm {
    enabled: Option<String>,
    schedule: String,
}

impl JobForm {
    fn to_change(&self) -> JobChange {
        JobChange {
            enabled: Some(self.enabled.is_some()),
            schedule: Some(self.schedule.trim().to_owned()),
        }
    }
}

/// POST `/system/jobs/{name}`: its schedule and switch.
pub async fn update(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(name): Path<String>,
    Form(form): Form<JobForm>,
) -> Response {
    let done = async {
        app.authority
            .update_job(&visitor.principal, &name, form.to_change())
            .await?;
        Ok(())
    };
    then_back(&app, &visitor, done, &format!("job-{name}")).await
}

/// POST `/system/jobs/{name}/run`: a run now, which a node takes within a second or two.
pub async fn run(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(name): Path<String>,
) -> Response {
    let done = async {
        app.authority
            .request_job_run(&visitor.principal, &name)
            .await?;
        Ok(())
    };
    then_back(&app, &visitor, done, &format!("job-{name}")).await
}

/// The retention form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RetentionForm {
    enabled: Option<String>,
    retention_days: String,
}

impl RetentionForm {
    fn to_change(&self) -> ApiResult<AuditRetentionChange> {
        Ok(AuditRetentionChange {
            enabled: Some(self.enabled.is_some()),
            retention_days: number("retention_days", &self.retention_days)?,
        })
    }
}

/// POST `/system/jobs/audit-retention`.
pub async fn update_retention(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<RetentionForm>,
) -> Response {
    let done = async {
        app.authority
            .update_audit_retention(&visitor.principal, form.to_change()?)
            .await?;
        Ok(())
    };
    then_back(&app, &visitor, done, "retention").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_become_the_changes_the_authority_takes() -> ApiResult<()> {
        let change = JobForm {
            enabled: None,
            schedule: " every 5m ".into(),
        }
        .to_change();
        assert_eq!(
            change.enabled,
            Some(false),
            "an unticked box switches it off"
        );
        assert_eq!(change.schedule.as_deref(), Some("every 5m"));

        let retention = RetentionForm {
            enabled: Some("1".into()),
            retention_days: "120".into(),
        }
        .to_change()?;
        assert_eq!(retention.enabled, Some(true));
        assert_eq!(retention.retention_days, Some(120));
        let blank = RetentionForm::default().to_change()?;
        assert_eq!(blank.retention_days, None, "blank keeps the period");
        assert!(
            RetentionForm {
                retention_days: "a year".into(),
                ..RetentionForm::default()
            }
            .to_change()
            .is_err()
        );
        Ok(())
    }
}
