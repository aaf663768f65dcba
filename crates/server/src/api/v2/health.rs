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

/// Ready to serve: the database answers (and the data directory is writable, on SQLite).
#[utoipa::path(get, path = "/health/ready", tag = "health", security(()),
    responses((status = 200, description = "Ready"), (status = 503, description = "Not ready")))]
async fn ready(State(app): State<App>) -> Response {
    let database = app.authority.ping().await;
    let filesystem = app
        .settings
        .data_dir
        .metadata()
        .map(|m| m.is_dir() && !m.permissions().readonly());
    let ok = |fine: bool| json!({ "status": if fine { "ok" } else { "error" } });
    let fine = database.is_ok() && filesystem.as_ref().is_ok_and(|f| *f);
    let body = json!({
        "status": if fine { "ready" } else { "not_ready" },
        "checks": {
            "database": ok(database.is_ok()),
            "filesystem": ok(filesystem.is_ok_and(|f| f)),
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
