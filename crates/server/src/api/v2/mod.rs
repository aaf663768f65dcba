//! `/api/v2`, one module per resource group of the UCM reference.

mod account;
mod audit;
mod auth;
mod cas;
mod certificates;
pub mod health;
mod openapi;
mod rbac;
mod tools;
mod users;
mod views;

use utoipa_axum::router::OpenApiRouter;

use crate::App;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .merge(auth::routes())
        .merge(account::routes())
        .merge(users::routes())
        .merge(rbac::routes())
        .merge(cas::routes())
        .merge(certificates::routes())
        .merge(tools::routes())
        .merge(audit::routes())
        .merge(health::routes())
        .merge(openapi::routes())
}
