//! `/search`: the console's search box, across certificates, CAs and templates.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dashboard::{CaItem, CertificateItem, MAX_LIMIT, bounded};
use crate::App;
use crate::envelope::{Envelope, ok};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Caller};
use authority::Permission;

/// The longest search text.
const MAX_QUERY_CHARS: usize = 200;

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

/// Matches of each kind. A kind the caller may not read is null.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// By common name, SAN, subject or serial; newest first.
    pub certificates: Vec<CertificateItem>,
    /// By name or subject; needs `read:cas`.
    pub cas: Option<Vec<CaItem>>,
    /// By name; needs `read:templates`.
    pub templates: Option<Vec<TemplateItem>>,
}

/// Find certificates, CAs and templates by name.
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
    let store = app.authority.reader();
    let now = app.authority.now();
    let certificates = store
        .search_certificates(text, limit)
        .await
        .map_err(authority::Error::from)?
        .into_iter()
        .map(|c| CertificateItem::new(c, now))
        .collect();
    let cas = if principal.can(Permission::ReadCas) {
        let found = store
            .search_cas(text, limit)
            .await
            .map_err(authority::Error::from)?;
        Some(found.into_iter().map(CaItem::from).collect())
    } else {
        None
    };
    let templates = if principal.can(Permission::ReadTemplates) {
        let found = store
            .search_templates(text, limit)
            .await
            .map_err(authority::Error::from)?;
        Some(
            found
                .into_iter()
                .map(|t| TemplateItem {
                    id: t.id,
                    name: t.name,
                    description: t.description,
                    builtin: t.builtin,
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(ok(SearchResults {
        certificates,
        cas,
        templates,
    }))
}
