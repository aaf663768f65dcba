//! `/tools`: decoding certificates and CSRs people paste in.

use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use authority::pki::csr::Csr;
use authority::pki::inspect::Certificate;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(decode_cert))
        .routes(routes!(decode_csr))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PemInput {
    /// PEM (text around the block is fine).
    pub pem: String,
}

/// What a certificate says.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecodedCertificate {
    pub subject: String,
    pub issuer: String,
    pub serial_number: String,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    pub san: Vec<String>,
    pub is_ca: bool,
    pub path_length: Option<u32>,
    pub self_signed: bool,
    /// e.g. `EC P-256`; null for a key type certmint does not issue.
    pub key_type: Option<String>,
    pub signature_algorithm: String,
    pub key_usage: Vec<&'static str>,
    pub extended_key_usage: Vec<String>,
    pub subject_key_id: Option<String>,
    pub authority_key_id: Option<String>,
    pub crl_distribution_points: Vec<String>,
    pub ocsp_urls: Vec<String>,
    pub ca_issuers: Vec<String>,
    pub policies: Vec<String>,
    pub fingerprint_sha256: String,
    pub fingerprint_sha1: String,
}

fn first_block(pem: &str, labels: &[&str], what: &str) -> ApiResult<Vec<u8>> {
    let blocks =
        authority::pki::pem::find_blocks(pem.as_bytes()).map_err(authority::Error::from)?;
    blocks
        .into_iter()
        .find(|b| labels.contains(&b.label.as_str()))
        .map(|b| b.der)
        .ok_or_else(|| ApiError::invalid(format!("no {what} PEM block found")))
}

/// Decode a certificate.
#[utoipa::path(post, path = "/tools/decode-cert", tag = "tools",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    request_body = PemInput,
    responses((status = 200, description = "Decoded", body = Envelope<DecodedCertificate>),
              (status = 422, description = "Not a certificate", body = ErrorBody)))]
async fn decode_cert(ApiJson(body): ApiJson<PemInput>) -> ApiResult<Response> {
    let der = first_block(
        &body.pem,
        &["CERTIFICATE", "TRUSTED CERTIFICATE"],
        "CERTIFICATE",
    )?;
    let c = Certificate::parse(&der).map_err(authority::Error::from)?;
    Ok(ok(DecodedCertificate {
        subject: c.subject,
        issuer: c.issuer,
        serial_number: c.serial,
        valid_from: c.not_before,
        valid_until: c.not_after,
        san: c.sans,
        is_ca: c.is_ca,
        path_length: c.path_len,
        self_signed: c.self_signed,
        key_type: c.key_type.map(|k| k.label()),
        signature_algorithm: c.signature_algorithm,
        key_usage: c.key_usage.iter().map(|u| u.as_str()).collect(),
        extended_key_usage: c.extended_key_usage.iter().map(|e| e.as_string()).collect(),
        subject_key_id: c.subject_key_id.map(hex::encode),
        authority_key_id: c.authority_key_id.map(hex::encode),
        crl_distribution_points: c.crl_urls,
        ocsp_urls: c.ocsp_urls,
        ca_issuers: c.ca_issuer_urls,
        policies: c.policies,
        fingerprint_sha256: c.fingerprint_sha256,
        fingerprint_sha1: c.fingerprint_sha1,
    }))
}

/// What a CSR asks for.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecodedCsr {
    pub subject: String,
    pub san: Vec<String>,
    pub key_type: String,
    pub signature_algorithm: String,
    /// Always true: a CSR whose signature does not verify is refused.
    pub signature_valid: bool,
    pub key_usage: Vec<&'static str>,
    pub extended_key_usage: Vec<String>,
    pub requests_ca: bool,
}

/// Decode a CSR and check its signature.
#[utoipa::path(post, path = "/tools/decode-csr", tag = "tools",
    security(("session" = ["read:csrs"]), ("api_key" = ["read:csrs"])),
    request_body = PemInput,
    responses((status = 200, description = "Decoded", body = Envelope<DecodedCsr>),
              (status = 422, description = "Not a valid CSR", body = ErrorBody)))]
async fn decode_csr(ApiJson(body): ApiJson<PemInput>) -> ApiResult<Response> {
    let csr = Csr::parse(body.pem.as_bytes()).map_err(authority::Error::from)?;
    Ok(ok(DecodedCsr {
        subject: csr.subject_text,
        san: csr.sans.iter().map(|s| s.to_api_string()).collect(),
        key_type: csr.key_type.label(),
        signature_algorithm: csr.signature_algorithm,
        signature_valid: true,
        key_usage: csr.key_usage.iter().map(|u| u.as_str()).collect(),
        extended_key_usage: csr
            .extended_key_usage
            .iter()
            .map(|e| e.as_string())
            .collect(),
        requests_ca: csr.requests_ca,
    }))
}
