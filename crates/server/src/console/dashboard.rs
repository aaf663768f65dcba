//! `/`: the dashboard. What it shows depends on what the visitor may read: the totals and the
//! trend with `read:certificates`, the CAs' health with `read:cas`, the activity with
//! `read:audit`. Each part reads through the function its REST twin calls.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use time::OffsetDateTime;

use super::chart::TrendChart;
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::audit::AuditView;
use crate::api::v2::{crl, dashboard, ocsp};
use crate::error::{ApiError, ApiResult};
use authority::Permission;

/// How a CA stands: expiry, CRL freshness, the OCSP responder.
pub struct CaHealth {
    pub id: i64,
    pub name: String,
    pub valid_until: OffsetDateTime,
    pub days_left: i64,
    /// Whether it publishes CRLs.
    pub cdp_enabled: bool,
    /// The latest full CRL's number and nextUpdate.
    pub crl: Option<(i64, OffsetDateTime)>,
    pub crl_overdue: bool,
    pub ocsp_enabled: bool,
    /// When the delegated responder certificate ends.
    pub responder_until: Option<OffsetDateTime>,
}

/// What this node's OCSP responder answered since it started.
pub struct Answers {
    pub requests: u64,
    pub good: u64,
    pub revoked: u64,
    pub unknown: u64,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    head: Head,
    frame: Frame,
    overview: Option<authority::Overview>,
    /// Active certificates ending within 7, 30 and 90 days.
    expiring: Vec<(u32, i64)>,
    trend: Option<TrendChart>,
    health: Option<Vec<CaHealth>>,
    answers: Option<Answers>,
    activity: Option<Vec<AuditView>>,
    refused: Option<String>,
}

/// The horizons of the expiry panel, in days.
const EXPIRY_HORIZONS: [u32; 3] = [7, 30, 90];
/// Days in the trend.
const TREND_DAYS: u32 = 30;
/// Records in the activity panel.
const ACTIVITY: u32 = 10;

async fn ca_health(app: &App) -> ApiResult<Vec<CaHealth>> {
    let now = app.authority.now();
    let mut health = Vec::new();
    for ca in app.authority.cas().await? {
        let crls = crl::summary(app, ca.clone()).await?;
        let responder = ocsp::ca_status(app, ca.clone()).await?;
        let crl = crls.latest.map(|c| (c.number, c.next_update));
        health.push(CaHealth {
            id: ca.id.0,
            days_left: (ca.cert.not_after - now).whole_days(),
            valid_until: ca.cert.not_after,
            cdp_enabled: crls.cdp_enabled,
            crl_overdue: crl.is_some_and(|(_, next)| next <= now),
            crl,
            ocsp_enabled: responder.ocsp_enabled,
            responder_until: responder.responder_valid_until,
            name: ca.name,
        });
    }
    Ok(health)
}

/// GET `/`: what the visitor may see.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    let authority = &app.authority;
    let principal = &visitor.principal;
    let read = async {
        let overview = authority.overview(principal).await?;
        let expiring = authority
            .expiring_within(principal, &EXPIRY_HORIZONS)
            .await?;
        let trend = TrendChart::new(&dashboard::certificate_trend(&app, TREND_DAYS).await?);
        let (health, answers) = if principal.can(Permission::ReadCas) {
            let s = authority.ocsp_stats();
            let answers = Answers {
                requests: s.requests,
                good: s.good,
                revoked: s.revoked,
                unknown: s.unknown,
            };
            (Some(ca_health(&app).await?), Some(answers))
        } else {
            (None, None)
        };
        let activity = if principal.can(Permission::ReadAudit) {
            let records = authority.recent_activity(ACTIVITY, 0).await?;
            Some(records.into_iter().map(AuditView::from).collect())
        } else {
            None
        };
        Ok::<_, ApiError>((overview, expiring, trend, health, answers, activity))
    };
    let page = match read.await {
        Ok((overview, expiring, trend, health, answers, activity)) => DashboardPage {
            head: Head::new(),
            frame: visitor.frame("/"),
            overview: Some(overview),
            expiring,
            trend: Some(trend),
            health,
            answers,
            activity,
            refused: None,
        },
        Err(e) => {
            return page::render(
                e.status(),
                &DashboardPage {
                    head: Head::new(),
                    frame: visitor.frame("/"),
                    overview: None,
                    expiring: Vec::new(),
                    trend: None,
                    health: None,
                    answers: None,
                    activity: None,
                    refused: Some(e.message().to_owned()),
                },
            );
        }
    };
    page::render(StatusCode::OK, &page)
}
