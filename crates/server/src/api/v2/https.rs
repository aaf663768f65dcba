//! `/system/https`: the certificate the HTTPS listener presents — what it is, a new one from
//! the default CA, or one brought from elsewhere. A new certificate is served from the next
//! handshake on, by this node at once and by the other nodes within seconds; connections
//! already open keep theirs.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};
use authority::{ListenerInfo, ListenerRequest};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(cert_info))
        .routes(routes!(regenerate))
        .routes(routes!(apply))
}

/// The listener's certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct HttpsCertificate {
    pub subject: String,
    pub common_name: Option<String>,
    pub issuer: String,
    /// `dns:…` and `ip:…`.
    pub san: Vec<String>,
    /// Hex.
    pub serial_number: String,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    pub days_remaining: i64,
    pub key_type: Option<String>,
    pub signature_algorithm: String,
    /// Hex, of the DER.
    pub fingerprint_sha256: String,
    pub self_signed: bool,
    /// Whether one of certmint's CAs signed it.
    pub issued_by_certmint: bool,
    /// That CA.
    pub ca_id: Option<i64>,
    pub ca_name: Option<String>,
    /// `file` (this node's own, made at its first start), `generated` (by regenerate) or
    /// `uploaded` (by apply); the last two are served by every node.
    pub source: &'static str,
    /// Certificates presented, this one included.
    pub chain_length: usize,
}

impl HttpsCertificate {
    fn new(info: ListenerInfo, now: OffsetDateTime) -> Self {
        let c = info.certificate;
        let (ca_id, ca_name) = info
            .issuer_ca
            .map_or((None, None), |(id, name)| (Some(i64::from(id)), Some(name)));
        Self {
            subject: c.subject,
            common_name: c.common_name,
            issuer: c.issuer,
            san: c.sans,
            serial_number: c.serial,
            valid_from: c.not_before,
            valid_until: c.not_after,
            days_remaining: (c.not_after - now).whole_days().max(0),
            key_type: c.key_type.map(|k| k.label()),
            signature_algorithm: c.signature_algorithm,
            fingerprint_sha256: c.fingerprint_sha256,
            self_signed: c.self_signed,
            issued_by_certmint: ca_id.is_some(),
            ca_id,
            ca_name,
            source: info.source.as_str(),
            chain_length: info.chain_length,
        }
    }
}

/// What the new certificate names; absent fields keep the current certificate's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegenerateInput {
    /// The subject's common name, also made a SAN; the first SAN when absent.
    pub common_name: Option<String>,
    /// DNS names and IP addresses (up to 100); the current certificate's when absent.
    pub sans: Option<Vec<String>>,
    /// 1 to 397; 397 when absent, less when the default CA expires sooner.
    pub validity_days: Option<i64>,
}

/// A certificate and key to serve.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyInput {
    /// PEM: the server's certificate first, then each issuer in turn (up to 8 in all).
    pub certificate: String,
    /// PEM, unencrypted (PKCS#8, PKCS#1 or SEC1).
    pub private_key: String,
}

impl std::fmt::Debug for ApplyInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyInput")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

/// The certificate the HTTPS listener presents on this node.
#[utoipa::path(get, path = "/system/https/cert-info", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "The certificate", body = Envelope<HttpsCertificate>)))]
async fn cert_info(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(served(&app, &principal).await?))
}

/// The certificate this node serves now.
pub(crate) async fn served(
    app: &App,
    principal: &authority::Principal,
) -> ApiResult<HttpsCertificate> {
    let served = app.listener.current();
    let info = app
        .authority
        .listener_info(principal, &served.identity)
        .await?;
    Ok(HttpsCertificate::new(info, app.authority.now()))
}

/// Issue a new HTTPS certificate from the default CA (through the issuance pipeline, so it is
/// in the inventory) and serve it on every node from the next handshake on.
#[utoipa::path(post, path = "/system/https/regenerate", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = RegenerateInput,
    responses((status = 200, description = "Served now", body = Envelope<HttpsCertificate>),
              (status = 422, description = "A bad name or validity, or no CA can issue",
               body = ErrorBody)))]
async fn regenerate(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(input): ApiJson<RegenerateInput>,
) -> ApiResult<Response> {
    let request = ListenerRequest {
        common_name: input.common_name,
        sans: input.sans,
        validity_days: input.validity_days,
    };
    Ok(ok_with(
        regenerated(&app, &principal, request).await?,
        "new HTTPS certificate served",
    ))
}

/// A new certificate from certmint's own CA, served from now on.
pub(crate) async fn regenerated(
    app: &App,
    principal: &authority::Principal,
    request: ListenerRequest,
) -> ApiResult<HttpsCertificate> {
    let served = app.listener.current();
    let (identity, info) = app
        .authority
        .regenerate_listener(principal, request, &served.identity)
        .await?;
    app.listener.replace(identity)?;
    Ok(HttpsCertificate::new(info, app.authority.now()))
}

/// Serve a certificate chain and private key brought from elsewhere, on every node from the
/// next handshake on. Refused unless the key is the certificate's, the certificate is valid
/// now and fit for a TLS server, and each certificate of the chain signed the one before.
#[utoipa::path(post, path = "/system/https/apply", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = ApplyInput,
    responses((status = 200, description = "Served now", body = Envelope<HttpsCertificate>),
              (status = 422, description = "Unreadable, mismatched, expired or unfit",
               body = ErrorBody)))]
async fn apply(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(input): ApiJson<ApplyInput>,
) -> ApiResult<Response> {
    Ok(ok_with(
        applied(&app, &principal, &input.certificate, &input.private_key).await?,
        "HTTPS certificate applied",
    ))
}

/// An uploaded certificate (with its chain) and key, checked and served from now on.
pub(crate) async fn applied(
    app: &App,
    principal: &authority::Principal,
    certificate: &str,
    private_key: &str,
) -> ApiResult<HttpsCertificate> {
    let (identity, info) = app
        .authority
        .apply_listener(principal, certificate, private_key)
        .await?;
    app.listener.replace(identity)?;
    Ok(HttpsCertificate::new(info, app.authority.now()))
}
