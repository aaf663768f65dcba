//! Integration tests: the real server on ephemeral ports, driven over HTTPS and HTTP.

mod access_walk;
mod account;
mod audit_chain;
mod auth;
mod bad_input;
mod cas;
mod certificates;
mod common;
mod ops;
mod smoke;
mod tools;
mod user_admin;
