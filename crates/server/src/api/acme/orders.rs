//! Orders, authorizations, challenges, certificates and revocation (RFC 8555 §7.4–§7.6).

use authority::acme::{
    Authorization, Challenge, ChallengeType, Order, OrderRequest, Problem, ProblemType, RevokeBy,
    Status,
};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;

use super::accounts::{Post, acme_post};
use super::context::{Ctx, json, located};
use super::jws::{self, KeyRule, Signer, malformed};
use crate::App;

/// How long a client polling a processing order should wait.
const PROCESSING_RETRY_SECONDS: u32 = 1;

fn order_url(ctx: &Ctx, refid: &str) -> String {
    ctx.url(&format!("order/{refid}"))
}

fn authz_url(ctx: &Ctx, refid: &str, index: usize) -> String {
    ctx.url(&format!("authz/{refid}/{index}"))
}

fn challenge_url(ctx: &Ctx, refid: &str, index: usize, kind: ChallengeType) -> String {
    ctx.url(&format!("chall/{refid}/{index}/{}", kind.as_str()))
}

fn order_body(ctx: &Ctx, order: &Order) -> serde_json::Value {
    let mut body = json!({
        "status": order.status.as_str(),
        "expires": authority::rfc3339(order.expires),
        "identifiers": order.identifiers,
        "authorizations": (0..order.authorizations.len())
            .map(|i| authz_url(ctx, &order.refid, i))
            .collect::<Vec<_>>(),
        "finalize": ctx.url(&format!("order/{}/finalize", order.refid)),
    });
    if let Some(error) = &order.error {
        body["error"] = json!(error);
    }
    if order.certificate_id.is_some() && order.status == Status::Valid {
        body["certificate"] = json!(ctx.url(&format!("cert/{}", order.refid)));
    }
    if let Some(replaces) = &order.replaces {
        body["replaces"] = json!(replaces);
    }
    body
}

/// An order as a response: `Location` is its URL; a processing one says when to look again.
fn order_response(ctx: &Ctx, order: &Order) -> Response {
    let mut response = located(json(&order_body(ctx, order)), &order_url(ctx, &order.refid));
    if order.status == Status::Processing {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(PROCESSING_RETRY_SECONDS),
        );
    }
    response
}

fn challenge_body(ctx: &Ctx, refid: &str, index: usize, c: &Challenge) -> serde_json::Value {
    let mut body = json!({
        "type": c.kind.as_str(),
        "url": challenge_url(ctx, refid, index, c.kind),
        "status": c.status.as_str(),
        "token": c.token,
    });
    if let Some(at) = c.validated {
        body["validated"] = json!(authority::rfc3339(at));
    }
    if let Some(error) = &c.error {
        body["error"] = json!(error);
    }
    body
}

fn authz_body(ctx: &Ctx, refid: &str, index: usize, a: &Authorization) -> serde_json::Value {
    let mut body = json!({
        "identifier": a.identifier,
        "status": a.status.as_str(),
        "expires": authority::rfc3339(a.expires),
        "challenges": a.challenges.iter().map(|c| challenge_body(ctx, refid, index, c)).collect::<Vec<_>>(),
    });
    if a.wildcard {
        body["wildcard"] = json!(true);
    }
    body
}

#[derive(Deserialize)]
struct IdentifierPayload {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrderPayload {
    identifiers: Vec<IdentifierPayload>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    not_before: Option<time::OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    not_after: Option<time::OffsetDateTime>,
    replaces: Option<String>,
}

/// Places an order (RFC 8555 §7.4; `replaces`, RFC 9773 §5).
#[utoipa::path(post, path = "/acme/{profile}/new-order", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name")),
    request_body(content_type = "application/jose+json", description = "A flattened JWS (RFC 8555 §6.2)"),
    responses((status = 201, description = "The order; Location is its URL"),
              (status = 403, description = "rejectedIdentifier, with subproblems"),
              (status = 429, description = "rateLimited, with Retry-After")))]
pub async fn new_order(
    State(app): State<App>,
    Path(profile): Path<String>,
    post: Post,
) -> Response {
    acme_post!(app, profile, post, |ctx| {
        let verified = jws::verify(&ctx, &post.headers, &post.body, KeyRule::Kid).await?;
        let account = verified.account()?;
        let payload: NewOrderPayload = verified.payload()?;
        let request = OrderRequest {
            identifiers: payload
                .identifiers
                .into_iter()
                .map(|i| (i.kind, i.value))
                .collect(),
            not_before: payload.not_before,
            not_after: payload.not_after,
            replaces: payload.replaces,
        };
        let order = app
            .authority
            .acme_new_order(&ctx.profile, account, &request)
            .await?;
        Ok((StatusCode::CREATED, order_response(&ctx, &order)))
    })
}

/// The order (POST-as-GET).
#[utoipa::path(post, path = "/acme/{profile}/order/{id}", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name"),
           ("id" = String, Path, description = "The order's id")),
    request_body(content_type = "application/jose+json", description = "A flattened JWS (RFC 8555 §6.2)"),
    responses((status = 200, description = "The order; Retry-After while it is processing")))]
pub async fn order(
    State(app): State<App>,
    Path((profile, id)): Path<(String, String)>,
    post: Post,
) -> Response {
    acme_post!(app, profile, post, |ctx| {
        let verified = jws::verify(&ctx, &post.headers, &post.body, KeyRule::Kid).await?;
        require_get(&verified)?;
        let order = app.authority.acme_order(verified.account()?, &id).await?;
        Ok((StatusCode::OK, order_response(&ctx, &order)))
    })
}

