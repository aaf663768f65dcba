//! Directories (RFC 8555 §7.1.1), nonces (§7.2) and renewal information (RFC 9773 §4).

use authority::Origin;
use authority::acme::RENEWAL_INFO_RETRY;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::context::{Ctx, json};
use crate::App;
use crate::listen::Conn;

fn directory_body(ctx: &Ctx) -> serde_json::Value {
    let profile = &ctx.profile;
    let mut meta = json!({ "externalAccountRequired": profile.require_eab });
    if !profile.terms_of_service.is_empty() {
        meta["termsOfService"] = json!(profile.terms_of_service);
    }
    if !profile.website.is_empty() {
        meta["website"] = json!(profile.website);
    }
    json!({
        "newNonce": ctx.url("new-nonce"),
        "newAccount": ctx.url("new-account"),
        "newOrder": ctx.url("new-order"),
        "revokeCert": ctx.url("revoke-cert"),
        "keyChange": ctx.url("key-change"),
        "renewalInfo": ctx.url("renewal-info"),
        "meta": meta,
    })
}

async fn serve_directory(
    app: &App,
    profile: Option<&str>,
    uri: &Uri,
    headers: &HeaderMap,
    conn: Option<Extension<Conn>>,
    origin: Option<Extension<Origin>>,
) -> Response {
    match Ctx::new(
        app,
        profile,
        uri,
        headers,
        conn.as_deref(),
        origin.map(|o| o.0),
    )
    .await
    {
        Ok(ctx) => json(&directory_body(&ctx)),
        Err(failure) => failure.into_response(),
    }
}

/// The default profile's directory.
#[utoipa::path(get, path = "/acme/directory", tag = "acme", security(()),
    responses((status = 200, description = "The ACME directory (RFC 8555 §7.1.1)"),
              (status = 404, description = "ACME is off, or there is no default profile")))]
pub async fn default_directory(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    conn: Option<Extension<Conn>>,
    origin: Option<Extension<Origin>>,
) -> Response {
    serve_directory(&app, None, &uri, &headers, conn, origin).await
}

/// A profile's directory.
#[utoipa::path(get, path = "/acme/{profile}/directory", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name")),
    responses((status = 200, description = "The ACME directory (RFC 8555 §7.1.1)"),
              (status = 404, description = "No such profile, or it is disabled")))]
pub async fn directory(
    State(app): State<App>,
    Path(profile): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    conn: Option<Extension<Conn>>,
    origin: Option<Extension<Origin>>,
) -> Response {
    serve_directory(&app, Some(&profile), &uri, &headers, conn, origin).await
}

async fn nonce(
    app: &App,
    profile: &str,
    uri: &Uri,
    headers: &HeaderMap,
    conn: Option<Extension<Conn>>,
    status: StatusCode,
) -> Response {
    match Ctx::new(app, Some(profile), uri, headers, conn.as_deref(), None).await {
        Ok(ctx) => ctx.answer(status, ().into_response()).await,
        Err(failure) => failure.into_response(),
    }
}

/// A fresh nonce in `Replay-Nonce` (HEAD: 200).
#[utoipa::path(head, path = "/acme/{profile}/new-nonce", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name")),
    responses((status = 200, description = "A nonce in Replay-Nonce")))]
pub async fn nonce_head(
    State(app): State<App>,
    Path(profile): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    conn: Option<Extension<Conn>>,
) -> Response {
    nonce(&app, &profile, &uri, &headers, conn, StatusCode::OK).await
}

/// A fresh nonce in `Replay-Nonce` (GET: 204).
#[utoipa::path(get, path = "/acme/{profile}/new-nonce", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name")),
    responses((status = 204, description = "A nonce in Replay-Nonce")))]
pub async fn nonce_get(
    State(app): State<App>,
    Path(profile): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    conn: Option<Extension<Conn>>,
) -> Response {
    nonce(&app, &profile, &uri, &headers, conn, StatusCode::NO_CONTENT).await
}

/// The suggested renewal window of a certificate (RFC 9773 §4.2), by its ARI identifier.
#[utoipa::path(get, path = "/acme/{profile}/renewal-info/{id}", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name"),
           ("id" = String, Path, description = "base64url(AKI keyIdentifier) \".\" base64url(serial)")),
    responses((status = 200, description = "suggestedWindow, with Retry-After"),
              (status = 400, description = "Not a certificate identifier"),
              (status = 404, description = "No certificate this server issued")))]
pub async fn renewal_info(
    State(app): State<App>,
    Path((profile, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    conn: Option<Extension<Conn>>,
) -> Response {
    let ctx = match Ctx::new(&app, Some(&profile), &uri, &headers, conn.as_deref(), None).await {
        Ok(ctx) => ctx,
        Err(failure) => return failure.into_response(),
    };
    match app.authority.acme_renewal_info(&id).await {
        Ok(window) => {
            let mut response = json(&json!({
                "suggestedWindow": {
                    "start": authority::rfc3339(window.start),
                    "end": authority::rfc3339(window.end),
                }
            }));
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(RENEWAL_INFO_RETRY.whole_seconds()),
            );
            ctx.answer(StatusCode::OK, response).await
        }
        Err(problem) => ctx.fail(problem).await,
    }
}
