//! EST (RFC 7030) at `/.well-known/est/` and `/.well-known/est/{label}/`: the CA
//! certificates, the CSR attributes, and enrollment (simple, re-enrollment, server-side key
//! generation). Over HTTPS only: a request on the plain-HTTP listener is refused.
//!
//! The routes are public as far as the access guard goes: EST authenticates its own clients
//! (HTTP Basic, or the TLS client certificate the connection carries), in the authority.

mod error;
mod wire;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::access;
use crate::error::{ApiError, ErrorBody};
use crate::listen::Conn;
use authority::est::{EstCaller, EstOperation};
use error::{EstError, EstResult};
use wire::CERTS_ONLY;

/// The largest request body: a CSR, base64, with room for large RSA keys and extensions.
const MAX_BODY: usize = 64 * 1024;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(cacerts))
        .routes(routes!(cacerts_labelled))
        .routes(routes!(csrattrs))
        .routes(routes!(csrattrs_labelled))
        .routes(routes!(simpleenroll))
        .routes(routes!(simpleenroll_labelled))
        .routes(routes!(simplereenroll))
        .routes(routes!(simplereenroll_labelled))
        .routes(routes!(serverkeygen))
        .routes(routes!(serverkeygen_labelled))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// Refuses a request that did not come over TLS: EST's credentials and keys need it.
fn over_tls(conn: Option<&Conn>) -> EstResult<()> {
    if conn.is_some_and(|c| c.tls) {
        Ok(())
    } else {
        Err(ApiError::forbidden("EST is served over HTTPS only").into())
    }
}

async fn answer_cacerts(
    app: &App,
    conn: Option<&Conn>,
    label: Option<&str>,
) -> EstResult<Response> {
    over_tls(conn)?;
    let pkcs7 = app.authority.est_ca_certs(label).await?;
    Ok(wire::base64_answer("application/pkcs7-mime", &pkcs7))
}

async fn answer_csrattrs(
    app: &App,
    conn: Option<&Conn>,
    label: Option<&str>,
) -> EstResult<Response> {
    over_tls(conn)?;
    Ok(match app.authority.est_csr_attrs(label).await? {
        Some(der) => wire::base64_answer("application/csrattrs", &der),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn answer_enroll(
    app: &App,
    conn: Option<&Conn>,
    label: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    operation: EstOperation,
) -> EstResult<Response> {
    over_tls(conn)?;
    wire::require_media_type(headers, "application/pkcs10")?;
    let basic = wire::basic_credentials(headers)?;
    // Wrong passwords are counted per address, and past the login limit the address is
    // refused before another costs an Argon2 verification.
    let address = conn.map(|c| c.client);
    if basic.is_some() {
        app.limits.follow(&app.authority).await;
    }
    if basic.is_some()
        && let Some(ip) = address
        && let Err(retry_after) = app.limits.est_failures.spent(ip)
    {
        return Err(ApiError::rate_limited(retry_after).into());
    }
    let guessing = basic.is_some();
    let caller = EstCaller {
        basic,
        client_certificate: conn
            .and_then(|c| c.client_chain.as_ref())
            .and_then(|chain| chain.first())
            .map(|c| c.to_vec()),
        origin: access::origin(conn, headers),
    };
    let csr = wire::decode_base64(body)?;
    let issued = match app
        .authority
        .est_enroll(label, &caller, operation, &csr)
        .await
    {
        Ok(issued) => issued,
        Err(e) => {
            if guessing
                && matches!(e, authority::Error::Unauthorized(_))
                && let Some(ip) = address
            {
                let _ = app.limits.est_failures.check(ip);
            }
            return Err(e.into());
        }
    };
    let pkcs7 = authority::pki::bundle::pkcs7_certs_only(&[&issued.certificate.cert.der])
        .map_err(|e| EstError::from(authority::Error::Internal(e.to_string())))?;
    Ok(match (operation, &issued.key) {
        (EstOperation::ServerKeyGen, Some(key)) => {
            wire::key_and_certificate(key.pkcs8_der(), &pkcs7)
        }
        (EstOperation::ServerKeyGen, None) => {
            return Err(authority::Error::Internal(
                "server-side key generation issued without a key".into(),
            )
            .into());
        }
        _ => wire::base64_answer(CERTS_ONLY, &pkcs7),
    })
}

fn conn_ref(conn: &Option<Extension<Conn>>) -> Option<&Conn> {
    conn.as_ref().map(|Extension(c)| c)
}

/// The CA certificates of the default endpoint: its CA's chain, a certs-only PKCS#7, base64.
#[utoipa::path(get, path = "/.well-known/est/cacerts", tag = "est", security(()),
    responses((status = 200, description = "A certs-only PKCS#7, base64", content_type = "application/pkcs7-mime"),
              (status = 403, description = "Not over HTTPS", body = ErrorBody),
              (status = 404, description = "EST is off", body = ErrorBody)))]
async fn cacerts(State(app): State<App>, conn: Option<Extension<Conn>>) -> EstResult<Response> {
    answer_cacerts(&app, conn_ref(&conn), None).await
}

/// The CA certificates of a label: its CA's chain, a certs-only PKCS#7, base64.
#[utoipa::path(get, path = "/.well-known/est/{label}/cacerts", tag = "est", security(()),
    params(("label" = String, Path, description = "The EST label")),
    responses((status = 200, description = "A certs-only PKCS#7, base64", content_type = "application/pkcs7-mime"),
              (status = 403, description = "Not over HTTPS", body = ErrorBody),
              (status = 404, description = "EST is off, or no such label", body = ErrorBody)))]
