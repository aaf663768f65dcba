//! `/tools/check-ssl`: what certificate chain a TLS server presents. The connection and the
//! parsing are the authority's; this only translates.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(check_ssl))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSslInput {
    /// A host name or an IP address.
    pub hostname: String,
    /// Default 443.
    #[serde(default = "https_port")]
    pub port: u16,
}

fn https_port() -> u16 {
    443
}

/// A certificate of the presented chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainCertificate {
    pub subject: String,
    pub issuer: String,
    /// Hex.
    pub serial_number: String,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    pub is_ca: bool,
    pub self_signed: bool,
    pub fingerprint_sha256: String,
}

impl From<&authority::pki::inspect::Certificate> for ChainCertificate {
    fn from(c: &authority::pki::inspect::Certificate) -> Self {
        Self {
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            serial_number: c.serial.clone(),
            valid_from: c.not_before,
            valid_until: c.not_after,
            is_ca: c.is_ca,
            self_signed: c.self_signed,
            fingerprint_sha256: c.fingerprint_sha256.clone(),
        }
    }
}

/// What the server presented.
#[derive(Debug, Serialize, ToSchema)]
pub struct SslCheck {
    pub hostname: String,
    pub port: u16,
    /// The server certificate's subject.
    pub subject: String,
    pub issuer: String,
    pub common_name: Option<String>,
    /// Hex.
    pub serial_number: String,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    /// Whole days until it expires; negative once it has.
    pub days_remaining: i64,
    pub expired: bool,
    /// `kind:value`.
    pub san: Vec<String>,
    /// Whether the certificate names `hostname` (SANs, wildcards as TLS clients read them).
    pub hostname_matches: bool,
    /// Each certificate is signed by the next and all are within their validity. Whether the
    /// top of the chain is a trusted root is not judged.
    pub chain_valid: bool,
    /// `TLSv1.3` or `TLSv1.2`.
    pub protocol: String,
    pub cipher_suite: String,
    /// As presented, server certificate first.
    pub chain: Vec<ChainCertificate>,
}

/// Connect to a TLS server and report the certificate chain it presents: subject, issuer,
/// expiry, names, and whether the chain holds together. Loopback, private and other
/// non-public addresses are refused unless `[tools] allow_private_addresses` is set.
#[utoipa::path(post, path = "/tools/check-ssl", tag = "tools",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    request_body = CheckSslInput,
    responses((status = 200, description = "The chain presented", body = Envelope<SslCheck>),
              (status = 422, description = "Refused address, no connection, failed handshake or timeout", body = ErrorBody)))]
async fn check_ssl(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<CheckSslInput>,
) -> ApiResult<Response> {
    let report = app
        .authority
        .check_ssl(&principal, &body.hostname, body.port)
        .await?;
    let now = app.authority.now();
    let chain = std::iter::once(&report.certificate)
        .chain(&report.chain)
        .map(ChainCertificate::from)
        .collect();
    let leaf = report.certificate;
    Ok(ok(SslCheck {
        hostname: report.host,
        port: report.port,
        subject: leaf.subject,
        issuer: leaf.issuer,
        common_name: leaf.common_name,
        serial_number: leaf.serial,
        valid_from: leaf.not_before,
        valid_until: leaf.not_after,
        days_remaining: (leaf.not_after - now).whole_days(),
        expired: leaf.not_after <= now,
        san: leaf.sans,
        hostname_matches: report.host_matches,
        chain_valid: report.chain_valid,
        protocol: report.protocol,
        cipher_suite: report.cipher_suite,
        chain,
    }))
}
