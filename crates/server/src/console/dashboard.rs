//! `/`: the dashboard.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::page::{self, Frame, Head, Visitor};
use crate::App;
use crate::error::ApiError;

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

/// GET `/`: the totals the visitor may see.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
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
            frame: visitor.frame("/"),
            overview,
            expiring,
            refused,
        },
    )
}