async fn cacerts_labelled(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    Path(label): Path<String>,
) -> EstResult<Response> {
    answer_cacerts(&app, conn_ref(&conn), Some(&label)).await
}

/// What the default endpoint's template asks a CSR to carry (RFC 7030 §4.5): a `CsrAttrs`,
/// base64, or 204 when it asks nothing.
#[utoipa::path(get, path = "/.well-known/est/csrattrs", tag = "est", security(()),
    responses((status = 200, description = "CsrAttrs, base64", content_type = "application/csrattrs"),
              (status = 204, description = "Nothing asked"),
              (status = 403, description = "Not over HTTPS", body = ErrorBody),
              (status = 404, description = "EST is off", body = ErrorBody)))]
async fn csrattrs(State(app): State<App>, conn: Option<Extension<Conn>>) -> EstResult<Response> {
    answer_csrattrs(&app, conn_ref(&conn), None).await
}

/// What a label's template asks a CSR to carry: a `CsrAttrs`, base64, or 204.
#[utoipa::path(get, path = "/.well-known/est/{label}/csrattrs", tag = "est", security(()),
    params(("label" = String, Path, description = "The EST label")),
    responses((status = 200, description = "CsrAttrs, base64", content_type = "application/csrattrs"),
              (status = 204, description = "Nothing asked"),
              (status = 403, description = "Not over HTTPS", body = ErrorBody),
              (status = 404, description = "EST is off, or no such label", body = ErrorBody)))]
async fn csrattrs_labelled(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    Path(label): Path<String>,
) -> EstResult<Response> {
    answer_csrattrs(&app, conn_ref(&conn), Some(&label)).await
}

/// Enrollment at the default endpoint (RFC 7030 §4.2.1): a base64 PKCS#10 CSR in, the
/// certificate out as a certs-only PKCS#7, base64. HTTP Basic or a TLS client certificate
/// issued by the endpoint's CA.
#[utoipa::path(post, path = "/.well-known/est/simpleenroll", tag = "est", security(()),
    request_body(content_type = "application/pkcs10", description = "A PKCS#10 CSR, base64"),
    responses((status = 200, description = "The certificate, a certs-only PKCS#7, base64", content_type = "application/pkcs7-mime"),
              (status = 400, description = "Not base64", body = ErrorBody),
              (status = 401, description = "No credentials, or wrong ones", body = ErrorBody),
              (status = 403, description = "Not over HTTPS, or a client certificate that does not pass", body = ErrorBody),
              (status = 415, description = "Not application/pkcs10", body = ErrorBody),
              (status = 422, description = "A CSR that does not parse or verify, or that the template refuses", body = ErrorBody)))]
async fn simpleenroll(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    body: Bytes,
) -> EstResult<Response> {
    answer_enroll(
        &app,
        conn_ref(&conn),
        None,
        &headers,
        &body,
        EstOperation::Enroll,
    )
    .await
}

/// Enrollment at a label.
#[utoipa::path(post, path = "/.well-known/est/{label}/simpleenroll", tag = "est", security(()),
    params(("label" = String, Path, description = "The EST label")),
    request_body(content_type = "application/pkcs10", description = "A PKCS#10 CSR, base64"),
    responses((status = 200, description = "The certificate, a certs-only PKCS#7, base64", content_type = "application/pkcs7-mime"),
              (status = 400, description = "Not base64", body = ErrorBody),
              (status = 401, description = "No credentials, or wrong ones", body = ErrorBody),
              (status = 403, description = "Not over HTTPS, or a client certificate that does not pass", body = ErrorBody),
              (status = 404, description = "EST is off, or no such label", body = ErrorBody),
              (status = 415, description = "Not application/pkcs10", body = ErrorBody),
              (status = 422, description = "A CSR that does not parse or verify, or that the template refuses", body = ErrorBody)))]
