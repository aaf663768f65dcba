//! `/api/docs`: the REST API's OpenAPI document (`/api/v2/openapi.json`) rendered by Swagger
//! UI, served from the binary on the nodes that serve the API. Public, as the document is; the
//! console's headers apply, its Content-Security-Policy included (the viewer starts from a
//! script file, and asks no validator on the internet about the document).

use askama::Template;
use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::{assets, page};
use crate::App;

#[derive(Template)]
#[template(path = "console/api_docs.html")]
struct ApiDocs {
    css: String,
    bundle: String,
    boot: String,
    document: &'static str,
}

/// `/api/docs`, when `app` serves the API.
pub fn routes(app: &App) -> Router<App> {
    if app.settings.serves("api") {
        Router::new().route("/api/docs", get(show))
    } else {
        Router::new()
    }
}

/// GET `/api/docs`.
async fn show() -> Response {
    page::render(
        StatusCode::OK,
        &ApiDocs {
            css: assets::url("swagger-ui"),
            bundle: assets::url("swagger-ui-bundle"),
            boot: assets::url("api-docs"),
            document: "/api/v2/openapi.json",
        },
    )
}
