//! `/system/chain-repair`: certificates and CAs whose issuer link is missing or points at a CA
//! that did not sign them (found by key identifiers, proven by signature), and relinking them.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Caller;
use authority::{ChainFinding, ChainRepair, ChainStats};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(chain_repair))
        .routes(routes!(chain_repair_run))
}

/// The counts, named as the UCM reference names them where it has a name.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    pub total_cas: i64,
    pub total_certs: i64,
    /// CAs without a parent link though a stored CA signed them.
    pub orphan_cas: i64,
    /// Certificates without an issuer link though a stored CA signed them.
    pub orphan_certs: i64,
    /// CAs linked to a parent that did not sign them.
    pub mislinked_cas: i64,
    /// Certificates linked to a CA that did not sign them (or that no longer exists).
    pub mislinked_certs: i64,
    /// CAs relinked by this run (0 in a report).
    pub rechained_cas: i64,
    /// Certificates relinked by this run (0 in a report).
    pub rechained_certs: i64,
    /// Wrong links that no stored CA can replace, left as they are.
    pub unresolved: i64,
}

impl From<ChainStats> for StatsView {
    fn from(s: ChainStats) -> Self {
        Self {
            total_cas: s.total_cas,
            total_certs: s.total_certs,
            orphan_cas: s.orphan_cas,
            orphan_certs: s.orphan_certs,
            mislinked_cas: s.mislinked_cas,
            mislinked_certs: s.mislinked_certs,
            rechained_cas: s.rechained_cas,
            rechained_certs: s.rechained_certs,
            unresolved: s.unresolved,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FindingView {
    /// `certificate` or `ca`.
    pub resource: &'static str,
    pub id: i64,
    pub subject: String,
    /// `missing_link` or `wrong_link`.
    pub problem: &'static str,
    /// The CA it is (or was) linked to.
    pub linked_ca_id: Option<i64>,
    /// The stored CA that signed it; null when none did.
    pub issuer_ca_id: Option<i64>,
    /// Whether this run relinked it.
    pub relinked: bool,
}

impl From<ChainFinding> for FindingView {
    fn from(f: ChainFinding) -> Self {
        Self {
            resource: f.resource,
            id: f.id,
            subject: f.subject,
            problem: f.problem,
            linked_ca_id: f.linked_ca_id.map(|c| c.0),
            issuer_ca_id: f.issuer_ca_id.map(|c| c.0),
            relinked: f.relinked,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChainRepairView {
    pub stats: StatsView,
    /// The first 100 findings: CAs, then certificates by id.
    pub findings: Vec<FindingView>,
    /// Whether there were more than listed.
    pub truncated: bool,
}

impl From<ChainRepair> for ChainRepairView {
    fn from(r: ChainRepair) -> Self {
        Self {
            stats: r.stats.into(),
            findings: r.findings.into_iter().map(Into::into).collect(),
            truncated: r.truncated,
        }
    }
}

/// Certificates and CAs whose issuer link is missing or wrong, changing nothing.
#[utoipa::path(get, path = "/system/chain-repair", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "What is wrong", body = Envelope<ChainRepairView>),
              (status = 503, description = "The CPU pool is busy", body = ErrorBody)))]
async fn chain_repair(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let report = app.authority.chain_report(&principal).await?;
    Ok(ok(ChainRepairView::from(report)))
}

/// Relink every certificate and CA whose issuer link is missing or wrong to the stored CA that
/// signed it; each change is audited. Links no stored CA can replace are reported and left.
#[utoipa::path(post, path = "/system/chain-repair/run", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "What was relinked", body = Envelope<ChainRepairView>),
              (status = 503, description = "The CPU pool is busy", body = ErrorBody)))]
async fn chain_repair_run(
    State(app): State<App>,
    Caller(principal): Caller,
) -> ApiResult<Response> {
    let report = app.authority.repair_chains(&principal).await?;
    let message = format!(
        "relinked {} CAs and {} certificates",
        report.stats.rechained_cas, report.stats.rechained_certs
    );
    Ok(ok_with(ChainRepairView::from(report), message))
}
