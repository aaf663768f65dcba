//! Extractors whose rejections speak the API's error body: a JSON body, a query string, and
//! the principal the access guard authenticated.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. Malformed JSON is 400, a missing content type 415, a body over the limit 413,
/// and wrong types, missing fields or unknown enum values 422, each with serde's account of
/// what was wrong and where.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    let message = match rejection {
        JsonRejection::JsonDataError(e) => format!("invalid request body: {}", source_text(e)),
        JsonRejection::JsonSyntaxError(e) => format!("malformed JSON: {}", source_text(e)),
        JsonRejection::MissingJsonContentType(_) => {
            "expected a request body with Content-Type: application/json".to_owned()
        }
        JsonRejection::BytesRejection(_) => {
            "request body is too large or could not be read".to_owned()
        }
        other => other.body_text(),
    };
    ApiError::new(rejection.status(), message)
}

/// The innermost error text (serde's message with its line and column), not axum's wrapper.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// A query string; anything that does not parse is 400 with serde's message.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                format!("invalid query string: {}", source_text(&e)),
            )),
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

/// The principal the access guard authenticated for this request.
#[derive(Debug, Clone)]
pub struct Caller(pub authority::Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<authority::Principal>()
            .cloned()
            .map(Self)
            .ok_or_else(|| ApiError::unauthorized("authentication required"))
    }
}

/// A path id: a positive integer, or 400.
#[derive(Debug, Clone, Copy)]
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request(e.body_text()))?;
        parse_id(&raw).map(Self)
    }
}

/// A positive integer id from a path segment.
///
/// # Errors
/// 400 naming the segment when it is not one.
pub fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_request(format!("'{raw}' is not a valid id")))
}

/// An uploaded file with its fields: `multipart/form-data` with the file in the part named
/// `file` and each other field a text part, or a JSON body of the fields (the file's text then
/// travels in a field the handler names). Text parts are read as a form, so `true` and `12`
/// fill bool and number fields.
#[derive(Debug)]
pub struct Upload<T> {
    /// The fields.
    pub fields: T,
    /// The `file` part's bytes, from a multipart body.
    pub file: Option<Vec<u8>>,
}

impl<S, T> FromRequest<S> for Upload<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let multipart = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if !multipart {
            let ApiJson(fields) = ApiJson::<T>::from_request(req, state).await?;
            return Ok(Self { fields, file: None });
        }
        let mut form = axum::extract::Multipart::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let unreadable = |e: axum::extract::multipart::MultipartError| {
            ApiError::bad_request(format!("unreadable multipart body: {}", e.body_text()))
        };
        let mut pairs = Vec::new();
        let mut file = None;
        while let Some(part) = form.next_field().await.map_err(unreadable)? {
            let name = part.name().unwrap_or_default().to_owned();
            if name == "file" {
                if file.is_some() {
                    return Err(ApiError::bad_request(
                        "send one part named 'file', not several",
                    ));
                }
                file = Some(part.bytes().await.map_err(unreadable)?.to_vec());
            } else {
                let text = part.text().await.map_err(unreadable)?;
                pairs.push((name, text));
            }
        }
        let encoded = serde_urlencoded::to_string(&pairs)
            .map_err(|e| ApiError::bad_request(format!("unusable form fields: {e}")))?;
        let fields = serde_urlencoded::from_str(&encoded)
            .map_err(|e| ApiError::invalid(format!("invalid form field: {e}")))?;
        Ok(Self { fields, file })
    }
}

/// The uploaded file, or else the text a JSON body sent in field `field`.
///
/// # Errors
/// 422 when there is neither.
pub fn file_or_text(
    file: Option<Vec<u8>>,
    text: Option<String>,
    field: &str,
) -> Result<Vec<u8>, ApiError> {
    match (file, text) {
        (Some(file), _) => Ok(file),
        (None, Some(text)) => Ok(text.into_bytes()),
        (None, None) => Err(ApiError::invalid(format!(
            "send the file as the multipart part 'file', or its text as '{field}'"
        ))),
    }
}
