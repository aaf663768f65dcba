//! Who may call what. Each route declares its access in its OpenAPI `security` requirement,
//! and this module enforces exactly what the document says: the declaration is the rule.
//!
//! * `security(())` — public;
//! * `security(("session" = []), ("api_key" = []))` — any authenticated caller;
//! * `security(("session" = []))` — a login session only, never an API key (the credentials
//!   that stand above keys: the password, the sessions);
//! * `security(("session" = ["read:users"]), ("api_key" = ["read:users"]))` — that permission.
//!
//! A route without a declaration is refused for everyone, and a test fails on it.

use std::collections::HashMap;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::App;
use crate::error::ApiError;
use crate::listen::Conn;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "certmint_session";
/// The header cookie-authenticated state-changing requests must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What a route requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// Any authenticated caller.
    Authenticated,
    /// A login session; API keys are refused.
    Session,
    /// A caller holding this permission.
    Permission(authority::Permission),
}

/// The access rule of every documented operation, keyed by method and path template.
#[derive(Debug, Default)]
pub struct AccessTable(HashMap<(Method, String), Access>);

const METHODS: [(&str, Method); 5] = [
    ("get", Method::GET),
    ("post", Method::POST),
    ("put", Method::PUT),
    ("patch", Method::PATCH),
    ("delete", Method::DELETE),
];

impl AccessTable {
    /// Reads the rules out of the OpenAPI document.
    ///
    /// # Errors
    /// A message naming the first operation without a usable declaration.
    pub fn from_openapi(doc: &serde_json::Value) -> Result<Self, String> {
        let mut table = HashMap::new();
        let paths = doc
            .get("paths")
            .and_then(serde_json::Value::as_object)
            .ok_or("the OpenAPI document has no paths")?;
        for (path, item) in paths {
            for (name, method) in &METHODS {
                let Some(op) = item.get(*name) else { continue };
                let access =
                    declared(op).map_err(|e| format!("{} {path}: {e}", name.to_uppercase()))?;
                table.insert((method.clone(), path.clone()), access);
            }
        }
        Ok(Self(table))
    }

    /// The rule for a method and a matched path template.
    pub fn get(&self, method: &Method, path: &str) -> Option<&Access> {
        self.0.get(&(method.clone(), path.to_owned()))
    }

    /// Whether any method of `path` is documented.
    pub fn knows_path(&self, path: &str) -> bool {
        self.0.keys().any(|(_, p)| p == path)
    }

    /// Every (method, path, rule), for tests and for listing.
    pub fn iter(&self) -> impl Iterator<Item = (&Method, &str, &Access)> {
        self.0.iter().map(|((m, p), a)| (m, p.as_str(), a))
    }
}

fn declared(op: &serde_json::Value) -> Result<Access, String> {
    let requirements = op
        .get("security")
        .and_then(serde_json::Value::as_array)
        .ok_or("no security declaration")?;
    let mut scopes = Vec::new();
    let mut api_keys = false;
    for requirement in requirements {
        let schemes = requirement
            .as_object()
            .ok_or("malformed security requirement")?;
        if schemes.is_empty() {
            return Ok(Access::Public);
        }
        for (scheme, granted) in schemes {
            api_keys |= scheme == "api_key";
            let list: Vec<String> = granted
                .as_array()
                .ok_or("malformed scopes")?
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect();
            scopes.push(list);
        }
    }
    let first = scopes.first().ok_or("empty security declaration")?;
    if scopes.iter().any(|s| s != first) {
        return Err("the session and api_key requirements name different permissions".into());
    }
    match first.as_slice() {
        [] if api_keys => Ok(Access::Authenticated),
        [] => Ok(Access::Session),
        [_] if !api_keys => Err("a session-only route names no permission".into()),
        [p] => authority::Permission::parse(p)
            .map(Access::Permission)
            .ok_or_else(|| format!("unknown permission '{p}'")),
        _ => Err("a route names at most one permission".into()),
    }
}

