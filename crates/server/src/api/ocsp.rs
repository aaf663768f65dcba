//! The OCSP responder's HTTP binding (RFC 6960 Appendix A, RFC 5019 §5): `POST /ocsp` with an
//! `application/ocsp-request` body, and `GET /ocsp/{base64 request}`, also under
//! `/.well-known/pki/ocsp` (RFC 8615). One URL serves every CA; the request's CertIDs say
//! which. Unreadable requests get OCSP's own `malformedRequest`, not an HTTP error; only what
//! is not an OCSP request at all (wrong media type, oversize body or URL) gets a 4xx.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::error::{ApiError, ErrorBody};
use crate::http_cache::{self, Cached};
use authority::OcspAnswer;

/// The largest request accepted: the most CertIDs a request may name
/// ([`authority::pki::ocsp::MAX_CERT_IDS`]), with a nonce, fit in well under this.
const MAX_REQUEST: usize = 16 * 1024;
/// The longest base64 request in a GET URL: [`MAX_REQUEST`] octets, encoded.
const MAX_ENCODED: usize = MAX_REQUEST.div_ceil(3) * 4;
const RESPONSE_TYPE: &str = "application/ocsp-response";

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(post))
        .routes(routes!(post_well_known))
        .routes(routes!(get))
        .routes(routes!(get_well_known))
        .routes(routes!(get_split))
        .routes(routes!(get_split_well_known))
        .layer(DefaultBodyLimit::max(MAX_REQUEST))
}

/// An OCSP request as the POST body (`application/ocsp-request`).
#[utoipa::path(post, path = "/ocsp", tag = "ocsp", security(()),
    request_body(content_type = "application/ocsp-request", description = "A DER OCSPRequest"),
    responses((status = 200, description = "An OCSP response (its own status says whether it answers)", content_type = "application/ocsp-response"),
              (status = 413, description = "The body is larger than any OCSP request", body = ErrorBody),
              (status = 415, description = "Not application/ocsp-request", body = ErrorBody)))]
async fn post(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    answer_post(&app, &headers, &body).await
}

/// The same as `POST /ocsp`, under the RFC 8615 well-known prefix.
#[utoipa::path(post, path = "/.well-known/pki/ocsp", tag = "ocsp", security(()),
    request_body(content_type = "application/ocsp-request", description = "A DER OCSPRequest"),
    responses((status = 200, description = "An OCSP response", content_type = "application/ocsp-response"),
              (status = 413, description = "The body is larger than any OCSP request", body = ErrorBody),
              (status = 415, description = "Not application/ocsp-request", body = ErrorBody)))]
async fn post_well_known(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    answer_post(&app, &headers, &body).await
}

/// An OCSP request in the URL: the DER, base64 (RFC 6960 Appendix A.1, URL-encoded; base64url
/// and missing padding are tolerated; so is a `/` of the base64 left unencoded, which spreads
/// the request over more path segments). Shareable answers carry `Cache-Control: max-age` up
/// to their nextUpdate, an ETag and Last-Modified.
#[utoipa::path(get, path = "/ocsp/{request}", tag = "ocsp", security(()),
    params(("request" = String, Path, description = "The DER OCSP request, base64, URL-encoded")),
    responses((status = 200, description = "An OCSP response", content_type = "application/ocsp-response"),
              (status = 304, description = "Not modified"),
              (status = 414, description = "The request is longer than any OCSP request", body = ErrorBody)))]
async fn get(State(app): State<App>, headers: HeaderMap, Path(request): Path<String>) -> Response {
    answer_get(&app, &headers, &request).await
}

/// The same as `GET /ocsp/{request}`, under the RFC 8615 well-known prefix.
#[utoipa::path(get, path = "/.well-known/pki/ocsp/{request}", tag = "ocsp", security(()),
    params(("request" = String, Path, description = "The DER OCSP request, base64, URL-encoded")),
    responses((status = 200, description = "An OCSP response", content_type = "application/ocsp-response"),
              (status = 304, description = "Not modified"),
              (status = 414, description = "The request is longer than any OCSP request", body = ErrorBody)))]
async fn get_well_known(
    State(app): State<App>,
    headers: HeaderMap,
    Path(request): Path<String>,
) -> Response {
    answer_get(&app, &headers, &request).await
}

/// `GET /ocsp/{request}` from a client that leaves the `/` of base64 unencoded, which splits
/// the request over several path segments.
#[utoipa::path(get, path = "/ocsp/{request}/{*rest}", tag = "ocsp", security(()),
    params(("request" = String, Path, description = "The request's base64 up to its first `/`"),
           ("rest" = String, Path, description = "The rest of it")),
    responses((status = 200, description = "An OCSP response", content_type = "application/ocsp-response"),
              (status = 304, description = "Not modified"),
              (status = 414, description = "The request is longer than any OCSP request", body = ErrorBody)))]
async fn get_split(
    State(app): State<App>,
    headers: HeaderMap,
    Path((first, rest)): Path<(String, String)>,
) -> Response {
    answer_get(&app, &headers, &format!("{first}/{rest}")).await
}

/// The same as `GET /ocsp/{request}/{rest}`, under the RFC 8615 well-known prefix.
#[utoipa::path(get, path = "/.well-known/pki/ocsp/{request}/{*rest}", tag = "ocsp", security(()),
    params(("request" = String, Path, description = "The request's base64 up to its first `/`"),
           ("rest" = String, Path, description = "The rest of it")),
    responses((status = 200, description = "An OCSP response", content_type = "application/ocsp-response"),
              (status = 304, description = "Not modified"),
              (status = 414, description = "The request is longer than any OCSP request", body = ErrorBody)))]
async fn get_split_well_known(
    State(app): State<App>,
    headers: HeaderMap,
    Path((first, rest)): Path<(String, String)>,
) -> Response {
    answer_get(&app, &headers, &format!("{first}/{rest}")).await
}

async fn answer_post(app: &App, headers: &HeaderMap, body: &[u8]) -> Response {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("application/ocsp-request") {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "an OCSP request is sent as application/ocsp-request",
        )
        .into_response();
    }
    // POST answers are for the asker: HTTP caches do not keep them (RFC 5019 §5).
    let OcspAnswer { der, .. } = app.authority.ocsp_respond(body).await;
    ([(header::CONTENT_TYPE, RESPONSE_TYPE)], der).into_response()
}

async fn answer_get(app: &App, headers: &HeaderMap, encoded: &str) -> Response {
    if encoded.len() > MAX_ENCODED {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "the URL is longer than any OCSP request; POST large requests",
        )
        .into_response();
    }
    let der = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(encoded.trim()).ok())
        .unwrap_or_default();
    let answer = app.authority.ocsp_respond(&der).await;
    match answer.cache {
        Some(fresh) => http_cache::respond(
            headers,
            Cached {
                content_type: RESPONSE_TYPE,
                body: answer.der,
                etag: &fresh.etag,
                last_modified: fresh.this_update,
                max_age: http_cache::seconds_until(app.authority.now(), fresh.next_update),
            },
        ),
        None => ([(header::CONTENT_TYPE, RESPONSE_TYPE)], answer.der).into_response(),
    }
}
