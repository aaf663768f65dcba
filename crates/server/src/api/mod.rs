//! Every route, registered and documented in one act through `utoipa_axum::routes!`.

mod ca_download;
mod root;
mod v2;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::App;
use crate::openapi::ApiDoc;

/// The whole API: `/api/v2`, the health aliases, `/metrics` and the public CA certificates.
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v2", v2::routes())
        .merge(root::routes())
        .merge(ca_download::routes())
}
