//! `/api/v2`, one module per resource group of the UCM reference.

pub(crate) mod account;
pub(crate) mod acme;
pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod audit_syslog;
mod auth;
mod auto_renewal;
pub(crate) mod backup;
pub(crate) mod cas;
pub(crate) mod certificate_bulk;
pub(crate) mod certificate_metadata;
pub(crate) mod certificate_views;
pub(crate) mod certificates;
pub(crate) mod chain_repair;
mod check_ssl;
pub(crate) mod crl;
pub(crate) mod csrs;
pub(crate) mod dashboard;
pub(crate) mod email;
pub(crate) mod est;
pub(crate) mod general_settings;
pub(crate) mod groups;
pub mod health;
pub(crate) mod hsm;
pub(crate) mod https;
pub(crate) mod import;
pub(crate) mod jobs;
mod ldap;
mod lint;
pub(crate) mod login_certificates;
pub(crate) mod ocsp;
mod openapi;
pub(crate) mod passkeys;
mod rbac;
mod reports;
pub(crate) mod scep;
mod search;
pub(crate) mod security;
mod security_rate_limit;
mod service;
pub(crate) mod sso;
mod stats;
pub(crate) mod system_db;
mod system_status;
pub(crate) mod templates;
pub(crate) mod tools;
pub(crate) mod truststore;
mod two_factor;
mod updates;
pub(crate) mod users;
pub(crate) mod views;
pub(crate) mod webhooks;

use utoipa_axum::router::OpenApiRouter;

use crate::App;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .merge(auth::routes())
        .merge(account::routes())
        .merge(two_factor::routes())
        .merge(passkeys::routes())
        .merge(groups::routes())
        .merge(sso::routes())
        .merge(hsm::routes())
        .merge(ldap::routes())
        .merge(login_certificates::routes())
        .merge(users::routes())
        .merge(rbac::routes())
        .merge(cas::routes())
        .merge(lint::routes())
        .merge(certificates::routes())
        .merge(auto_renewal::routes())
        .merge(certificate_bulk::routes())
        .merge(certificate_metadata::routes())
        .merge(certificate_views::routes())
        .merge(csrs::routes())
        .merge(crl::routes())
        .merge(acme::routes())
        .merge(est::routes())
        .merge(scep::routes())
        .merge(ocsp::routes())
        .merge(templates::routes())
        .merge(tools::routes())
        .merge(check_ssl::routes())
        .merge(truststore::routes())
        .merge(dashboard::routes())
        .merge(system_status::routes())
        .merge(jobs::routes())
        .merge(system_db::routes())
        .merge(chain_repair::routes())
        .merge(https::routes())
        .merge(service::routes())
        .merge(updates::routes())
        .merge(security::routes())
        .merge(backup::routes())
        .merge(security_rate_limit::routes())
        .merge(alerts::routes())
        .merge(general_settings::routes())
        .merge(email::routes())
        .merge(webhooks::routes())
        .merge(reports::routes())
        .merge(stats::routes())
        .merge(search::routes())
        .merge(audit::routes())
        .merge(audit_syslog::routes())
        .merge(health::routes())
        .merge(openapi::routes())
}

/// `endpoints` served under each of `prefixes` (the reference gives some groups at two
/// places), each copy's operation ids prefixed with its place after the first, so they stay
/// unique.
fn aliased(prefixes: &[&str], endpoints: fn() -> OpenApiRouter<App>) -> OpenApiRouter<App> {
    let mut all = OpenApiRouter::new();
    for (n, prefix) in prefixes.iter().enumerate() {
        let mut copy = if prefix.is_empty() {
            endpoints()
        } else {
            OpenApiRouter::new().nest(prefix, endpoints())
        };
        if n > 0 {
            let place = prefix.trim_start_matches('/').replace('/', "_");
            for item in copy.get_openapi_mut().paths.paths.values_mut() {
                let operations = [
                    &mut item.get,
                    &mut item.put,
                    &mut item.post,
                    &mut item.delete,
                    &mut item.patch,
                ];
                for op in operations.into_iter().flatten() {
                    op.operation_id = op.operation_id.take().map(|id| format!("{place}_{id}"));
                }
            }
        }
        all = all.merge(copy);
    }
    all
}
