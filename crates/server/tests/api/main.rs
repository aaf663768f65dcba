//! Integration tests: the real server on ephemeral ports, driven over HTTPS and HTTP.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod access_walk;
mod account;
mod acme;
mod acme_admin;
mod acme_clients;
mod acme_jws;
mod acme_peers;
mod audit_chain;
mod auth;
mod bad_input;
mod bulk;
mod cas;
mod certificates;
mod common;
mod console;
mod console_account;
mod console_acme;
mod console_audit;
mod console_browser;
mod console_cas;
mod console_certificates;
mod console_csrs;
mod console_email;
mod console_est;
mod console_jobs;
mod console_scep;
mod console_templates;
mod console_tools;
mod console_truststore;
mod console_users;
mod console_webhooks;
mod credential_guards;
mod crl;
mod csrs;
mod dashboard;
mod email_alerts;
mod est;
mod faults;
mod imports;
mod issuance_guards;
mod jobs;
mod ocsp;
mod ocsp_outage;
mod ops;
mod scep;
mod smoke;
mod templates;
mod tools;
mod truststore;
mod user_admin;
mod webhooks;
