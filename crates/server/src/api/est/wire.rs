//! EST's wire forms: base64 bodies (RFC 7030 §4, RFC 8951: line breaks tolerated), HTTP Basic
//! credentials, and the answers' media types.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::ApiError;

/// The media type of a certs-only PKCS#7 answer.
pub const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";

/// Base64 in lines of 64 characters, as `openssl base64 -d` reads it.
pub fn base64_lines(der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let mut out = String::with_capacity(text.len() + text.len() / 64 + 2);
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push_str("\r\n");
    }
    out
}

/// A base64 body, line breaks and other white space ignored.
///
/// # Errors
/// A 400 when it is not base64.
pub fn decode_base64(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(ApiError::bad_request(
            "the body is empty: send a base64 CSR",
        ));
    }
    STANDARD
        .decode(&compact)
        .map_err(|e| ApiError::bad_request(format!("the body is not base64: {e}")))
}

/// Checks that the request's media type is `expected` (parameters allowed).
///
/// # Errors
/// A 415 naming the type expected.
pub fn require_media_type(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if given.is_some_and(|t| t.eq_ignore_ascii_case(expected)) {
        return Ok(());
    }
    Err(ApiError::new(
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("send the request as {expected}, base64"),
    ))
}

/// The HTTP Basic user name and password, when the request carries them.
///
/// # Errors
/// A 401 for a Basic header that does not decode to `user:password`.
pub fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<(String, Zeroizing<String>)>, ApiError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let malformed = || ApiError::unauthorized("the HTTP Basic credentials do not decode");
    let decoded = Zeroizing::new(STANDARD.decode(encoded.trim()).map_err(|_| malformed())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| malformed())?;
    let (user, password) = text.split_once(':').ok_or_else(malformed)?;
    Ok(Some((user.to_owned(), Zeroizing::new(password.to_owned()))))
}

/// A base64 answer of media type `content_type`.
pub fn base64_answer(content_type: &'static str, der: &[u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::HeaderName::from_static("content-transfer-encoding"),
                HeaderValue::from_static("base64"),
            ),
        ],
        base64_lines(der),
    )
        .into_response()
}

/// The boundary of server-side key generation's answer: base64 holds no `-`, so no part can
/// contain it.
const BOUNDARY: &str = "certmint-est-serverkeygen";
const MULTIPART: &str = "multipart/mixed; boundary=certmint-est-serverkeygen";

/// The answer to `serverkeygen` (RFC 7030 §4.4.2): a `multipart/mixed` body with the private
/// key (PKCS#8) and the certificate (certs-only PKCS#7), never to be stored by caches.
pub fn key_and_certificate(pkcs8: &[u8], pkcs7: &[u8]) -> Response {
    let key = Zeroizing::new(base64_lines(pkcs8));
    let mut body = Zeroizing::new(String::new());
    for (content_type, part) in [
        ("application/pkcs8", key.as_str()),
        (CERTS_ONLY, base64_lines(pkcs7).as_str()),
    ] {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Type: {content_type}\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{part}"
        ));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(MULTIPART)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body.as_bytes().to_vec(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_with_line_breaks_decodes() {
        let der = (0..=255u8).collect::<Vec<_>>();
        let text = base64_lines(&der);
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(decode_base64(text.as_bytes()).expect("decodes"), der);
        assert!(decode_base64(b"not base64!").is_err());
        assert!(decode_base64(b" \r\n").is_err());
    }

    #[test]
    fn the_multipart_type_names_the_boundary_the_body_uses() {
        assert!(MULTIPART.ends_with(&format!("boundary={BOUNDARY}")));
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let mut headers = HeaderMap::new();
        assert!(basic_credentials(&headers).expect("none").is_none());
        let value = format!("Basic {}", STANDARD.encode("dev:pa:ss"));
        headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
        let (user, password) = basic_credentials(&headers).expect("ok").expect("some");
        assert_eq!((user.as_str(), password.as_str()), ("dev", "pa:ss"));
        headers.insert(header::AUTHORIZATION, "Basic %%%".parse().expect("header"));
        assert!(basic_credentials(&headers).is_err());
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert!(basic_credentials(&headers).expect("ignored").is_none());
    }
}
