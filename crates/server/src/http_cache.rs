//! HTTP caching for published objects (CRLs, OCSP responses): validators, freshness and
//! conditional requests (RFC 9110 §8.8 and §13, RFC 9111 §5.2), so that caches and CDNs can
//! serve them.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
const HTTP_DATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// A published object with what caches need to know of it.
pub struct Cached<'a> {
    /// The media type.
    pub content_type: &'static str,
    /// The body.
    pub body: axum::body::Bytes,
    /// A strong validator, without quotes.
    pub etag: &'a str,
    /// When it was made.
    pub last_modified: OffsetDateTime,
    /// How long caches may keep it, in seconds.
    pub max_age: u64,
}

/// `time` as an IMF-fixdate.
pub fn http_date(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(HTTP_DATE)
        .unwrap_or_default()
}

fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim().strip_suffix(" GMT")?;
    time::PrimitiveDateTime::parse(
        text,
        format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second]"
        ),
    )
    .ok()
    .map(time::PrimitiveDateTime::assume_utc)
}

/// The response for `cached`: 304 Not Modified when the request's validators match
/// (`If-None-Match` first, `If-Modified-Since` only without it), the object otherwise.
pub fn respond(request: &HeaderMap, cached: Cached<'_>) -> Response {
    let etag = format!("\"{}\"", cached.etag);
    let not_modified = match request.get(header::IF_NONE_MATCH) {
        Some(wanted) => wanted.to_str().is_ok_and(|list| {
            list.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
        }),
        None => request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
            .is_some_and(|since| since.unix_timestamp() >= cached.last_modified.unix_timestamp()),
    };
    let mut headers = HeaderMap::new();
    let mut put = |name, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put(header::ETAG, etag);
    put(header::LAST_MODIFIED, http_date(cached.last_modified));
    put(
        header::CACHE_CONTROL,
        format!("public, max-age={}, no-transform", cached.max_age),
    );
    if not_modified {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(cached.content_type),
    );
    (headers, cached.body).into_response()
}

/// Seconds from `now` until `until`, none once it has passed.
pub fn seconds_until(now: OffsetDateTime, until: OffsetDateTime) -> u64 {
    u64::try_from((until - now).whole_seconds()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn http_dates_round_trip() {
        let t = datetime!(1994-11-06 08:49:37 UTC);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }
}
