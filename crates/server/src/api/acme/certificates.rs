//! Certificates (RFC 8555 §7.4.2, §7.6): downloading one with its chain, and revoking one.

use authority::acme::RevokeBy;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::accounts::{Post, acme_post};
use super::jws::{self, KeyRule, Signer, malformed};
use crate::App;

/// The certificate with its chain, PEM (`application/pem-certificate-chain`, RFC 8555 §9.1).
#[utoipa::path(post, path = "/acme/{profile}/cert/{id}", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name"),
           ("id" = String, Path, description = "The order's id")),
    request_body(content_type = "application/jose+json", description = "A flattened JWS (RFC 8555 §6.2)"),
    responses((status = 200, description = "Leaf first, then its CAs", content_type = "application/pem-certificate-chain")))]
pub async fn certificate(
    State(app): State<App>,
    Path((profile, id)): Path<(String, String)>,
    post: Post,
) -> Response {
    acme_post!(app, profile, post, |ctx| {
        let verified = jws::verify(&ctx, &post.headers, &post.body, KeyRule::Kid).await?;
        verified.require_get()?;
        let issued = app
            .authority
            .acme_certificate(verified.account()?, &id)
            .await?;
        let pem: String = issued
            .chain
            .iter()
            .map(|der| pki::pem::encode("CERTIFICATE", der))
            .collect();
        let mut response = pem.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pem-certificate-chain"),
        );
        Ok((StatusCode::OK, response))
    })
}

#[derive(Deserialize)]
struct RevokePayload {
    certificate: String,
    reason: Option<u8>,
}

/// Revokes a certificate, signed by the account it was issued to or by its own key
/// (RFC 8555 §7.6).
#[utoipa::path(post, path = "/acme/{profile}/revoke-cert", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name")),
    request_body(content_type = "application/jose+json", description = "A flattened JWS (RFC 8555 §6.2)"),
    responses((status = 200, description = "Revoked"),
              (status = 400, description = "alreadyRevoked or badRevocationReason"),
              (status = 403, description = "unauthorized")))]
pub async fn revoke(State(app): State<App>, Path(profile): Path<String>, post: Post) -> Response {
    acme_post!(app, profile, post, |ctx| {
        let verified = jws::verify(&ctx, &post.headers, &post.body, KeyRule::Either).await?;
        let payload: RevokePayload = verified.payload()?;
        let der = URL_SAFE_NO_PAD
            .decode(payload.certificate.trim_end_matches('='))
            .map_err(|_| malformed("certificate is not base64url DER"))?;
        let by = match &verified.signer {
            Signer::Account(account) => RevokeBy::Account(account),
            Signer::Key(jwk) => RevokeBy::CertificateKey(jwk),
        };
        app.authority
            .acme_revoke(&ctx.profile, by, &der, payload.reason, &ctx.origin)
            .await?;
        Ok((StatusCode::OK, ().into_response()))
    })
}