async fn simpleenroll_labelled(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    Path(label): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> EstResult<Response> {
    let conn = conn_ref(&conn);
    answer_enroll(
        &app,
        conn,
        Some(&label),
        &headers,
        &body,
        EstOperation::Enroll,
    )
    .await
}

/// Re-enrollment at the default endpoint (RFC 7030 §4.2.2): the TLS client certificate is
/// the one renewed, and the CSR keeps its subject and SANs.
#[utoipa::path(post, path = "/.well-known/est/simplereenroll", tag = "est", security(()),
    request_body(content_type = "application/pkcs10", description = "A PKCS#10 CSR, base64"),
    responses((status = 200, description = "The new certificate, a certs-only PKCS#7, base64", content_type = "application/pkcs7-mime"),
              (status = 403, description = "Not over HTTPS, or no usable client certificate", body = ErrorBody),
              (status = 422, description = "A CSR that changes the subject or SANs, or is refused", body = ErrorBody)))]
async fn simplereenroll(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    body: Bytes,
) -> EstResult<Response> {
    let conn = conn_ref(&conn);
    answer_enroll(&app, conn, None, &headers, &body, EstOperation::Reenroll).await
}

/// Re-enrollment at a label.
#[utoipa::path(post, path = "/.well-known/est/{label}/simplereenroll", tag = "est", security(()),
    params(("label" = String, Path, description = "The EST label")),
    request_body(content_type = "application/pkcs10", description = "A PKCS#10 CSR, base64"),
    responses((status = 200, description = "The new certificate, a certs-only PKCS#7, base64", content_type = "application/pkcs7-mime"),
              (status = 403, description = "Not over HTTPS, or no usable client certificate", body = ErrorBody),
              (status = 404, description = "EST is off, or no such label", body = ErrorBody),
              (status = 422, description = "A CSR that changes the subject or SANs, or is refused", body = ErrorBody)))]
async fn simplereenroll_labelled(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    Path(label): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> EstResult<Response> {
    let conn = conn_ref(&conn);
    answer_enroll(
        &app,
        conn,
        Some(&label),
        &headers,
        &body,
        EstOperation::Reenroll,
    )
    .await
}

/// Server-side key generation at the default endpoint (RFC 7030 §4.4): the CSR names the
/// subject and SANs; the answer is `multipart/mixed` with the private key (PKCS#8, base64)
/// and the certificate.
#[utoipa::path(post, path = "/.well-known/est/serverkeygen", tag = "est", security(()),
    request_body(content_type = "application/pkcs10", description = "A PKCS#10 CSR, base64"),
    responses((status = 200, description = "The key and the certificate", content_type = "multipart/mixed"),
              (status = 401, description = "No credentials, or wrong ones", body = ErrorBody),
              (status = 403, description = "Not over HTTPS", body = ErrorBody),
              (status = 422, description = "A CSR that does not parse or verify, or is refused", body = ErrorBody),
              (status = 503, description = "Key generation is busy", body = ErrorBody)))]
async fn serverkeygen(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    body: Bytes,
) -> EstResult<Response> {
    let conn = conn_ref(&conn);
    answer_enroll(
        &app,
        conn,
        None,
        &headers,
        &body,
        EstOperation::ServerKeyGen,
    )
    .await
}

/// Server-side key generation at a label.
#[utoipa::path(post, path = "/.well-known/est/{label}/serverkeygen", tag = "est", security(()),
    params(("label" = String, Path, description = "The EST label")),
    request_body(content_type = "application/pkcs10", description = "A PKCS#10 CSR, base64"),
    responses((status = 200, description = "The key and the certificate", content_type = "multipart/mixed"),
              (status = 401, description = "No credentials, or wrong ones", body = ErrorBody),
              (status = 403, description = "Not over HTTPS", body = ErrorBody),
              (status = 404, description = "EST is off, or no such label", body = ErrorBody),
              (status = 422, description = "A CSR that does not parse or verify, or is refused", body = ErrorBody),
              (status = 503, description = "Key generation is busy", body = ErrorBody)))]
async fn serverkeygen_labelled(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    Path(label): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> EstResult<Response> {
    let conn = conn_ref(&conn);
    answer_enroll(
        &app,
        conn,
        Some(&label),
        &headers,
        &body,
        EstOperation::ServerKeyGen,
    )
    .await
}
