//! Routes outside `/api/v2`: the health aliases and the Prometheus endpoint.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::v2::health;
use crate::App;

/// The health aliases, served by every node.
pub fn health() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(health_alias))
        .routes(routes!(api_health_alias))
}

/// The Prometheus endpoint, served with the API.
pub fn metrics_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Alias of `/api/v2/health`.
#[utoipa::path(get, path = "/health", tag = "health", security(()),
    responses((status = 200, description = "Running")))]
async fn health_alias(State(app): State<App>) -> Response {
    health::status(&app)
}

/// Alias of `/api/v2/health`.
#[utoipa::path(get, path = "/api/health", tag = "health", security(()),
    responses((status = 200, description = "Running")))]
async fn api_health_alias(State(app): State<App>) -> Response {
    health::status(&app)
}

/// Prometheus metrics: requests by route and status, latency, the database pool, the OCSP
/// responder's answers and its view of the database, build info.
/// Scrape with an API key that holds `read:metrics`.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    security(("session" = ["read:metrics"]), ("api_key" = ["read:metrics"])),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
async fn metrics(State(app): State<App>) -> Response {
    let text = crate::metrics::render(&app.metrics, &app.authority, &app.settings.data_dir);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
