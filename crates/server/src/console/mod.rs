//! The web console: pages rendered on the server from askama templates compiled into the
//! binary (`templates/console/`), progressively enhanced with htmx served from the binary
//! itself, on the same origin as `/api/v2`. It is a front door like the REST API: it calls the
//! same `authority` functions, logs in to the same session cookie, and checks each form's CSRF
//! token against the session's.
//!
//! askama rather than a run-time engine: a template that names a missing field or has a syntax
//! error fails the build, not a page in front of an operator, and rendering is plain Rust.

mod assets;
mod certificates;
mod csrs;
mod dashboard;
mod form;
mod gate;
mod login;
mod page;
mod templates;
mod tools;
mod truststore;

use axum::Router;
use axum::routing::{get, post};

use authority::Permission as P;

use crate::App;
use gate::page;

/// The console's routes, with their headers (CSP, no-store); the caller adds the ones every
/// answer carries.
pub fn routes(app: App) -> Router {
    Router::new()
        .route("/", page(&app, None, get(dashboard::show)))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", page(&app, None, post(login::logout)))
        .route(
            "/certificates",
            page(&app, Some(P::ReadCertificates), get(certificates::list)),
        )
        .route(
            "/certificates/new",
            page(
                &app,
                Some(P::WriteCertificates),
                get(certificates::new).post(certificates::create),
            ),
        )
        .route(
            "/certificates/{id}",
            page(&app, Some(P::ReadCertificates), get(certificates::show)),
        )
        .route(
            "/certificates/{id}/export",
            page(&app, Some(P::ReadCertificates), post(certificates::export)),
        )
        .route(
            "/certificates/{id}/revoke",
            page(
                &app,
                Some(P::DeleteCertificates),
                post(certificates::revoke),
            ),
        )
        .route(
            "/certificates/{id}/renew",
            page(&app, Some(P::WriteCertificates), post(certificates::renew)),
        )
        .route("/csrs", page(&app, Some(P::ReadCsrs), get(csrs::list)))
        .route(
            "/csrs/new",
            page(&app, Some(P::WriteCsrs), get(csrs::new).post(csrs::create)),
        )
        .route("/csrs/{id}", page(&app, Some(P::ReadCsrs), get(csrs::show)))
        .route(
            "/csrs/{id}/sign",
            // Signing issues a certificate: the REST route asks the same.
            page(&app, Some(P::WriteCertificates), post(csrs::sign)),
        )
        .route(
            "/csrs/{id}/delete",
            page(&app, Some(P::DeleteCsrs), post(csrs::delete)),
        )
        .route(
            "/templates",
            page(&app, Some(P::ReadTemplates), get(templates::list)),
        )
        .route(
            "/templates/new",
            page(
                &app,
                Some(P::WriteTemplates),
                get(templates::new).post(templates::create),
            ),
        )
        .route(
            "/templates/{id}",
            page(&app, Some(P::ReadTemplates), get(templates::show)),
        )
        .route(
            "/templates/{id}/edit",
            page(
                &app,
                Some(P::WriteTemplates),
                get(templates::edit).post(templates::update),
            ),
        )
        .route(
            "/templates/{id}/delete",
            page(&app, Some(P::DeleteTemplates), post(templates::delete)),
        )
        .route(
            "/truststore",
            page(&app, Some(P::ReadTruststore), get(truststore::list)),
        )
        .route(
            "/truststore/new",
            page(
                &app,
                Some(P::WriteTruststore),
                get(truststore::new).post(truststore::create),
            ),
        )
        .route(
            "/truststore/{id}",
            page(&app, Some(P::ReadTruststore), get(truststore::show)),
        )
        .route(
            "/truststore/{id}/delete",
            page(&app, Some(P::DeleteTruststore), post(truststore::delete)),
        )
        // Each tool needs what its REST route needs (`api/v2/tools.rs`).
        .route("/tools", page(&app, None, get(tools::show)))
        .route(
            "/tools/decode-cert",
            page(&app, Some(P::ReadCertificates), post(tools::decode_cert)),
        )
        .route(
            "/tools/decode-csr",
            page(&app, Some(P::ReadCsrs), post(tools::decode_csr)),
        )
        .route(
            "/tools/match-keys",
            page(&app, Some(P::ReadCertificates), post(tools::match_keys)),
        )
        .route(
            "/tools/convert",
            page(&app, Some(P::ReadCertificates), post(tools::convert)),
        )
        .route("/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            page::headers,
        ))
        .with_state(app)
}
