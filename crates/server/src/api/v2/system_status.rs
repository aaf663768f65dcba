//! `/dashboard/system-status`: the console's health panel — the database, the data disk, how
//! long this node has served, and whether CRLs and OCSP are being published. Every figure is
//! measured or read when asked; none is configured or assumed.

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
    OpenApiRouter::new().routes(routes!(system_status))
}

/// The filesystem holding the data directory.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiskUsage {
    /// In use, for people (`2.1GB`).
    pub used: String,
    /// In all, for people (`50GB`).
    pub total: String,
    /// Share in use, 0 to 100.
    pub percent: f64,
    pub used_bytes: u64,
    pub total_bytes: u64,
}

/// CRL publishing over all CAs that publish CRLs.
#[derive(Debug, Serialize, ToSchema)]
pub struct CrlState {
    /// CAs whose certificates point to a CRL.
    pub publishing_cas: usize,
    /// Of those, how many have a full CRL whose nextUpdate is still ahead.
    pub current: usize,
    /// Of those, how many have none yet or one past its nextUpdate.
    pub overdue: usize,
    /// The soonest nextUpdate of the CRLs in force.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_update: Option<OffsetDateTime>,
}

/// The OCSP responder.
#[derive(Debug, Serialize, ToSchema)]
pub struct OcspState {
    /// Where relying parties ask.
    pub url: String,
    /// CAs the responder answers for.
    pub enabled_cas: usize,
    /// Requests this node answered since it started.
    pub requests: u64,
    /// Responses this node keeps in memory.
    pub cached_responses: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SystemStatus {
    /// `healthy`, or `degraded` when the database does not answer, the data disk is full or a
    /// CRL is overdue.
    pub status: &'static str,
    /// `connected` or `unreachable`.
    pub database: &'static str,
    /// `sqlite` or `postgresql`.
    pub database_backend: &'static str,
    /// Null when the operating system cannot say.
    pub disk_usage: Option<DiskUsage>,
    /// Since this node started serving (`15 days, 3:42:15`).
    pub uptime: String,
    pub uptime_seconds: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub version: &'static str,
    /// Null while the database does not answer.
    pub crl: Option<CrlState>,
    /// Null while the database does not answer.
    pub ocsp: Option<OcspState>,
}

/// Whether the database, the data disk, CRL publishing and the OCSP responder are working.
#[utoipa::path(get, path = "/dashboard/system-status", tag = "dashboard",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    responses((status = 200, description = "Status", body = Envelope<SystemStatus>)))]
async fn system_status(State(app): State<App>) -> ApiResult<Response> {
    let connected = app.authority.ping().await.is_ok();
    let (crl, ocsp) = if connected {
        let (crl, ocsp) = revocation_state(&app).await?;
        (Some(crl), Some(ocsp))
    } else {
        (None, None)
    };
    let data_dir = &app.settings.data_dir;
    let disk_full = app.authority.store_is_sqlite()
        && crate::disk::free_bytes(data_dir).is_some_and(|f| f < crate::disk::MIN_FREE_BYTES);
    let healthy = connected && !disk_full && crl.as_ref().is_some_and(|c| c.overdue == 0);
    let up = uptime_seconds(&app);
    Ok(ok(SystemStatus {
        status: if healthy { "healthy" } else { "degraded" },
        database: if connected {
            "connected"
        } else {
            "unreachable"
        },
        database_backend: database_backend(&app),
        disk_usage: crate::disk::usage(data_dir).map(|u| DiskUsage {
            used: human_bytes(u.used),
            total: human_bytes(u.total),
            percent: percent(u.used, u.total),
            used_bytes: u.used,
            total_bytes: u.total,
        }),
        uptime: uptime(up),
        uptime_seconds: up,
        started_at: app.started_at,
        version: env!("CARGO_PKG_VERSION"),
        crl,
        ocsp,
    }))
}

/// `sqlite` or `postgresql`.
pub(super) fn database_backend(app: &App) -> &'static str {
    if app.authority.store_is_sqlite() {
        "sqlite"
    } else {
        "postgresql"
    }
}

/// Seconds since this node started serving.
pub(super) fn uptime_seconds(app: &App) -> i64 {
    (app.authority.now() - app.started_at)
        .whole_seconds()
        .max(0)
}

/// CRL and OCSP publishing, from each CA's settings and latest full CRL.
async fn revocation_state(app: &App) -> ApiResult<(CrlState, OcspState)> {
    let now = app.authority.now();
    let cas = app.authority.cas().await?;
    let mut crl = CrlState {
        publishing_cas: 0,
        current: 0,
        overdue: 0,
        next_update: None,
    };
    for ca in cas.iter().filter(|c| c.revocation.cdp_enabled) {
        crl.publishing_cas += 1;
        let latest = app
            .authority
            .reader()
            .latest_crl_info(ca.id, false)
            .await
            .map_err(authority::Error::from)?;
        match latest.map(|l| l.next_update).filter(|n| *n > now) {
            Some(next) => {
                crl.current += 1;
                crl.next_update = Some(crl.next_update.map_or(next, |n| n.min(next)));
            }
            None => crl.overdue += 1,
        }
    }
    let ocsp = OcspState {
        url: app.authority.publishing().ocsp_url(),
        enabled_cas: cas.iter().filter(|c| c.revocation.ocsp_enabled).count(),
        requests: app.authority.ocsp_stats().requests,
        cached_responses: app.authority.ocsp_cached(),
    };
    Ok((crl, ocsp))
}

/// `used` as a share of `total`, in percent with one decimal.
fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    // Rounded to tenths: the precision a panel shows; f64 holds any disk size closely enough.
    (used as f64 * 1000.0 / total as f64).round() / 10.0
}

/// Bytes in the largest binary unit that leaves at least 1, one decimal (`2.1GB`, `512B`).
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    format!("{}{}", text.trim_end_matches(".0"), UNITS[unit])
}

/// Seconds as the reference writes an uptime: `15 days, 3:42:15`, or `3:42:15` within a day.
pub(super) fn uptime(seconds: i64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let clock = format!("{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    match days {
        0 => clock,
        1 => format!("1 day, {clock}"),
        n => format!("{n} days, {clock}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_as_the_reference_writes_them() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(2_254_857_830), "2.1GB");
        assert_eq!(human_bytes(50 * 1024 * 1024 * 1024), "50GB");
        assert_eq!(percent(42, 1000), 4.2);
        assert_eq!(percent(1, 0), 0.0);
        assert_eq!(
            uptime(15 * 86_400 + 3 * 3600 + 42 * 60 + 15),
            "15 days, 3:42:15"
        );
        assert_eq!(uptime(86_400 + 5), "1 day, 0:00:05");
        assert_eq!(uptime(59), "0:00:59");
    }
}
