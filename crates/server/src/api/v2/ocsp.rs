//! `/ocsp`: the responder's state per CA and what it has answered. The responder itself is
//! at `/ocsp`, outside `/api/v2`.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok};
use crate::error::ApiResult;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(stats))
}

/// How the responder answers for one CA.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaOcspView {
    pub ca_id: i64,
    pub ca_name: String,
    /// Whether the responder answers for it (and its certificates carry the OCSP URL).
    pub ocsp_enabled: bool,
    /// `delegated` or `ca`.
    pub signer: String,
    /// The delegated responder certificate in use, once issued.
    pub responder_certificate_id: Option<i64>,
    pub responder_serial: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub responder_valid_until: Option<OffsetDateTime>,
    /// A response's validity, in hours.
    pub validity_hours: i64,
    /// Responses signed ahead and stored.
    pub stored_responses: i64,
}

/// The responder's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct OcspStatusView {
    /// Where relying parties ask.
    pub url: String,
    /// Responses this node keeps in memory.
    pub cached_responses: usize,
    /// `ok`, or `unreachable`: the database as the responder last found it. While it is
    /// unreachable the responder serves the answers it holds until their nextUpdate, and
    /// `tryLater` for the rest.
    pub database: String,
    /// When the responder last found the database unreachable, since this node started.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_database_failure: Option<OffsetDateTime>,
    /// Answers served from memory because the database could not be reached to check them.
    pub served_stale_during_outage: u64,
    /// `tryLater` answers: signing was saturated, or the database unreachable and nothing held.
    pub try_later: u64,
    /// The responder per CA; empty when the database cannot be read for it (`cas_listed`
    /// false), while the fields above, which this node keeps in memory, are still reported.
    pub cas: Vec<CaOcspView>,
    pub cas_listed: bool,
}

/// The OCSP responder per CA: signer, responder certificate, stored responses.
#[utoipa::path(get, path = "/ocsp/status", tag = "ocsp",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    responses((status = 200, description = "Responder status", body = Envelope<OcspStatusView>)))]
async fn status(State(app): State<App>) -> ApiResult<Response> {
    // Read before the CAs, so that a failure to read them is not taken for an outage the
    // responder reported first.
    let database = app.authority.ocsp_database();
    let stats = app.authority.ocsp_stats();
    let (cas, cas_listed) = match every_ca_status(&app).await {
        Ok(cas) => (cas, true),
        Err(authority::Error::Unavailable(detail)) => {
            tracing::warn!(%detail, "OCSP status without its per-CA part: database unavailable");
            (Vec::new(), false)
        }
        Err(e) => return Err(e.into()),
    };
    Ok(ok(OcspStatusView {
        url: app.authority.publishing().ocsp_url(),
        cached_responses: app.authority.ocsp_cached(),
        database: if database.reachable && cas_listed {
            "ok"
        } else {
            "unreachable"
        }
        .into(),
        last_database_failure: database.last_failure,
        served_stale_during_outage: stats.served_stale,
        try_later: stats.try_later,
        cas,
        cas_listed,
    }))
}

async fn every_ca_status(app: &App) -> authority::Result<Vec<CaOcspView>> {
    let mut cas = Vec::new();
    for ca in app.authority.cas().await? {
        cas.push(ca_status(app, ca).await?);
    }
    Ok(cas)
}

/// How the responder answers for `ca`; the console's CA page shows the same.
pub async fn ca_status(app: &App, ca: authority::CaRow) -> authority::Result<CaOcspView> {
    let store = app.authority.reader();
    let responder = match ca.ocsp_responder_id {
        Some(id) => store.certificate(id).await?,
        None => None,
    };
    let delegated = ca.revocation.ocsp_signer == "delegated";
    let responder = responder.filter(|_| delegated);
    Ok(CaOcspView {
        ca_id: ca.id.0,
        ocsp_enabled: ca.revocation.ocsp_enabled,
        signer: ca.revocation.ocsp_signer.clone(),
        responder_certificate_id: (responder.as_ref().map(|c| c.id)).map(i64::from),
        responder_serial: responder.as_ref().map(|c| c.cert.serial.clone()),
        responder_valid_until: responder.as_ref().map(|c| c.cert.not_after),
        validity_hours: ca.revocation.ocsp_validity_hours,
        stored_responses: store.count_ocsp_responses(ca.id).await?,
        ca_name: ca.name,
    })
}

/// What this node's responder answered since it started.
#[derive(Debug, Serialize, ToSchema)]
pub struct OcspStatsView {
    /// Requests, errors included.
    pub requests: u64,
    /// Certificates reported, by status.
    pub good: u64,
    pub revoked: u64,
    pub unknown: u64,
    /// Error answers, by OCSP status.
    pub malformed_request: u64,
    pub unauthorized: u64,
    pub internal_error: u64,
    /// `tryLater` answers: signing was saturated, or the database unavailable.
    pub try_later: u64,
    /// Shareable requests answered from memory, and not.
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// hits / (hits + misses); 0 before any.
    pub cache_hit_rate: f64,
    /// Misses answered from the responses stored in the database.
    pub stored_hits: u64,
    /// Responses signed.
    pub signed: u64,
    /// Answers served from memory because the database could not be reached to check them.
    pub served_stale_during_outage: u64,
}

/// The responder's counters on this node: requests, answers by status, cache hit rate.
#[utoipa::path(get, path = "/ocsp/stats", tag = "ocsp",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    responses((status = 200, description = "Counters", body = Envelope<OcspStatsView>)))]
async fn stats(State(app): State<App>) -> ApiResult<Response> {
    let s = app.authority.ocsp_stats();
    let asked = s.cache_hits + s.cache_misses;
    let rate = if asked == 0 {
        0.0
    } else {
        s.cache_hits as f64 / asked as f64
    };
    Ok(ok(OcspStatsView {
        requests: s.requests,
        good: s.good,
        revoked: s.revoked,
        unknown: s.unknown,
        malformed_request: s.malformed,
        unauthorized: s.unauthorized,
        internal_error: s.internal_error,
        try_later: s.try_later,
        cache_hits: s.cache_hits,
        cache_misses: s.cache_misses,
        cache_hit_rate: rate,
        stored_hits: s.stored_hits,
        signed: s.signed,
        served_stale_during_outage: s.served_stale,
    }))
}