/// The health checks, which load balancers probe over plain HTTP too: they carry no secret.
const HEALTH: &[&str] = &[
    "/api/health",
    "/api/v2/health",
    "/api/v2/health/live",
    "/api/v2/health/ready",
];

/// Paths whose callers are rate-limited per client address: the endpoints that check a
/// password, a code or a passkey.
pub const RATE_LIMITED: &[&str] = &[
    "/api/v2/auth/login/password",
    "/api/v2/auth/login/2fa",
    "/api/v2/auth/login/2fa/setup",
    "/api/v2/auth/login/webauthn/start",
    "/api/v2/auth/login/webauthn/verify",
    "/api/v2/auth/login/mtls",
    "/api/v2/sso/login/{provider_id}",
    "/api/v2/sso/callback/{provider_id}",
    "/api/v2/sso/ldap/login",
    "/api/v2/account/2fa/disable",
    "/api/v2/auth/forgot-password",
    "/api/v2/auth/reset-password",
    "/api/v2/auth/methods",
    "/api/v2/account/password",
];

/// Reads that answer from this node's memory alone (the OCSP responder's view of the database,
/// the metrics), and so may be let in on a credential checked recently while the database cannot
/// be read to check it again: see [`authority::DatabaseDown`].
const READABLE_IN_OUTAGE: &[&str] = &["/api/v2/ocsp/status", "/metrics"];

