//! `/crl`: each CA's CRLs as the reference shows them, and publishing one on demand. The CRLs
//! themselves download without credentials from `/crl/{refid}.crl`.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Caller, Id};
use authority::CrlRow;
use authority::{CaId, CaRow};

/// CRLs listed per CA in `GET /crl/{ca_id}`.
const HISTORY: i64 = 20;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(regenerate))
}

/// One published CRL.
#[derive(Debug, Serialize, ToSchema)]
pub struct CrlView {
    /// The CRL number.
    pub number: i64,
    /// For a delta CRL, the number of the full CRL it updates.
    pub delta_of: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub this_update: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
    /// Revoked certificates listed.
    pub entries: i64,
}

impl From<CrlRow> for CrlView {
    fn from(c: CrlRow) -> Self {
        Self {
            number: c.number,
            delta_of: c.delta_of,
            this_update: c.this_update,
            next_update: c.next_update,
            entries: c.entries,
        }
    }
}

/// A CA's CRL publishing.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaCrlView {
    pub ca_id: i64,
    pub ca_name: String,
    pub ca_refid: String,
    /// Whether the CA publishes CRLs (and its certificates point to them).
    pub cdp_enabled: bool,
    pub delta_crl_enabled: bool,
    /// Where the latest full CRL downloads.
    pub crl_url: String,
    /// Where the latest delta CRL downloads.
    pub delta_crl_url: String,
    /// The latest full CRL, when one is published.
    pub latest: Option<CrlView>,
    /// The latest delta CRL, when one is published.
    pub latest_delta: Option<CrlView>,
    /// The first revocation change not yet in a CRL; one is published once changes rest.
    #[serde(with = "time::serde::rfc3339::option")]
    pub pending_since: Option<OffsetDateTime>,
}

/// `ca`'s CRL publishing and its latest CRLs; the console's CA page shows the same.
pub async fn summary(app: &App, ca: CaRow) -> ApiResult<CaCrlView> {
    let store = app.authority.reader();
    let latest = store
        .latest_crl_info(ca.id, false)
        .await
        .map_err(authority::Error::from)?;
    let latest_delta = store
        .latest_crl_info(ca.id, true)
        .await
        .map_err(authority::Error::from)?;
    let publishing = app.authority.publishing();
    Ok(CaCrlView {
        ca_id: ca.id.0,
        crl_url: publishing.crl_url(&ca.refid),
        delta_crl_url: publishing.delta_crl_url(&ca.refid),
        ca_name: ca.name,
        ca_refid: ca.refid,
        cdp_enabled: ca.revocation.cdp_enabled,
        delta_crl_enabled: ca.revocation.delta_crl_enabled,
        latest: latest.map(CrlView::from),
        latest_delta: latest_delta.map(CrlView::from),
        pending_since: ca.pending_changes.map(|p| p.since),
    })
}

/// Every CA's latest CRL: number, thisUpdate, nextUpdate and entry count.
#[utoipa::path(get, path = "/crl", tag = "crl",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    responses((status = 200, description = "Per CA", body = Envelope<Vec<CaCrlView>>)))]
async fn list(State(app): State<App>) -> ApiResult<Response> {
    let mut views = Vec::new();
    for ca in app.authority.cas().await? {
        views.push(summary(&app, ca).await?);
    }
    Ok(ok(views))
}

/// A CA's CRL publishing, with its latest CRL as PEM and its recent CRLs.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaCrlDetail {
    #[serde(flatten)]
    pub summary: CaCrlView,
    /// The latest full CRL, PEM.
    pub crl_pem: Option<String>,
    /// The newest CRLs, full and delta, newest first; each downloads at
    /// `/crl/{refid}/{number}.crl`.
    pub history: Vec<CrlView>,
}

/// One CA's CRLs.
#[utoipa::path(get, path = "/crl/{ca_id}", tag = "crl",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    params(("ca_id" = i64, Path, description = "CA id")),
    responses((status = 200, description = "The CA's CRLs", body = Envelope<CaCrlDetail>),
              (status = 404, description = "No such CA", body = ErrorBody)))]
async fn get(State(app): State<App>, Id(id): Id) -> ApiResult<Response> {
    let ca = app.authority.ca(CaId(id)).await?;
    Ok(ok(detail(&app, ca).await?))
}

/// `ca`'s CRL publishing with its latest CRL as PEM and its recent CRLs.
pub async fn detail(app: &App, ca: CaRow) -> ApiResult<CaCrlDetail> {
    let store = app.authority.reader();
    let crl_pem = store
        .latest_crl(ca.id, false)
        .await
        .map_err(authority::Error::from)?
        .map(|c| authority::pki::pem::encode("X509 CRL", &c.der));
    let history = store
        .crl_history(ca.id, HISTORY)
        .await
        .map_err(authority::Error::from)?
        .into_iter()
        .map(CrlView::from)
        .collect();
    Ok(CaCrlDetail {
        summary: summary(app, ca).await?,
        crl_pem,
        history,
    })
}

/// Publish a CA's next CRL now (and its next delta, when it publishes deltas).
#[utoipa::path(post, path = "/crl/{ca_id}/regenerate", tag = "crl",
    security(("session" = ["write:cas"]), ("api_key" = ["write:cas"])),
    params(("ca_id" = i64, Path, description = "CA id")),
    responses((status = 200, description = "What was published, full CRL first", body = Envelope<Vec<CrlView>>),
              (status = 404, description = "No such CA", body = ErrorBody),
              (status = 409, description = "Another node published that number meanwhile", body = ErrorBody),
              (status = 422, description = "The CA has no key here", body = ErrorBody)))]
async fn regenerate(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let published = app.authority.regenerate_crl(&principal, CaId(id)).await?;
    let message = match published.first() {
        Some(c) => format!("CRL {} published", c.number),
        None => "Nothing published".to_owned(),
    };
    Ok(ok_with(
        published.into_iter().map(CrlView::from).collect::<Vec<_>>(),
        message,
    ))
}
