//! Prometheus metrics: requests by route and status, a latency histogram, the database pool,
//! the OCSP responder's answers and how it finds the database, and build information.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide recorder (metrics are global to the process; every server in it shares them).
///
/// # Errors
/// A message when the recorder cannot be installed.
pub fn handle() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("certmint_http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| e.to_string())?;
            metrics::gauge!("certmint_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Ok(handle)
        })
        .clone()
}

/// Counts each request and times it, labelled by route template (never the raw path, so ids do
/// not explode the label set).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("certmint_http_requests_total",
        "method" => method.clone(), "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("certmint_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Sets the pool and OCSP figures and renders the exposition text.
pub fn render(
    handle: &PrometheusHandle,
    authority: &authority::Authority,
    data_dir: &std::path::Path,
) -> String {
    let pool = authority.pool_stats();
    if let Some(free) = crate::disk::free_bytes(data_dir) {
        // Precision past 2^53 bytes does not matter for a gauge.
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("certmint_data_dir_free_bytes").set(free as f64);
    }
    metrics::gauge!("certmint_db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
    metrics::gauge!("certmint_db_pool_connections", "state" => "in_use")
        .set(f64::from(pool.size.saturating_sub(pool.idle)));
    metrics::gauge!("certmint_db_pool_max_connections").set(f64::from(pool.max));
    ocsp(authority);
    handle.render()
}

/// The responder's counters, and whether it can reach the database: while it cannot, it serves
/// what it holds in memory, and these say how much.
fn ocsp(authority: &authority::Authority) {
    let stats = authority.ocsp_stats();
    for (answer, count) in [
        ("good", stats.good),
        ("revoked", stats.revoked),
        ("unknown", stats.unknown),
        ("malformed_request", stats.malformed),
        ("unauthorized", stats.unauthorized),
        ("internal_error", stats.internal_error),
        ("try_later", stats.try_later),
    ] {
        metrics::counter!("certmint_ocsp_answers_total", "answer" => answer).absolute(count);
    }
    metrics::counter!("certmint_ocsp_served_stale_total").absolute(stats.served_stale);
    let database = authority.ocsp_database();
    metrics::gauge!("certmint_ocsp_database_reachable").set(if database.reachable {
        1.0
    } else {
        0.0
    });
    if let Some(at) = database.last_failure {
        // Seconds since 1970 fit a gauge's f64 exactly for the foreseeable future.
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("certmint_ocsp_database_last_failure_timestamp_seconds")
            .set(at.unix_timestamp() as f64);
    }
}
