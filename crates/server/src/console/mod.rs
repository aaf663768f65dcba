//! The web console: pages rendered on the server from askama templates compiled into the
//! binary (`templates/console/`), progressively enhanced with htmx served from the binary
//! itself, on the same origin as `/api/v2`. It is a front door like the REST API: it calls the
//! same `authority` functions, logs in to the same session cookie, and checks each form's CSRF
//! token against the session's.
//!
//! askama rather than a run-time engine: a template that names a missing field or has a syntax
//! error fails the build, not a page in front of an operator, and rendering is plain Rust.

mod account;
mod acme;
mod api_docs;
mod assets;
mod audit;
mod backups;
mod cas;
mod certificates;
mod chart;
mod choices;
mod csrs;
mod dashboard;
mod database;
mod email;
mod est;
mod form;
mod gate;
mod groups;
mod hsm;
mod https;
mod import;
mod jobs;
pub(crate) mod login;
mod login_certificates;
pub(crate) mod page;
mod passkeys;
mod password_reset;
mod reports;
mod scep;
mod security;
mod settings;
mod sso;
mod syslog;
mod templates;
mod tools;
mod truststore;
mod users;
mod webhooks;
mod work;

pub use work::Works;

use axum::Router;
use axum::extract::DefaultBodyLimit;
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
        .route("/login/2fa", post(login::submit_second_factor))
        .route("/login/certificate", post(login::submit_certificate))
        .route("/login/ldap", post(login::submit_ldap))
        .route(
            "/forgot-password",
            get(password_reset::forgot_form).post(password_reset::forgot_submit),
        )
        .route(
            "/reset-password",
            get(password_reset::reset_form).post(password_reset::reset_submit),
        )
        .route("/logout", page(&app, None, post(login::logout)))
        .route("/acme", page(&app, Some(P::ReadAcme), get(acme::show)))
        .route(
            "/acme/settings",
            page(&app, Some(P::WriteAcme), post(acme::update_settings)),
        )
        .route(
            "/acme/profiles/new",
            page(
                &app,
                Some(P::WriteAcme),
                get(acme::new_profile).post(acme::create_profile),
            ),
        )
        .route(
            "/acme/profiles/{id}",
            page(
                &app,
                Some(P::ReadAcme),
                get(acme::show_profile).post(acme::update_profile),
            ),
        )
        .route(
            "/acme/profiles/{id}/delete",
            page(&app, Some(P::DeleteAcme), post(acme::delete_profile)),
        )
        .route(
            "/acme/profiles/{id}/eab-keys",
            page(&app, Some(P::WriteAcme), post(acme::create_eab_key)),
        )
        .route(
            "/acme/profiles/{id}/eab-keys/{key}/revoke",
            page(&app, Some(P::WriteAcme), post(acme::revoke_eab_key)),
        )
        .route(
            "/acme/accounts",
            page(&app, Some(P::ReadAcme), get(acme::accounts)),
        )
        .route(
            "/acme/accounts/{id}/deactivate",
            page(&app, Some(P::WriteAcme), post(acme::deactivate_account)),
        )
        .route(
            "/acme/orders",
            page(&app, Some(P::ReadAcme), get(acme::orders)),
        )
        .route("/enroll/est", page(&app, Some(P::ReadEst), get(est::show)))
        .route(
            "/enroll/est/settings",
            page(&app, Some(P::WriteEst), post(est::update_settings)),
        )
        .route(
            "/enroll/est/labels",
            page(&app, Some(P::WriteEst), post(est::create_label)),
        )
        .route(
            "/enroll/est/labels/{label}",
            page(&app, Some(P::WriteEst), post(est::update_label)),
        )
        .route(
            "/enroll/est/labels/{label}/delete",
            page(&app, Some(P::WriteEst), post(est::delete_label)),
        )
        .route(
            "/enroll/scep",
            page(&app, Some(P::ReadScep), get(scep::show)),
        )
        .route(
            "/enroll/scep/settings",
            page(&app, Some(P::WriteScep), post(scep::update_settings)),
        )
        .route(
            "/enroll/scep/profiles",
            page(&app, Some(P::WriteScep), post(scep::create_profile)),
        )
        .route(
            "/enroll/scep/profiles/{id}",
            page(&app, Some(P::WriteScep), post(scep::update_profile)),
        )
        .route(
            "/enroll/scep/profiles/{id}/delete",
            page(&app, Some(P::WriteScep), post(scep::delete_profile)),
        )
        .route(
            "/enroll/scep/challenge",
            page(&app, Some(P::WriteScep), post(scep::make_challenge)),
        )
        .route(
            "/enroll/scep/requests",
            page(&app, Some(P::ReadScep), get(scep::requests)),
        )
        .route(
            "/enroll/scep/requests/{id}/approve",
            page(&app, Some(P::WriteScep), post(scep::approve)),
        )
        .route(
            "/enroll/scep/requests/{id}/reject",
            page(&app, Some(P::WriteScep), post(scep::reject)),
        )
        .route("/cas", page(&app, Some(P::ReadCas), get(cas::list)))
        .route(
            "/cas/new",
            page(&app, Some(P::WriteCas), get(cas::new).post(cas::create)),
        )
        .route(
            "/cas/import",
            page(
                &app,
                Some(P::WriteCas),
                get(import::cas_form).post(import::cas),
            ),
        )
        .route("/cas/{id}", page(&app, Some(P::ReadCas), get(cas::show)))
        .route(
            "/cas/{id}/export",
            page(&app, Some(P::ReadCas), get(cas::export)),
        )
        .route(
            "/cas/{id}/crl",
            page(&app, Some(P::WriteCas), post(cas::publish_crl)),
        )
        .route(
            "/certificates",
            page(&app, Some(P::ReadCertificates), get(certificates::list)),
        )
        .route(
            "/certificates/bulk",
            page(&app, Some(P::ReadCertificates), post(certificates::bulk)),
        )
        .route(
            "/certificates/views",
            page(
                &app,
                Some(P::ReadCertificates),
                post(certificates::save_view),
            ),
        )
        .route(
            "/certificates/views/{id}/delete",
            page(
                &app,
                Some(P::ReadCertificates),
                post(certificates::delete_view),
            ),
        )
        .route("/work/{id}", page(&app, None, get(work::show)))
        .route(
            "/certificates/import",
            page(
                &app,
                Some(P::WriteCertificates),
                get(import::certificates_form).post(import::certificates),
            ),
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
        .route(
            "/certificates/{id}/records",
            page(
                &app,
                Some(P::WriteCertificates),
                post(certificates::records),
            ),
        )
        .route(
            "/certificates/{id}/locations",
            page(
                &app,
                Some(P::WriteCertificates),
                post(certificates::add_location),
            ),
        )
        .route(
            "/certificates/{id}/locations/{location_id}/delete",
            page(
                &app,
                Some(P::WriteCertificates),
                post(certificates::delete_location),
            ),
        )
        .route(
            "/reports",
            page(&app, Some(P::ReadCertificates), get(reports::show)),
        )
        .route(
            "/reports/executive-pdf",
            page(&app, Some(P::ReadCertificates), get(reports::executive)),
        )
        .route(
            "/reports/{id}/schedule",
            page(&app, Some(P::AdminSystem), post(reports::update_schedule)),
        )
        .route(
            "/reports/{id}/send-test",
            page(&app, Some(P::AdminSystem), post(reports::send_test)),
        )
        .route(
            "/reports/{id}/{format}",
            page(&app, Some(P::ReadCertificates), get(reports::download)),
        )
        .route(
            "/system/jobs",
            page(&app, Some(P::AdminSystem), get(jobs::show)),
        )
        .route(
            "/system/jobs/audit-retention",
            page(&app, Some(P::AdminSystem), post(jobs::update_retention)),
        )
        .route(
            "/system/jobs/{name}",
            page(&app, Some(P::AdminSystem), post(jobs::update)),
        )
        .route(
            "/system/jobs/{name}/run",
            page(&app, Some(P::AdminSystem), post(jobs::run)),
        )
        .route(
            "/system/webhooks",
            page(
                &app,
                Some(P::AdminSystem),
                get(webhooks::list).post(webhooks::create),
            ),
        )
        .route(
            "/system/webhooks/{id}",
            page(
                &app,
                Some(P::AdminSystem),
                get(webhooks::show).post(webhooks::update),
            ),
        )
        .route(
            "/system/webhooks/{id}/toggle",
            page(&app, Some(P::AdminSystem), post(webhooks::toggle)),
        )
        .route(
            "/system/webhooks/{id}/delete",
            page(&app, Some(P::AdminSystem), post(webhooks::delete)),
        )
        .route(
            "/system/webhooks/{id}/test",
            page(&app, Some(P::AdminSystem), post(webhooks::test)),
        )
        .route(
            "/system/webhooks/{id}/secret",
            page(
                &app,
                Some(P::AdminSystem),
                post(webhooks::regenerate_secret),
            ),
        )
        .route(
            "/system/webhooks/{id}/deliveries/{delivery}/requeue",
            page(&app, Some(P::AdminSystem), post(webhooks::requeue)),
        )
        .route(
            "/system/email",
            page(&app, Some(P::AdminSystem), get(email::show)),
        )
        .route(
            "/system/email/smtp",
            page(&app, Some(P::AdminSystem), post(email::update_smtp)),
        )
        .route(
            "/system/email/test",
            page(&app, Some(P::AdminSystem), post(email::send_test)),
        )
        .route(
            "/system/email/expiry-alerts",
            page(&app, Some(P::AdminSystem), post(email::update_alerts)),
        )
        .route(
            "/system/email/expiry-alerts/check",
            page(&app, Some(P::AdminSystem), post(email::check)),
        )
        .route(
            "/system/backup",
            page(&app, Some(P::AdminSystem), get(backups::show)),
        )
        .route(
            "/system/backup/create",
            page(&app, Some(P::AdminSystem), post(backups::create)),
        )
        .route(
            "/system/backup/restore",
            page(&app, Some(P::AdminSystem), post(backups::restore_shelved)),
        )
        .route(
            "/system/backup/upload",
            // The upload is counted against the node's own limit as it streams to disk.
            page(
                &app,
                Some(P::AdminSystem),
                post(backups::restore_uploaded).layer(DefaultBodyLimit::disable()),
            ),
        )
        .route(
            "/system/backup/schedule",
            page(&app, Some(P::AdminSystem), post(backups::update_schedule)),
        )
        .route(
            "/system/backup/{id}/download",
            page(&app, Some(P::AdminSystem), get(backups::download)),
        )
        .route(
            "/system/backup/{id}/delete",
            page(&app, Some(P::AdminSystem), post(backups::delete)),
        )
        .route(
            "/system/security",
            page(&app, Some(P::AdminSystem), get(security::show)),
        )
        .route(
            "/system/security/rotate",
            page(&app, Some(P::AdminSystem), post(security::rotate)),
        )
        .route(
            "/system/settings",
            page(
                &app,
                Some(P::AdminSystem),
                get(settings::show).post(settings::update),
            ),
        )
        .route(
            "/system/database",
            page(&app, Some(P::AdminSystem), get(database::show)),
        )
        .route(
            "/system/database/integrity-check",
            page(&app, Some(P::AdminSystem), post(database::integrity_check)),
        )
        .route(
            "/system/database/optimize",
            page(&app, Some(P::AdminSystem), post(database::optimize)),
        )
        .route(
            "/system/database/chain-repair",
            page(&app, Some(P::AdminSystem), post(database::repair_chains)),
        )
        .route(
            "/system/database/export",
            page(&app, Some(P::AdminSystem), get(database::export)),
        )
        .route(
            "/system/https",
            page(&app, Some(P::AdminSystem), get(https::show)),
        )
        .route(
            "/system/https/regenerate",
            page(&app, Some(P::AdminSystem), post(https::regenerate)),
        )
        .route(
            "/system/https/apply",
            page(&app, Some(P::AdminSystem), post(https::apply)),
        )
        .route(
            "/system/syslog",
            page(
                &app,
                Some(P::AdminSystem),
                get(syslog::show).post(syslog::update),
            ),
        )
        .route(
            "/system/syslog/test",
            page(&app, Some(P::AdminSystem), post(syslog::test)),
        )
        .route("/audit", page(&app, Some(P::ReadAudit), get(audit::list)))
        .route(
            "/audit/verify",
            page(&app, Some(P::ReadAudit), get(audit::verify)),
        )
        .route(
            "/audit/export",
            page(&app, Some(P::ReadAudit), post(audit::export)),
        )
        .route("/users", page(&app, Some(P::ReadUsers), get(users::list)))
        .route(
            "/users/new",
            page(
                &app,
                Some(P::WriteUsers),
                get(users::new).post(users::create),
            ),
        )
        .route(
            "/users/{id}",
            page(&app, Some(P::ReadUsers), get(users::show)),
        )
        .route(
            "/users/{id}/edit",
            page(&app, Some(P::WriteUsers), post(users::edit)),
        )
        .route(
            "/users/{id}/toggle",
            page(&app, Some(P::WriteUsers), post(users::toggle)),
        )
        .route(
            "/users/{id}/password",
            page(&app, Some(P::WriteUsers), post(users::password)),
        )
        .route(
            "/users/{id}/delete",
            page(&app, Some(P::DeleteUsers), post(users::delete)),
        )
        .route(
            "/groups",
            page(
                &app,
                Some(P::ReadUsers),
                get(groups::list).post(groups::create),
            ),
        )
        .route(
            "/groups/{id}",
            page(&app, Some(P::ReadUsers), get(groups::show)),
        )
        .route(
            "/groups/{id}/edit",
            page(&app, Some(P::WriteUsers), post(groups::update)),
        )
        .route(
            "/groups/{id}/delete",
            page(&app, Some(P::DeleteUsers), post(groups::delete)),
        )
        .route(
            "/groups/{id}/members",
            page(&app, Some(P::WriteUsers), post(groups::add_member)),
        )
        .route(
            "/groups/{id}/members/{user}/remove",
            page(&app, Some(P::WriteUsers), post(groups::remove_member)),
        )
        .route(
            "/hsm",
            page(&app, Some(P::ReadCas), get(hsm::show).post(hsm::create)),
        )
        .route(
            "/hsm/{id}/test",
            page(&app, Some(P::AdminSystem), post(hsm::test)),
        )
        .route(
            "/hsm/{id}/sync",
            page(&app, Some(P::AdminSystem), post(hsm::sync)),
        )
        .route(
            "/hsm/{id}/delete",
            page(&app, Some(P::AdminSystem), post(hsm::delete)),
        )
        .route(
            "/hsm/keys",
            page(&app, Some(P::AdminSystem), post(hsm::generate)),
        )
        .route(
            "/hsm/keys/{id}/delete",
            page(&app, Some(P::AdminSystem), post(hsm::delete_key)),
        )
        .route("/sso", page(&app, Some(P::ReadUsers), get(sso::list)))
        .route(
            "/sso/new",
            page(&app, Some(P::AdminSystem), get(sso::new).post(sso::create)),
        )
        .route("/sso/{id}", page(&app, Some(P::ReadUsers), get(sso::show)))
        .route(
            "/sso/{id}/edit",
            page(&app, Some(P::AdminSystem), post(sso::update)),
        )
        .route(
            "/sso/{id}/toggle",
            page(&app, Some(P::AdminSystem), post(sso::toggle)),
        )
        .route(
            "/sso/{id}/test",
            page(&app, Some(P::AdminSystem), post(sso::test)),
        )
        .route(
            "/sso/{id}/delete",
            page(&app, Some(P::AdminSystem), post(sso::delete)),
        )
        .route("/account", page(&app, None, get(account::show)))
        .route("/account/profile", page(&app, None, post(account::profile)))
        .route(
            "/account/password",
            page(&app, None, post(account::password)),
        )
        .route("/account/keys", page(&app, None, post(account::create_key)))
        .route(
            "/account/2fa/enable",
            page(&app, None, post(account::enable_second_factor)),
        )
        .route(
            "/account/2fa/confirm",
            page(&app, None, post(account::confirm_second_factor)),
        )
        .route(
            "/account/2fa/disable",
            page(&app, None, post(account::disable_second_factor)),
        )
        .route(
            "/account/2fa/recovery-codes",
            page(&app, None, post(account::regenerate_recovery_codes)),
        )
        .route(
            "/account/mtls/create",
            page(&app, None, post(login_certificates::create)),
        )
        .route(
            "/account/mtls/{id}/enable",
            page(&app, None, post(login_certificates::enable)),
        )
        .route(
            "/account/mtls/{id}/revoke",
            page(&app, None, post(login_certificates::revoke)),
        )
        .route(
            "/account/mtls/{id}/delete",
            page(&app, None, post(login_certificates::delete)),
        )
        .route(
            "/account/mtls/{id}/download",
            page(&app, None, post(login_certificates::download)),
        )
        .route(
            "/account/keys/{id}/delete",
            page(&app, None, post(account::delete_key)),
        )
        .route(
            "/account/sessions/{id}/revoke",
            page(&app, None, post(account::revoke_session)),
        )
        .route(
            "/account/sessions/revoke-others",
            page(&app, None, post(account::revoke_other_sessions)),
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
        .merge(api_docs::routes(&app))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            page::headers,
        ))
        .with_state(app)
}
