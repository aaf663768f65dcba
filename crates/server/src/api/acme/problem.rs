//! Problem documents (RFC 8555 §6.7, RFC 7807): the one place where the authority's refusals
//! and errors become HTTP answers — the status each is sent with, `Retry-After`, the account a
//! key conflict is with — and where a problem is written out as JSON.

use authority::acme::{AcmeError, Problem, ProblemType};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A failed ACME request, as it is answered (boxed: it travels in every handler's `Result`).
#[derive(Debug)]
pub struct Failure(Box<Answer>);

#[derive(Debug)]
struct Answer {
    problem: Problem,
    status: StatusCode,
    retry_after: Option<u64>,
    /// The account whose URL the answer names (a key change to a key in use, RFC 8555 §7.3.5).
    account: Option<String>,
}

impl Failure {
    /// A problem of `kind` saying `detail`, with the status that kind is sent with.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Problem::new(kind, detail).into()
    }

    /// The same failure, sent with `status`.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.0.status = status;
        self
    }

    /// The refid of the account the answer names, if it names one.
    pub fn account(&self) -> Option<&str> {
        self.0.account.as_deref()
    }
}

/// The HTTP status a problem of `kind` is sent with.
pub fn status_of(kind: ProblemType) -> StatusCode {
    match kind {
        // 403, as RFC 8555's examples and Boulder answer: 401 would need an HTTP
        // authentication scheme, which ACME does not use.
        ProblemType::Unauthorized
        | ProblemType::ExternalAccountRequired
        | ProblemType::Caa
        | ProblemType::RejectedIdentifier
        | ProblemType::UserActionRequired
        | ProblemType::OrderNotReady => StatusCode::FORBIDDEN,
        ProblemType::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ProblemType::AlreadyReplaced => StatusCode::CONFLICT,
        ProblemType::ServerInternal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<Problem> for Failure {
    fn from(problem: Problem) -> Self {
        Self(Box::new(Answer {
            status: status_of(problem.kind),
            problem,
            retry_after: None,
            account: None,
        }))
    }
}

impl From<authority::Error> for Failure {
    fn from(e: authority::Error) -> Self {
        use authority::Error;
        let status = match &e {
            Error::NotFound(_) => Some(StatusCode::NOT_FOUND),
            Error::Conflict(_) => Some(StatusCode::CONFLICT),
            e if e.is_transient() => Some(StatusCode::SERVICE_UNAVAILABLE),
            _ => None,
        };
        let retry_after = e.retry_after();
        let problem = Problem::from(e);
        Self(Box::new(Answer {
            status: status.unwrap_or_else(|| status_of(problem.kind)),
            problem,
            retry_after,
            account: None,
        }))
    }
}

impl From<AcmeError> for Failure {
    fn from(e: AcmeError) -> Self {
        match e {
            AcmeError::Problem(problem) => problem.into(),
            AcmeError::KeyInUse { account } => {
                let mut failure = Self::new(
                    ProblemType::Malformed,
                    "the new key already belongs to an account",
                )
                .with_status(StatusCode::CONFLICT);
                failure.0.account = Some(account);
                failure
            }
            AcmeError::Failed(e) => e.into(),
        }
    }
}

/// `problem` as a problem document sent with `status`; subproblems carry their own.
pub fn document(problem: &Problem, status: StatusCode) -> Value {
    let mut body = json!({
        "type": problem.kind.urn(),
        "detail": problem.detail,
        "status": status.as_u16(),
    });
    if let Some(identifier) = &problem.identifier {
        body["identifier"] = json!(identifier);
    }
    if !problem.subproblems.is_empty() {
        body["subproblems"] = problem
            .subproblems
            .iter()
            .map(|p| document(p, status_of(p.kind)))
            .collect();
    }
    if !problem.algorithms.is_empty() {
        body["algorithms"] = json!(problem.algorithms);
    }
    body
}

/// A problem kept on an order or a challenge, as its `error` field.
pub fn recorded(problem: &Problem) -> Value {
    document(problem, status_of(problem.kind))
}

/// `application/problem+json`, with `Retry-After` where waiting helps.
impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let Answer {
            problem,
            status,
            retry_after,
            ..
        } = *self.0;
        let body = serde_json::to_vec(&document(&problem, status)).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use authority::Error;
    use authority::acme::Identifier;

    use super::*;

    async fn answered(failure: Failure) -> (StatusCode, Value, Option<String>) {
        let response = failure.into_response();
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE),
            Some(&HeaderValue::from_static("application/problem+json"))
        );
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("the body is read");
        let body = serde_json::from_slice(&bytes).expect("the body is JSON");
        (status, body, retry)
    }

    /// Each typed error of the authority is answered with its own status and problem type,
    /// with `Retry-After` where waiting helps, and the database's words never reach a client.
    #[tokio::test]
    async fn each_error_is_answered_once_with_its_status() {
        let cases = [
            (Error::BadCsr("bad".into()), 400, "badCSR"),
            (
                Error::RejectedIdentifier("no".into()),
                403,
                "rejectedIdentifier",
            ),
            (Error::AlreadyRevoked("twice".into()), 400, "alreadyRevoked"),
            (Error::Invalid("x".into()), 400, "malformed"),
            (Error::Forbidden("x".into()), 403, "unauthorized"),
            (Error::NotFound("no such order".into()), 404, "malformed"),
            (
                Error::Conflict("acme_accounts.thumbprint".into()),
                409,
                "malformed",
            ),
            (
                Error::Internal("UNIQUE constraint failed".into()),
                500,
                "serverInternal",
            ),
        ];
        for (error, status, kind) in cases {
            let (sent, body, retry) = answered(error.into()).await;
            assert_eq!(sent.as_u16(), status, "{body}");
            assert_eq!(body["status"], status, "{body}");
            assert_eq!(body["type"], format!("urn:ietf:params:acme:error:{kind}"));
            assert_eq!(retry, None, "{body}");
            assert!(!body.to_string().contains("UNIQUE"), "{body}");
        }

        let (sent, body, retry) = answered(
            Error::RateLimited {
                detail: "at most 5 per 3600 seconds".into(),
                retry_after: 42,
            }
            .into(),
        )
        .await;
        assert_eq!((sent.as_u16(), retry.as_deref()), (429, Some("42")));
        assert_eq!(body["type"], "urn:ietf:params:acme:error:rateLimited");

        let (sent, body, retry) = answered(
            Error::Unavailable("error connecting to db.internal.example:5432".into()).into(),
        )
        .await;
        assert_eq!(sent, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry.is_some());
        assert_eq!(body["type"], "urn:ietf:params:acme:error:serverInternal");
        assert!(!body.to_string().contains("db.internal"), "{body}");

        for transient in [Error::StorageFull, Error::Busy("the pool is full".into())] {
            let (sent, _, retry) = answered(transient.into()).await;
            assert_eq!(sent, StatusCode::SERVICE_UNAVAILABLE);
            assert!(retry.is_some());
        }
    }

    #[tokio::test]
    async fn a_key_in_use_names_the_account_with_409() {
        let failure = Failure::from(AcmeError::KeyInUse {
            account: "acct-1".into(),
        });
        assert_eq!(failure.account(), Some("acct-1"));
        let (sent, body, _) = answered(failure).await;
        assert_eq!(sent, StatusCode::CONFLICT);
        assert_eq!(body["type"], "urn:ietf:params:acme:error:malformed");
    }

    /// RFC 8555 §6.7.1: subproblems each carry their type, status and identifier.
    #[test]
    fn a_compound_problem_lists_its_subproblems() {
        let problem = Problem {
            subproblems: vec![
                Problem::new(ProblemType::RejectedIdentifier, "not ours")
                    .about(Identifier::Dns("example.org".into())),
                Problem::new(ProblemType::Malformed, "bad name")
                    .about(Identifier::Dns("-x.example".into())),
            ],
            ..Problem::new(ProblemType::Compound, "two identifiers refused")
        };
        let body = recorded(&problem);
        assert_eq!(body["status"], 400);
        assert_eq!(body["subproblems"][0]["status"], 403);
        assert_eq!(
            body["subproblems"][0]["identifier"],
            json!({"type": "dns", "value": "example.org"})
        );
        assert_eq!(
            body["subproblems"][1]["type"],
            "urn:ietf:params:acme:error:malformed"
        );
        assert!(body.get("algorithms").is_none());
    }
}