fn require_get(verified: &jws::Verified) -> Result<(), Problem> {
    if verified.is_get() {
        Ok(())
    } else {
        Err(malformed(
            "this resource is read with POST-as-GET (an empty payload)",
        ))
    }
}

#[derive(Deserialize)]
struct FinalizePayload {
    csr: String,
}

/// Finalizes a ready order with a CSR naming exactly its identifiers (RFC 8555 §7.4).
#[utoipa::path(post, path = "/acme/{profile}/order/{id}/finalize", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name"),
           ("id" = String, Path, description = "The order's id")),
    request_body(content_type = "application/jose+json", description = "A flattened JWS (RFC 8555 §6.2)"),
    responses((status = 200, description = "The order, valid with its certificate URL"),
              (status = 403, description = "orderNotReady"),
              (status = 400, description = "badCSR")))]
pub async fn finalize(
    State(app): State<App>,
    Path((profile, id)): Path<(String, String)>,
    post: Post,
) -> Response {
    acme_post!(app, profile, post, |ctx| {
        let verified = jws::verify(&ctx, &post.headers, &post.body, KeyRule::Kid).await?;
        let account = verified.account()?;
        let payload: FinalizePayload = verified.payload()?;
        let csr = URL_SAFE_NO_PAD
            .decode(payload.csr.trim_end_matches('='))
            .map_err(|_| Problem::new(ProblemType::BadCsr, "csr is not base64url DER"))?;
        let order = app
            .authority
            .acme_finalize(&ctx.profile, account, &id, &csr, &ctx.origin)
            .await?;
        Ok((StatusCode::OK, order_response(&ctx, &order)))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthzUpdate {
    status: String,
}

/// An authorization (POST-as-GET), or its deactivation (RFC 8555 §7.5, §7.5.2).
#[utoipa::path(post, path = "/acme/{profile}/authz/{id}/{index}", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name"),
           ("id" = String, Path, description = "The order's id"),
           ("index" = usize, Path, description = "The authorization's place in the order")),
    request_body(content_type = "application/jose+json", description = "A flattened JWS (RFC 8555 §6.2)"),
    responses((status = 200, description = "The authorization")))]
pub async fn authorization(
    State(app): State<App>,
    Path((profile, id, index)): Path<(String, String, String)>,
    post: Post,
) -> Response {
    acme_post!(app, profile, post, |ctx| {
        let verified = jws::verify(&ctx, &post.headers, &post.body, KeyRule::Kid).await?;
        let account = verified.account()?;
        let index = position(&index)?;
        let order = if verified.is_get() {
            app.authority.acme_order(account, &id).await?
        } else {
            let update: AuthzUpdate = verified.payload()?;
            if update.status != "deactivated" {
                return Err(malformed(
                    "an authorization's status can only change to deactivated",
                ));
            }
            app.authority
                .acme_deactivate_authorization(account, &id, index)
                .await?
        };
        let authz = order.authorizations.get(index).ok_or_else(no_such_thing)?;
        Ok((
            StatusCode::OK,
            located(
                json(&authz_body(&ctx, &id, index, authz)),
                &authz_url(&ctx, &id, index),
            ),
        ))
    })
}

fn position(text: &str) -> Result<usize, Problem> {
    text.parse().map_err(|_| no_such_thing())
}

fn no_such_thing() -> Problem {
    Problem {
        status: Some(404),
        ..Problem::new(ProblemType::Malformed, "there is no such resource")
    }
}

/// A challenge (POST-as-GET), or the client's signal that it is ready for validation (a
/// payload of `{}`, RFC 8555 §7.5.1).
#[utoipa::path(post, path = "/acme/{profile}/chall/{id}/{index}/{type}", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name"),
           ("id" = String, Path, description = "The order's id"),
           ("index" = usize, Path, description = "The authorization's place in the order"),
           ("type" = String, Path, description = "http-01, dns-01 or tls-alpn-01")),
    request_body(content_type = "application/jose+json", description = "A flattened JWS (RFC 8555 §6.2)"),
    responses((status = 200, description = "The challenge; Link rel=\"up\" names its authorization")))]
pub async fn challenge(
    State(app): State<App>,
    Path((profile, id, index, kind)): Path<(String, String, String, String)>,
    post: Post,
) -> Response {
    acme_post!(app, profile, post, |ctx| {
        let verified = jws::verify(&ctx, &post.headers, &post.body, KeyRule::Kid).await?;
        let account = verified.account()?;
        let index = position(&index)?;
        let kind = ChallengeType::parse(&kind).ok_or_else(no_such_thing)?;
        let order = if verified.is_get() {
            app.authority.acme_order(account, &id).await?
        } else {
            let _: serde_json::Map<String, serde_json::Value> = verified.payload()?;
            app.authority
                .acme_respond_challenge(account, &id, index, kind)
                .await?
        };
        let challenge = order
            .authorizations
            .get(index)
            .and_then(|a| a.challenges.iter().find(|c| c.kind == kind))
            .ok_or_else(no_such_thing)?;
        let mut response = json(&challenge_body(&ctx, &id, index, challenge));
        if let Ok(up) =
            HeaderValue::from_str(&format!("<{}>;rel=\"up\"", authz_url(&ctx, &id, index)))
        {
            response.headers_mut().append(header::LINK, up);
        }
        Ok((StatusCode::OK, response))
    })
}

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
        require_get(&verified)?;
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
