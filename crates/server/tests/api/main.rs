//! Integration tests: the real server on ephemeral ports, driven over HTTPS and HTTP.

mod common;
mod smoke;
