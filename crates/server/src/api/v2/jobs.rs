//! `/system/jobs`: the scheduled jobs — each one's schedule, last run and next — changing a
//! schedule, and asking for a run now.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};
use authority::jobs::{JobChange, JobState};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_job, update))
        .routes(routes!(run))
}

/// A job's latest run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// The node that ran it.
    pub node: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Null while it runs, or when its node stopped before it ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub duration_ms: Option<i64>,
    /// `running`, `succeeded` or `failed`.
    pub outcome: String,
    /// What it did.
    pub summary: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A scheduled job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub name: String,
    pub description: String,
    /// Whether it runs on its schedule (a run asked for runs anyway).
    pub enabled: bool,
    /// `every 90s`, `every 5m`, `every 2h`, `daily HH:MM` or `weekly DAY HH:MM` (UTC).
    pub schedule: String,
    /// When it is due next by its schedule.
    #[serde(with = "time::serde::rfc3339")]
    pub next_run_at: OffsetDateTime,
    /// When a run was asked for that has not ended yet.
    #[serde(with = "time::serde::rfc3339::option")]
    pub run_requested_at: Option<OffsetDateTime>,
    /// The latest run; null before the first.
    pub last_run: Option<RunView>,
    /// Runs so far.
    pub runs: i64,
    /// Of them, how many failed.
    pub failures: i64,
}

impl From<JobState> for JobView {
    fn from(s: JobState) -> Self {
        Self {
            name: s.job.name().to_owned(),
            description: s.job.description().to_owned(),
            enabled: s.row.enabled,
            schedule: s.row.schedule,
            next_run_at: s.row.next_run_at,
            run_requested_at: s.row.run_requested_at,
            last_run: s.row.last.map(|r| RunView {
                node: r.node,
                started_at: r.started_at,
                finished_at: r.finished_at,
                duration_ms: r.duration_ms,
                outcome: r.outcome,
                summary: r.summary,
                error: r.error,
            }),
            runs: s.row.runs,
            failures: s.row.failures,
        }
    }
}

/// What to change in a job; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobPatch {
    pub enabled: Option<bool>,
    /// `every 90s`, `every 5m`, `every 2h` (1 second to 31 days), `daily HH:MM` or
    /// `weekly DAY HH:MM` with DAY `mon` to `sun`; times are UTC.
    pub schedule: Option<String>,
}

/// The scheduled jobs: schedule, latest run (duration, outcome, error) and next run.
#[utoipa::path(get, path = "/system/jobs", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Jobs", body = Envelope<Vec<JobView>>)))]
async fn list(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let jobs = app.authority.jobs(&principal).await?;
    Ok(ok(jobs.into_iter().map(JobView::from).collect::<Vec<_>>()))
}

/// One scheduled job.
#[utoipa::path(get, path = "/system/jobs/{name}", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("name" = String, Path, description = "The job's name")),
    responses((status = 200, description = "Job", body = Envelope<JobView>),
              (status = 404, description = "No such job", body = ErrorBody)))]
async fn get_job(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(ok(JobView::from(
        app.authority.job(&principal, &name).await?,
    )))
}

/// Change a job's schedule or switch it off and on; its next run follows the new schedule.
#[utoipa::path(patch, path = "/system/jobs/{name}", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("name" = String, Path, description = "The job's name")),
    request_body = JobPatch,
    responses((status = 200, description = "Updated", body = Envelope<JobView>),
              (status = 404, description = "No such job", body = ErrorBody),
              (status = 422, description = "A schedule that does not parse", body = ErrorBody)))]
async fn update(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    ApiJson(patch): ApiJson<JobPatch>,
) -> ApiResult<Response> {
    let change = JobChange {
        enabled: patch.enabled,
        schedule: patch.schedule,
    };
    let job = app.authority.update_job(&principal, &name, change).await?;
    Ok(ok_with(JobView::from(job), "job updated"))
}

/// Run a job now: one node takes it within a second or two (after the current run, if it is
/// running). Answers 202; the job's `last_run` tells how it went.
#[utoipa::path(post, path = "/system/jobs/{name}/run", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("name" = String, Path, description = "The job's name")),
    responses((status = 202, description = "Asked for", body = Envelope<JobView>),
              (status = 404, description = "No such job", body = ErrorBody)))]
async fn run(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let job = app.authority.request_job_run(&principal, &name).await?;
    Ok((
        StatusCode::ACCEPTED,
        ok_with(JobView::from(job), "run asked for"),
    )
        .into_response())
}
