//! `/openapi.json`: this API's OpenAPI 3.1 document.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(document))
}

/// The OpenAPI document, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "OpenAPI 3.1 document")))]
async fn document(State(app): State<App>) -> Response {
    Json(app.openapi.clone()).into_response()
}
