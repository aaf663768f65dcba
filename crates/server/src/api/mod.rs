//! Every route, registered and documented in one act through `utoipa_axum::routes!`.

mod acme;
mod ca_download;
mod crl_download;
mod est;
mod ocsp;
mod root;
mod scep;
pub(crate) mod v2;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::App;
use crate::openapi::ApiDoc;
use crate::settings::Settings;

/// The routes of the parts `settings` serves but the responder: `/api/v2`, `/metrics` and the
/// OpenAPI document (`api`); ACME (`acme`); EST (`est`); SCEP (`scep`); CRLs and CA
/// certificates (`crl`); always the health aliases.
pub fn routes(settings: &Settings) -> OpenApiRouter<App> {
    let mut routes = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(root::health());
    if settings.serves("api") {
        routes = routes
            .nest("/api/v2", v2::routes())
            .merge(root::metrics_routes());
    }
    if settings.serves("acme") {
        routes = routes.merge(acme::routes());
    }
    if settings.serves("est") {
        routes = routes.merge(est::routes());
    }
    if settings.serves("scep") {
        routes = routes.merge(scep::routes());
    }
    if settings.serves("crl") {
        routes = routes
            .merge(ca_download::routes())
            .merge(crl_download::routes());
    }
    routes
}

/// The OCSP responder's routes, when `settings` serves it. They are served without the layers
/// every other route passes (request ids, tracing, per-route metrics, the access guard): they
/// are public, and at tens of thousands of answers a second those layers would cost more than
/// the answers, and log a line each.
pub fn responder_routes(settings: &Settings) -> OpenApiRouter<App> {
    if settings.serves("ocsp") {
        ocsp::routes()
    } else {
        OpenApiRouter::new()
    }
}
