//! Orders (RFC 8555 §7.4; `replaces`, RFC 9773 §5): placing one, reading it, finalizing it.

use authority::acme::{Order, OrderRequest, ProblemType, Status};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;

use super::accounts::{Post, acme_post};
use super::authorizations::authz_url;
use super::context::{Ctx, json, located};
use super::jws::{self, KeyRule};
use super::problem::{self, Failure};
use crate::App;

/// How long a client polling a processing order should wait.
const PROCESSING_RETRY_SECONDS: u32 = 1;

fn order_url(ctx: &Ctx, refid: &str) -> String {
    ctx.url(&format!("order/{refid}"))
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
        body["error"] = problem::recorded(error);
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
        verified.require_get()?;
        let order = app.authority.acme_order(verified.account()?, &id).await?;
        Ok((StatusCode::OK, order_response(&ctx, &order)))
    })
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
            .map_err(|_| Failure::new(ProblemType::BadCsr, "csr is not base64url DER"))?;
        let order = app
            .authority
            .acme_finalize(&ctx.profile, account, &id, &csr, &ctx.origin)
            .await?;
        Ok((StatusCode::OK, order_response(&ctx, &order)))
    })
}
