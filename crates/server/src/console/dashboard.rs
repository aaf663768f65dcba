//! `/`: the dashboard.

use askama::Template;
use axum::Extension;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::page::{self, Frame, Head};
use crate::App;
use crate::error::ApiError;
use crate::listen::Conn;

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    head: Head,
    frame: Frame,
    overview: Option<authority::Overview>,
    refused: Option<String>,
}

/// GET `/`: the totals the visitor may see; the login page for a visitor without a session.
pub async fn show(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let conn = conn.map(|Extension(c)| c);
    let Some(visitor) = page::visitor(&app, conn, &headers, "/").await else {
        return page::to_login(uri.path_and_query().map_or("/", |p| p.as_str()));
    };
    let (overview, refused, status) = match app.authority.overview(&visitor.principal).await {
        Ok(overview) => (Some(overview), None, StatusCode::OK),
        Err(e) => {
            let e = ApiError::from(e);
            (None, Some(e.message().to_owned()), e.status())
        }
    };
    page::render(
        status,
        &DashboardPage {
            head: Head::new(),
            frame: visitor.frame,
            overview,
            refused,
        },
    )
}
