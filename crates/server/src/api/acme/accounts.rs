//! Accounts (RFC 8555 §7.3): newAccount, the account resource, its orders, keyChange.

use authority::Origin;
use authority::acme::{AccountRequest, AcmeAccountRow, ExternalBinding, ProblemType};
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use pki::jose::Jws;
use serde::Deserialize;
use serde_json::json;

use super::context::{Ctx, json, located};
use super::jws::{self, KeyRule, Signer, malformed};
use super::problem::Failure;
use crate::App;
use crate::listen::Conn;

/// What every ACME POST handler takes from the request.
pub struct Post {
    pub uri: Uri,
    pub headers: HeaderMap,
    pub conn: Option<Conn>,
    pub origin: Option<Origin>,
    pub body: Bytes,
}

impl FromRequest<App> for Post {
    type Rejection = Response;

    async fn from_request(request: Request, app: &App) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let post = Self {
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            conn: parts.extensions.get::<Conn>().cloned(),
            origin: parts.extensions.get::<Origin>().cloned(),
            body: Bytes::new(),
        };
        // Read through the Bytes extractor, so the body limit applies.
        let body = Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self { body, ..post })
    }
}

impl Post {
    pub async fn ctx(&self, app: &App, profile: &str) -> Result<Ctx, Response> {
        Ctx::new(
            app,
            Some(profile),
            &self.uri,
            &self.headers,
            self.conn.as_ref(),
            self.origin.clone(),
        )
        .await
        .map_err(IntoResponse::into_response)
    }
}

/// Runs `handler` with the request's context, rendering its outcome.
macro_rules! acme_post {
    ($app:expr, $profile:expr, $post:expr, |$ctx:ident| $body:expr) => {{
        let $ctx = match $post.ctx(&$app, &$profile).await {
            Ok(ctx) => ctx,
            Err(response) => return response,
        };
        let outcome = async { $body }.await;
        $ctx.finish(outcome).await
    }};
}
pub(crate) use acme_post;

pub fn account_body(ctx: &Ctx, account: &AcmeAccountRow) -> serde_json::Value {
    json!({
        "status": account.status,
        "contact": account.contact,
        "termsOfServiceAgreed": account.tos_agreed,
        "orders": ctx.url(&format!("acct/{}/orders", account.refid)),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccountPayload {
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    terms_of_service_agreed: bool,
    #[serde(default)]
    only_return_existing: bool,
    external_account_binding: Option<serde_json::Value>,
}

/// Registers an account, or finds the one this key has (RFC 8555 §7.3, §7.3.1, §7.3.4).
#[utoipa::path(post, path = "/acme/{profile}/new-account", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name")),
    request_body(content_type = "application/jose+json", description = "A flattened JWS (RFC 8555 §6.2)"),
    responses((status = 201, description = "Account created; Location is its URL"),
              (status = 200, description = "The key's existing account"),
              (status = 400, description = "A problem (application/problem+json)")))]
pub async fn new_account(
    State(app): State<App>,
    Path(profile): Path<String>,
    post: Post,
) -> Response {
    acme_post!(app, profile, post, |ctx| {
        let verified = jws::verify(&ctx, &post.headers, &post.body, KeyRule::Jwk).await?;
        let Signer::Key(jwk) = &verified.signer else {
            return Err(malformed("newAccount must carry its key (jwk)"));
        };
        let payload: NewAccountPayload = verified.payload()?;
        let binding = payload
            .external_account_binding
            .as_ref()
            .map(|v| Jws::parse(v.to_string().as_bytes()).map_err(jws::jose_problem))
            .transpose()?;
        let (account, created) = app
            .authority
            .acme_new_account(
                &ctx.profile,
                jwk,
                &AccountRequest {
                    contact: payload.contact,
                    terms_of_service_agreed: payload.terms_of_service_agreed,
                    only_return_existing: payload.only_return_existing,
                },
                binding
                    .as_ref()
                    .map(|jws| ExternalBinding { jws, url: &ctx.url }),
                &ctx.origin,
            )
            .await?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok((
            status,
            located(
                json(&account_body(&ctx, &account)),
                &ctx.account_url(&account.refid),
            ),
        ))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountUpdate {
    contact: Option<Vec<String>>,
    status: Option<String>,
    #[serde(rename = "termsOfServiceAgreed")]
    _terms_of_service_agreed: Option<bool>,
}

/// Signed by the account whose URL this is.
fn own_account<'a>(
    verified: &'a jws::Verified,
    refid: &str,
) -> Result<&'a AcmeAccountRow, Failure> {
    let account = verified.account()?;
    if account.refid != refid {
        return Err(Failure::new(
            ProblemType::Unauthorized,
            "the request is signed by another account than the one at this URL",
        ));
    }
    Ok(account)
}

/// The account (POST-as-GET), a contact update, or deactivation (RFC 8555 §7.3.2, §7.3.6).
#[utoipa::path(post, path = "/acme/{profile}/acct/{id}", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name"),
           ("id" = String, Path, description = "The account's id")),
    request_body(content_type = "application/jose+json", description = "A flattened JWS (RFC 8555 §6.2)"),
    responses((status = 200, description = "The account"),
              (status = 401, description = "Signed by another account")))]
