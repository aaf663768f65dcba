//! `/certificates/views`: each user's saved views of the certificate list, a name and the
//! list's query string.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::certificates::{CertificateQuery, certificate_filter};
use crate::App;
use crate::envelope::{Envelope, created, no_content, ok};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller, Id};
use authority::SavedViewRow;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_views, save_view))
        .routes(routes!(delete_view))
}

/// A saved view of the certificate list.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavedView {
    pub id: i64,
    pub name: String,
    /// The list's query string, as `GET /certificates?{query}` takes it.
    pub query: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<SavedViewRow> for SavedView {
    fn from(v: SavedViewRow) -> Self {
        Self {
            id: v.id,
            name: v.name,
            query: v.query,
            created_at: v.created_at,
        }
    }
}

/// A view to save.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewView {
    /// 1 to 100 characters, unique among the caller's views.
    pub name: String,
    /// The list's filters as a query string (`status=expiring&tag=prod`); a page, a page size
    /// or a cursor is left out, and so is anything the list does not take.
    pub query: String,
}

/// `query` as the certificate list reads it, written back with only what the list takes: a
/// view saves filters and an order, not a place in the list.
///
/// # Errors
/// 422 for a query the list would refuse, with the list's reason.
pub fn view_query(app: &App, query: &str) -> ApiResult<String> {
    let query = query.trim().trim_start_matches('?');
    if query.chars().count() > authority::saved_views::MAX_QUERY_CHARS {
        return Err(ApiError::invalid(format!(
            "a view's query is at most {} characters",
            authority::saved_views::MAX_QUERY_CHARS
        )));
    }
    let parsed: CertificateQuery = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::invalid(format!("the view's query cannot be read: {e}")))?;
    let kept = serde_urlencoded::to_string(&parsed)
        .map_err(|e| ApiError::invalid(format!("the view's query cannot be kept: {e}")))?;
    certificate_filter(parsed, app.authority.now())
        .map_err(|e| ApiError::invalid(format!("the view's query: {}", e.message())))?;
    Ok(kept)
}

/// The caller's saved views of the certificate list, by name.
#[utoipa::path(get, path = "/certificates/views", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    responses((status = 200, description = "Saved views", body = Envelope<Vec<SavedView>>)))]
async fn list_views(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let views = app.authority.saved_views(&principal).await?;
    Ok(ok(views
        .into_iter()
        .map(SavedView::from)
        .collect::<Vec<_>>()))
}

/// Save a view of the certificate list (up to 50 per user).
#[utoipa::path(post, path = "/certificates/views", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    request_body = NewView,
    responses((status = 201, description = "Saved", body = Envelope<SavedView>),
              (status = 409, description = "A view of that name exists", body = ErrorBody),
              (status = 422, description = "A bad name or query, or too many views", body = ErrorBody)))]
async fn save_view(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<NewView>,
) -> ApiResult<Response> {
    let query = view_query(&app, &body.query)?;
    let view = app
        .authority
        .save_view(&principal, &body.name, &query)
        .await?;
    Ok(created(SavedView::from(view), "view saved"))
}

/// Delete one of the caller's saved views.
#[utoipa::path(delete, path = "/certificates/views/{id}", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(("id" = i64, Path, description = "View id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "The caller has no such view", body = ErrorBody)))]
async fn delete_view(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.delete_view(&principal, id).await?;
    Ok(no_content())
}
