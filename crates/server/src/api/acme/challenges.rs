//! Challenges (RFC 8555 §7.5.1): reading one, or telling the server it is ready for
//! validation.

use authority::acme::{Challenge, ChallengeType};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::accounts::{Post, acme_post};
use super::authorizations::{authz_url, no_such_thing, position};
use super::context::{Ctx, json};
use super::jws::{self, KeyRule};
use super::problem;
use crate::App;

fn challenge_url(ctx: &Ctx, refid: &str, index: usize, kind: ChallengeType) -> String {
    ctx.url(&format!("chall/{refid}/{index}/{}", kind.as_str()))
}

pub(super) fn challenge_body(
    ctx: &Ctx,
    refid: &str,
    index: usize,
    c: &Challenge,
) -> serde_json::Value {
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
        body["error"] = problem::recorded(error);
    }
    body
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
