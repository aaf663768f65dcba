//! The one place where errors become HTTP responses: `{"error": true, "code", "message"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The error body of every `/api/v2` response that is not a success.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always true.
    pub error: bool,
    /// The HTTP status code.
    pub code: u16,
    /// What was wrong, for a person.
    pub message: String,
    /// When the linter refused what was about to be signed: each finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lint: Option<Vec<LintFinding>>,
}

/// A rule the linter found broken.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LintFinding {
    /// The rule's name.
    pub rule: &'static str,
    /// `error` or `warning`.
    pub severity: &'static str,
    /// Where the rule comes from.
    pub citation: &'static str,
    /// What exactly is wrong.
    pub detail: String,
}

impl LintFinding {
    /// The findings of `report`.
    pub fn all(report: &authority::pki::lint::Report) -> Vec<Self> {
        report
            .findings
            .iter()
            .map(|f| Self {
                rule: f.rule.name,
                severity: f.severity.as_str(),
                citation: f.rule.citation,
                detail: f.detail.clone(),
            })
            .collect()
    }
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
    lint: Option<Vec<LintFinding>>,
}

impl ApiError {
    /// An error with a status and a message for the client.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            lint: None,
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 422.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("too many requests; retry after {retry_after} seconds"),
            retry_after: Some(retry_after),
            lint: None,
        }
    }

    /// The status this error will be sent with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What the client is told.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<authority::Error> for ApiError {
    fn from(e: authority::Error) -> Self {
        use authority::Error as E;
        let status = match &e {
            E::Invalid(_) | E::Lint(_) | E::BadCsr(_) | E::RejectedIdentifier(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            E::Malformed(_) => StatusCode::BAD_REQUEST,
            E::Unauthorized(_) | E::Locked { .. } => StatusCode::UNAUTHORIZED,
            E::Forbidden(_) => StatusCode::FORBIDDEN,
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Conflict(_) | E::AlreadyRevoked(_) => StatusCode::CONFLICT,
            E::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            E::Unavailable(_) | E::StorageFull | E::Busy(_) | E::KeyUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            E::Upstream(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match &e {
            E::Internal(detail) => tracing::error!(%detail, "internal error"),
            E::Unavailable(detail) => tracing::warn!(%detail, "database unavailable"),
            E::KeyUnavailable(detail) => tracing::warn!(%detail, "CA key unavailable"),
            _ => {}
        }
        let message = match &e {
            E::Unavailable(_) => "the database is unavailable; try again shortly".to_owned(),
            other => other.to_string(),
        };
        let mut error = Self::new(status, message);
        if let E::Lint(report) = &e {
            error.lint = Some(LintFinding::all(report));
        }
        error.retry_after = e.retry_after();
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: true,
            code: self.status.as_u16(),
            message: self.message,
            lint: self.lint,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of refusal the authority makes has its one status here, with `Retry-After`
    /// exactly where waiting helps, and the database's words stay out of the answer.
    #[test]
    fn authority_errors_map_to_their_statuses() {
        use authority::Error as E;
        let cases = [
            (
                E::Invalid("x".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
            ),
            (
                E::BadCsr("x".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
            ),
            (
                E::RejectedIdentifier("x".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
            ),
            (E::Malformed("x".into()), StatusCode::BAD_REQUEST, None),
            (E::Forbidden("x".into()), StatusCode::FORBIDDEN, None),
            (E::NotFound("x".into()), StatusCode::NOT_FOUND, None),
            (E::Conflict("x".into()), StatusCode::CONFLICT, None),
            (E::AlreadyRevoked("x".into()), StatusCode::CONFLICT, None),
            (
                E::RateLimited {
                    detail: "x".into(),
                    retry_after: 30,
                },
                StatusCode::TOO_MANY_REQUESTS,
                Some(30),
            ),
            (
                E::Busy("x".into()),
                StatusCode::SERVICE_UNAVAILABLE,
                Some(authority::blocking::RETRY_AFTER_SECONDS),
            ),
            (E::StorageFull, StatusCode::SERVICE_UNAVAILABLE, Some(5)),
            (
                E::KeyUnavailable("x".into()),
                StatusCode::SERVICE_UNAVAILABLE,
                Some(5),
            ),
            (
                E::Internal("x".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
            ),
        ];
        for (error, status, retry_after) in cases {
            let shown = format!("{error:?}");
            let api = ApiError::from(error);
            assert_eq!(api.status, status, "{shown}");
            assert_eq!(api.retry_after, retry_after, "{shown}");
        }
        let down = ApiError::from(E::Unavailable("db.internal.example:5432 refused".into()));
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.retry_after, Some(5));
        assert!(!down.message.contains("db.internal"), "{}", down.message);
    }
}
