//! Authorizations (RFC 8555 §7.5, §7.5.2): reading one, or deactivating it.

use authority::acme::{Authorization, ProblemType};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::accounts::{Post, acme_post};
use super::challenges::challenge_body;
use super::context::{Ctx, json, located};
use super::jws::{self, KeyRule, malformed};
use super::problem::Failure;
use crate::App;

pub(super) fn authz_url(ctx: &Ctx, refid: &str, index: usize) -> String {
    ctx.url(&format!("authz/{refid}/{index}"))
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

pub(super) fn position(text: &str) -> Result<usize, Failure> {
    text.parse().map_err(|_| no_such_thing())
}

pub(super) fn no_such_thing() -> Failure {
    Failure::new(ProblemType::Malformed, "there is no such resource")
        .with_status(StatusCode::NOT_FOUND)
}
