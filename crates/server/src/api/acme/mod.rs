//! The ACME front door (RFC 8555, with RFC 8737 tls-alpn-01, RFC 8738 IP identifiers and
//! RFC 9773 renewal information), on the HTTPS listener. One directory per profile: the
//! default one at `/acme/directory`, every profile at `/acme/{profile}/directory`, and each
//! profile's resources under `/acme/{profile}/`. Requests are translated for the registration
//! authority; answers and problems are rendered here.

mod accounts;
mod authorizations;
mod certificates;
mod challenges;
mod context;
mod directory;
mod jws;
mod orders;
mod problem;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(directory::default_directory))
        .routes(routes!(directory::directory))
        .routes(routes!(directory::nonce_head, directory::nonce_get))
        .routes(routes!(directory::renewal_info))
        .routes(routes!(accounts::new_account))
        .routes(routes!(accounts::account))
        .routes(routes!(accounts::account_orders))
        .routes(routes!(accounts::key_change))
        .routes(routes!(orders::new_order))
        .routes(routes!(orders::order))
        .routes(routes!(orders::finalize))
        .routes(routes!(authorizations::authorization))
        .routes(routes!(challenges::challenge))
        .routes(routes!(certificates::certificate))
        .routes(routes!(certificates::revoke))
}
