//! What every ACME request carries: the base URL, the profile, the client's origin; and how
//! answers and problems go back (fresh nonce, index link, `application/problem+json`).

use authority::Origin;
use authority::acme::{AcmeProfileRow, ProblemType};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::problem::Failure;
use crate::App;
use crate::listen::Conn;

/// One ACME request's surroundings.
pub struct Ctx {
    pub app: App,
    /// `external_url`, or `https://host[:port]` as the client addressed us.
    pub base: String,
    /// The profile whose directory the request belongs to.
    pub profile: AcmeProfileRow,
    /// The client's address and user agent.
    pub origin: Origin,
    /// The full URL of this request, which a JWS must name (RFC 8555 §6.4).
    pub url: String,
}

impl Ctx {
    /// Resolves the profile (`None`: the default one) and the URLs of a request.
    pub async fn new(
        app: &App,
        profile: Option<&str>,
        uri: &Uri,
        headers: &HeaderMap,
        conn: Option<&Conn>,
        origin: Option<Origin>,
    ) -> Result<Self, Failure> {
        if !conn.is_some_and(|c| c.tls) {
            return Err(
                Failure::new(ProblemType::Malformed, "ACME is served over HTTPS only")
                    .with_status(StatusCode::FORBIDDEN),
            );
        }
        let base = match &app.external_url {
            Some(external) => external.clone(),
            None => format!("https://{}", host(uri, headers)?),
        };
        let profile = app.authority.acme_profile(profile).await?;
        Ok(Self {
            url: format!("{base}{}", uri.path()),
            app: app.clone(),
            base,
            profile,
            origin: origin.unwrap_or_default(),
        })
    }

    /// The URL of `tail` under this profile.
    pub fn url(&self, tail: &str) -> String {
        format!("{}/acme/{}/{tail}", self.base, self.profile.name)
    }

    /// The account URL of `refid` (its `kid`).
    pub fn account_url(&self, refid: &str) -> String {
        self.url(&format!("acct/{refid}"))
    }

    /// An answer with a fresh nonce and the index link, as every ACME response has.
    pub async fn answer(&self, status: StatusCode, mut response: Response) -> Response {
        *response.status_mut() = status;
        self.decorate(&mut response).await;
        response
    }

    /// A problem, with a fresh nonce (which a `badNonce` client needs to retry).
    pub async fn fail(&self, failure: impl Into<Failure>) -> Response {
        let failure = failure.into();
        let account = failure.account().map(|refid| self.account_url(refid));
        let mut response = failure.into_response();
        if let Some(url) = account {
            response = located(response, &url);
        }
        self.decorate(&mut response).await;
        response
    }

    /// The answer to a handler's outcome.
    pub async fn finish(&self, outcome: Result<(StatusCode, Response), Failure>) -> Response {
        match outcome {
            Ok((status, response)) => self.answer(status, response).await,
            Err(problem) => self.fail(problem).await,
        }
    }

    async fn decorate(&self, response: &mut Response) {
        let headers = response.headers_mut();
        match self.app.authority.acme_nonce().await {
            Ok(nonce) => {
                if let Ok(v) = HeaderValue::from_str(&nonce) {
                    headers.insert("replay-nonce", v);
                }
            }
            Err(e) => tracing::error!("no ACME nonce: {e}"),
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{}>;rel=\"index\"", self.url("directory")))
        {
            headers.append(header::LINK, v);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The host the client addressed.
fn host(uri: &Uri, headers: &HeaderMap) -> Result<String, Failure> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(ToString::to_string))
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '@']))
        .ok_or_else(|| Failure::new(ProblemType::Malformed, "the request names no host"))
}

/// A JSON body.
pub fn json(value: &serde_json::Value) -> Response {
    let mut response = serde_json::to_vec(value)
        .unwrap_or_default()
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Adds `Location: url`.
pub fn located(mut response: Response, url: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(url) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}