pub async fn account(
    State(app): State<App>,
    Path((profile, id)): Path<(String, String)>,
    post: Post,
) -> Response {
    acme_post!(app, profile, post, |ctx| {
        let verified = jws::verify(&ctx, &post.headers, &post.body, KeyRule::Kid).await?;
        let account = own_account(&verified, &id)?;
        let account = if verified.is_get() {
            account.clone()
        } else {
            let update: AccountUpdate = verified.payload()?;
            app.authority
                .acme_update_account(
                    account,
                    update.contact,
                    update.status.as_deref(),
                    &ctx.origin,
                )
                .await?
        };
        Ok((
            StatusCode::OK,
            located(
                json(&account_body(&ctx, &account)),
                &ctx.account_url(&account.refid),
            ),
        ))
    })
}

#[derive(Deserialize)]
pub struct PageQuery {
    pub cursor: Option<u32>,
}

/// The account's orders, 100 a page, `Link: rel="next"` to the next (RFC 8555 §7.1.2.1).
#[utoipa::path(post, path = "/acme/{profile}/acct/{id}/orders", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name"),
           ("id" = String, Path, description = "The account's id"),
           ("cursor" = Option<u32>, Query, description = "Page, from 1")),
    request_body(content_type = "application/jose+json", description = "A flattened JWS (RFC 8555 §6.2)"),
    responses((status = 200, description = "{\"orders\": [order URLs]}")))]
pub async fn account_orders(
    State(app): State<App>,
    Path((profile, id)): Path<(String, String)>,
    Query(page): Query<PageQuery>,
    post: Post,
) -> Response {
    acme_post!(app, profile, post, |ctx| {
        let verified = jws::verify(&ctx, &post.headers, &post.body, KeyRule::Kid).await?;
        let account = own_account(&verified, &id)?;
        let page = page.cursor.unwrap_or(1).max(1);
        let (orders, more) = app.authority.acme_account_orders(account, page).await?;
        let urls: Vec<String> = orders
            .iter()
            .map(|o| ctx.url(&format!("order/{o}")))
            .collect();
        let mut response = json(&json!({ "orders": urls }));
        if more {
            let next = format!(
                "<{}?cursor={}>;rel=\"next\"",
                ctx.url(&format!("acct/{id}/orders")),
                page + 1
            );
            if let Ok(v) = HeaderValue::from_str(&next) {
                response.headers_mut().append(header::LINK, v);
            }
        }
        Ok((StatusCode::OK, response))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChangePayload {
    account: String,
    old_key: serde_json::Value,
}

/// Rolls the account's key over (RFC 8555 §7.3.5): the outer JWS is signed by the account,
/// the inner one (the payload) by the new key.
#[utoipa::path(post, path = "/acme/{profile}/key-change", tag = "acme", security(()),
    params(("profile" = String, Path, description = "The ACME profile's name")),
    request_body(content_type = "application/jose+json", description = "A flattened JWS (RFC 8555 §6.2)"),
    responses((status = 200, description = "The account, now with its new key"),
              (status = 409, description = "The new key has an account; Location names it")))]
pub async fn key_change(
    State(app): State<App>,
    Path(profile): Path<String>,
    post: Post,
) -> Response {
    acme_post!(app, profile, post, |ctx| {
        let verified = jws::verify(&ctx, &post.headers, &post.body, KeyRule::Kid).await?;
        let account = verified.account()?;
        let inner = Jws::parse(&verified.jws.payload).map_err(jws::jose_problem)?;
        inner.algorithm().map_err(jws::jose_problem)?;
        let new_key = inner
            .header
            .jwk
            .clone()
            .ok_or_else(|| malformed("the inner JWS must carry the new key as its jwk"))?;
        if inner.header.kid.is_some() {
            return Err(malformed("the inner JWS may not carry a kid"));
        }
        if inner.header.url.as_deref() != Some(ctx.url.as_str()) {
            return Err(malformed("the inner JWS url must be the keyChange URL"));
        }
        inner.verify(&new_key).map_err(jws::jose_problem)?;
        let payload: KeyChangePayload = serde_json::from_slice(&inner.payload)
            .map_err(|_| malformed("the inner payload must be {\"account\", \"oldKey\"}"))?;
        if payload.account != ctx.account_url(&account.refid) {
            return Err(malformed(
                "the inner payload's account is not the signing account",
            ));
        }
        let old_key = pki::jose::Jwk::from_json(&payload.old_key).map_err(jws::jose_problem)?;
        let account = app
            .authority
            .acme_change_key(account, &old_key, &new_key, &ctx.origin)
            .await?;
        Ok((
            StatusCode::OK,
            located(
                json(&account_body(&ctx, &account)),
                &ctx.account_url(&account.refid),
            ),
        ))
    })
}
