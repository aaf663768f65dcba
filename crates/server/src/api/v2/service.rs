//! `/system/service/status`: the service on the node that answers — its version, how long it
//! has served, its name among the nodes, its database, and how the scheduled jobs (shared by
//! every node) are doing.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::system_status::{database_backend, uptime, uptime_seconds};
use crate::App;
use crate::envelope::{Envelope, ok};
use crate::error::ApiResult;
use crate::extract::Caller;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(service_status))
}

/// The scheduled jobs at a glance; `/system/jobs` has each one.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobsSummary {
    pub total: usize,
    /// Running on their schedule.
    pub enabled: usize,
    /// Running now, on whichever node.
    pub running: Vec<String>,
    /// Whose latest run failed.
    pub failing: Vec<String>,
    /// The soonest scheduled run of an enabled job.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_run_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceStatus {
    /// `running`, or `degraded` when the database does not answer.
    pub status: &'static str,
    pub version: &'static str,
    /// This node's name, as job runs and leases carry it (host/process/random).
    pub node: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// `15 days, 3:42:15`.
    pub uptime: String,
    pub uptime_seconds: i64,
    /// `connected` or `unreachable`.
    pub database: &'static str,
    /// `sqlite` or `postgresql`.
    pub database_backend: &'static str,
    /// Null while the database does not answer.
    pub jobs: Option<JobsSummary>,
}

/// The service on this node: version, uptime, node name, database and scheduled jobs.
#[utoipa::path(get, path = "/system/service/status", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Status", body = Envelope<ServiceStatus>)))]
async fn service_status(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let connected = app.authority.ping().await.is_ok();
    let jobs = if connected {
        let jobs = app.authority.jobs(&principal).await?;
        let named = |keep: &dyn Fn(&authority::jobs::JobState) -> bool| {
            jobs.iter()
                .filter(|j| keep(j))
                .map(|j| j.job.name().to_owned())
                .collect::<Vec<_>>()
        };
        let outcome = |j: &authority::jobs::JobState, wanted: &str| {
            j.row.last.as_ref().is_some_and(|r| r.outcome == wanted)
        };
        Some(JobsSummary {
            total: jobs.len(),
            enabled: jobs.iter().filter(|j| j.row.enabled).count(),
            running: named(&|j| outcome(j, "running")),
            failing: named(&|j| outcome(j, "failed")),
            next_run_at: jobs
                .iter()
                .filter(|j| j.row.enabled)
                .map(|j| j.row.next_run_at)
                .min(),
        })
    } else {
        None
    };
    let up = uptime_seconds(&app);
    Ok(ok(ServiceStatus {
        status: if connected { "running" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        node: app.node.clone(),
        started_at: app.started_at,
        uptime: uptime(up),
        uptime_seconds: up,
        database: if connected {
            "connected"
        } else {
            "unreachable"
        },
        database_backend: database_backend(&app),
        jobs,
    }))
}
