//! Headers the answers of the API, ACME and health carry (the responder's routes get `nosniff`
//! from a lighter layer of their own): `nosniff`, so a browser never runs a downloaded PEM or
//! JSON body as something else; HSTS on HTTPS, so a browser that has seen the
//! console once never sends its cookie over plain HTTP; and `no-store` on every REST answer
//! that does not choose its own caching, because logins, API keys, exported keys and PKCS#12
//! files travel there and no cache may keep them.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS};
use axum::middleware::Next;
use axum::response::Response;

use crate::listen::Conn;

/// One year, the HSTS preload lists' minimum.
const HSTS: &str = "max-age=31536000";

/// Adds the headers to the answer of `req`.
pub async fn add(req: Request, next: Next) -> Response {
    let tls = req.extensions().get::<Conn>().is_some_and(|c| c.tls);
    let api = req.uri().path().starts_with("/api/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if tls {
        headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    if api && !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
