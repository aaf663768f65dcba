//! `/search`: the console's search box, across certificates, CAs, CSRs, templates and users.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dashboard::{CaItem, CertificateItem, MAX_LIMIT, bounded};
use crate::App;
use crate::envelope::{Envelope, ok};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Caller};

/// The longest search text.
pub(crate) const MAX_QUERY_CHARS: usize = 200;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(search))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Text to find (any case); a serial may be written with or without colons.
    pub q: String,
    /// At most this many results of each kind (default 5, at most 100).
    #[serde(default = "default_limit")]
    pub limit: u32,
}

fn default_limit() -> u32 {
    5
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateItem {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub builtin: bool,
}

/// A CSR in the search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct CsrItem {
    pub id: i64,
    pub refid: String,
    pub name: String,
    pub common_name: Option<String>,
    pub subject: String,
    /// pending or signed.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A user in the search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserItem {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub role: String,
    /// Whether the account may log in.
    pub active: bool,
}

/// Matches of each kind. A kind the caller may not read is null.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// By common name, SAN, subject or serial; newest first.
    pub certificates: Vec<CertificateItem>,
    /// By name or subject; needs `read:cas`.
    pub cas: Option<Vec<CaItem>>,
    /// By name, common name, SAN or subject; newest first; needs `read:csrs`.
    pub csrs: Option<Vec<CsrItem>>,
    /// By name; needs `read:templates`.
    pub templates: Option<Vec<TemplateItem>>,
    /// By username, full name or email; needs `read:users`.
    pub users: Option<Vec<UserItem>>,
}

/// Find certificates, CAs, CSRs, templates and users by name.
#[utoipa::path(get, path = "/search", tag = "search",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(SearchQuery),
    responses((status = 200, description = "Matches", body = Envelope<SearchResults>),
              (status = 400, description = "No search text, or limit out of range", body = ErrorBody)))]
async fn search(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Response> {
    let text = q.q.trim();
    if text.is_empty() || text.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(format!(
            "q must hold 1 to {MAX_QUERY_CHARS} characters"
        )));
    }
    let limit = bounded("limit", q.limit, MAX_LIMIT)?;
    let found = app.authority.search(&principal, text, limit).await?;
    let now = app.authority.now();
    Ok(ok(SearchResults {
        certificates: found
            .certificates
            .into_iter()
            .map(|c| CertificateItem::new(c, now))
            .collect(),
        cas: found.cas.map(|v| v.into_iter().map(CaItem::from).collect()),
        csrs: found.csrs.map(|v| {
            v.into_iter()
                .map(|c| CsrItem {
                    id: c.id.0,
                    refid: c.refid,
                    name: c.name,
                    common_name: c.common_name,
                    subject: c.subject,
                    status: c.status.to_string(),
                    created_at: c.created_at,
                })
                .collect()
        }),
        templates: found.templates.map(|v| {
            v.into_iter()
                .map(|t| TemplateItem {
                    id: t.id.0,
                    name: t.name,
                    description: t.description,
                    builtin: t.builtin,
                })
                .collect()
        }),
        users: found.users.map(|v| {
            v.into_iter()
                .map(|u| UserItem {
                    id: u.id,
                    username: u.username,
                    email: u.email,
                    full_name: u.full_name,
                    role: u.role,
                    active: u.enabled,
                })
                .collect()
        }),
    }))
}
