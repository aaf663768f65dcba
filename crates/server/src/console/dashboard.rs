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
    /// Active certificates ending within 7, 30 and 90 days.
    expiring: Vec<(u32, i64)>,
    refused: Option<String>,
}

/// The horizons of the expiry panel, in days.
const EXPIRY_HORIZONS: [u32; 3] = [7, 30, 90];

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
    let authority = &app.authority;
    let read = async {
        let overview = authority.overview(&visitor.principal).await?;
        let expiring = authority
            .expiring_within(&visitor.principal, &EXPIRY_HORIZONS)
            .await?;
        Ok::<_, authority::Error>((overview, expiring))
    };
    let (overview, expiring, refused, status) = match read.await {
        Ok((overview, expiring)) => (Some(overview), expiring, None, StatusCode::OK),
        Err(e) => {
            let e = ApiError::from(e);
            (None, Vec::new(), Some(e.message().to_owned()), e.status())
        }
    };
    page::render(
        status,
        &DashboardPage {
            head: Head::new(),
            frame: visitor.frame,
            overview,
            expiring,
            refused,
        },
    )
}
