//! `/health`: liveness and readiness for load balancers, with no authentication.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(live))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthData {
    /// Always `ok` while the process serves.
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
    /// Unix time the service started.
    pub started_at: f64,
    pub websocket: bool,
}

/// The service is running.
pub fn status(app: &App) -> Response {
    let started = app.started_at.unix_timestamp_nanos() as f64 / 1e9;
    Json(HealthData {
        status: "ok",
        service: "certmint",
        version: env!("CARGO_PKG_VERSION"),
        started_at: started,
        websocket: false,
    })
    .into_response()
}

/// Service status.
#[utoipa::path(get, path = "/health", tag = "health", security(()),
    responses((status = 200, description = "Running", body = HealthData)))]
async fn health(State(app): State<App>) -> Response {
    status(&app)
}

/// Ready to serve: the database answers, the data directory is writable, and (on SQLite, whose
/// database lives there) its disk has room for writes.
#[utoipa::path(get, path = "/health/ready", tag = "health", security(()),
    responses((status = 200, description = "Ready"), (status = 503, description = "Not ready, with the failing check's message")))]
async fn ready(State(app): State<App>) -> Response {
    let database = app.authority.ping().await;
    let filesystem = app
        .settings
        .data_dir
        .metadata()
        .map(|m| m.is_dir() && !m.permissions().readonly());
    let free = crate::disk::free_bytes(&app.settings.data_dir);
    let disk_full =
        app.authority.store_is_sqlite() && free.is_some_and(|f| f < crate::disk::MIN_FREE_BYTES);
    let check = |fine: bool, problem: &str| {
        if fine {
            json!({ "status": "ok" })
        } else {
            json!({ "status": "error", "message": problem })
        }
    };
    let fine = database.is_ok() && filesystem.as_ref().is_ok_and(|f| *f) && !disk_full;
    let body = json!({
        "status": if fine { "ready" } else { "not_ready" },
        "checks": {
            "database": check(database.is_ok(), "the database does not answer"),
            "filesystem": check(
                filesystem.is_ok_and(|f| f),
                "the data directory is missing or read-only",
            ),
            "disk": {
                "free_bytes": free,
                "status": if disk_full { "error" } else { "ok" },
                "message": disk_full.then_some(
                    "the data directory's disk is full: writes are refused until space is freed",
                ),
            },
        }
    });
    let code = if fine {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// The process is alive, whatever the state of its dependencies.
#[utoipa::path(get, path = "/health/live", tag = "health", security(()),
    responses((status = 200, description = "Alive")))]
async fn live() -> Response {
    Json(json!({ "status": "alive", "service": "certmint" })).into_response()
}
