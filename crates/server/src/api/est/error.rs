//! EST's one error mapping: the authority's kinds as the REST API maps them (RFC 7030 §4.2.3
//! leaves the body to the server; ours is the same JSON error body), with the challenge HTTP
//! Basic needs on a 401 (RFC 7030 §3.2.3, RFC 7617).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The challenge sent with every 401.
pub const CHALLENGE: &str = "Basic realm=\"certmint EST\"";

/// A refused EST request.
#[derive(Debug)]
pub struct EstError(pub ApiError);

impl From<authority::Error> for EstError {
    fn from(e: authority::Error) -> Self {
        Self(e.into())
    }
}

impl From<ApiError> for EstError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for EstError {
    fn into_response(self) -> Response {
        let unauthorized = self.0.status() == StatusCode::UNAUTHORIZED;
        let mut response = self.0.into_response();
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(CHALLENGE),
            );
        }
        response
    }
}

pub type EstResult<T> = Result<T, EstError>;