/// Authenticates and authorises every routed request before its handler runs.
pub async fn guard(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let Some(path) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
    else {
        return next.run(req).await;
    };
    let conn = req.extensions().get::<Conn>().cloned();
    let origin = origin(conn.as_ref(), req.headers());
    req.extensions_mut().insert(origin.clone());
    if app.settings.api_https_only
        && !conn.as_ref().is_some_and(|c| c.tls)
        && path.starts_with("/api/")
        && !HEALTH.contains(&path.as_str())
    {
        return ApiError::forbidden("the REST API is served over HTTPS only").into_response();
    }
    if RATE_LIMITED.contains(&path.as_str())
        && let Some(c) = &conn
        && let Err(retry_after) = app.limits.check_login(&app.authority, c.client).await
    {
        return ApiError::rate_limited(retry_after).into_response();
    }
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    let Some(access) = app.access.get(&method, &path) else {
        if app.access.knows_path(&path) {
            // Another method of a documented path: the router answers 405.
            return next.run(req).await;
        }
        tracing::error!(%method, %path, "route has no declared access; refusing it");
        return ApiError::forbidden("this route declares no access rule").into_response();
    };
    if *access == Access::Public {
        return next.run(req).await;
    }
    let down = if method == Method::GET && READABLE_IN_OUTAGE.contains(&path.as_str()) {
        authority::DatabaseDown::TrustRecent
    } else {
        authority::DatabaseDown::Refuse
    };
    let principal = match authenticate(&app, req.method(), req.headers(), origin, down).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    match access {
        Access::Permission(p) if !principal.can(*p) => {
            return ApiError::forbidden(format!("this requires the permission '{p}'"))
                .into_response();
        }
        Access::Session if principal.session_id().is_none() => {
            return ApiError::forbidden("this needs a login session; API keys cannot do it")
                .into_response();
        }
        _ => {}
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Who is asking, for the audit log: the peer address and the user agent (cut to 256
/// characters).
pub fn origin(conn: Option<&Conn>, headers: &HeaderMap) -> authority::Origin {
    authority::Origin {
        ip: conn.map(|c| c.client.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
    }
}

/// The session cookie's value, or one that clears it (`max_age` 0): HttpOnly, SameSite=Strict,
/// Secure over TLS. The API's login and the console's set the same cookie.
pub fn session_cookie(value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// The principal of the session cookie in `headers`, whatever the method: the caller checks
/// the CSRF token of a state-changing request (a header for the API, a form field for the
/// console).
///
/// # Errors
/// 401 without a cookie or for one that names no live session.
pub async fn session(
    app: &App,
    headers: &HeaderMap,
    origin: authority::Origin,
    down: authority::DatabaseDown,
) -> Result<authority::Principal, ApiError> {
    let token = cookie(headers, SESSION_COOKIE)
        .ok_or_else(|| ApiError::unauthorized("authentication required: log in"))?;
    Ok(app
        .authority
        .authenticate_session(token, origin, down)
        .await?)
}

/// Whether `sent` is the CSRF token of `principal`'s session.
pub fn csrf_matches(principal: &authority::Principal, sent: &str) -> bool {
    match &principal.credential {
        authority::Credential::Session { csrf_token, .. } => {
            !csrf_token.is_empty() && authority::token::constant_time_eq(sent, csrf_token)
        }
        _ => false,
    }
}

async fn authenticate(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    origin: authority::Origin,
    down: authority::DatabaseDown,
) -> Result<authority::Principal, ApiError> {
    if let Some(key) = api_key(headers) {
        return Ok(app
            .authority
            .authenticate_api_key(key, origin, down)
            .await?);
    }
    if cookie(headers, SESSION_COOKIE).is_some() {
        let principal = session(app, headers, origin, down).await?;
        if !method.is_safe() {
            let sent = headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !csrf_matches(&principal, sent) {
                return Err(ApiError::forbidden(
                    "missing or wrong X-CSRF-Token header (send the csrf_token from login)",
                ));
            }
        }
        return Ok(principal);
    }
    Err(ApiError::unauthorized(
        "authentication required: log in for a session cookie, or send an API key",
    ))
}

fn api_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_declarations() -> Result<(), String> {
        let doc = json!({"paths": {
            "/a": {"get": {"security": [{}]}},
            "/b": {"get": {"security": [{"session": []}, {"api_key": []}]}},
            "/c": {"post": {"security": [{"session": ["write:cas"]}, {"api_key": ["write:cas"]}]}},
            "/d": {"post": {"security": [{"session": []}]}}
        }});
        let t = AccessTable::from_openapi(&doc)?;
        assert_eq!(t.get(&Method::GET, "/a"), Some(&Access::Public));
        assert_eq!(t.get(&Method::GET, "/b"), Some(&Access::Authenticated));
        assert_eq!(
            t.get(&Method::POST, "/c"),
            Some(&Access::Permission(authority::Permission::WriteCas))
        );
        assert_eq!(t.get(&Method::GET, "/c"), None);
        assert_eq!(t.get(&Method::POST, "/d"), Some(&Access::Session));
        Ok(())
    }

    #[test]
    fn refuses_undeclared_or_inconsistent_routes() {
        let missing = json!({"paths": {"/a": {"get": {}}}});
        assert!(AccessTable::from_openapi(&missing).is_err());
        let mixed = json!({"paths": {"/a": {"get": {"security": [{"session": ["a:b"]}, {"api_key": ["c:d"]}]}}}});
        assert!(AccessTable::from_openapi(&mixed).is_err());
        let session_permission =
            json!({"paths": {"/a": {"get": {"security": [{"session": ["a:b"]}]}}}});
        assert!(AccessTable::from_openapi(&session_permission).is_err());
        let unknown = json!({"paths": {"/a": {"get": {"security": [{"session": ["fly:kites"]}, {"api_key": ["fly:kites"]}]}}}});
        assert!(AccessTable::from_openapi(&unknown).is_err());
    }

    #[test]
    fn finds_cookies_and_keys() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; certmint_session=tok; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
        h.insert("x-api-key", HeaderValue::from_static("cm_abc"));
        assert_eq!(api_key(&h), Some("cm_abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer cm_xyz"),
        );
        assert_eq!(api_key(&h), Some("cm_xyz"));
    }
}
