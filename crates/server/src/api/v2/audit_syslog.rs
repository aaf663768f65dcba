//! `/system/audit/syslog`: forwarding audit records to a syslog server — its settings, where
//! forwarding stands, and a test message.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};
use authority::syslog::{SyslogChange, SyslogStatus, SyslogTest};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(syslog, update_syslog))
        .routes(routes!(test_syslog))
}

/// Where audit records are forwarded, and how far forwarding got.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyslogView {
    /// Whether records are forwarded.
    pub enabled: bool,
    /// The syslog server's host name or address; empty until set.
    pub host: String,
    pub port: u16,
    /// `tcp` (RFC 6587) or `tls` (RFC 5425).
    pub protocol: String,
    /// The facility messages carry (`authpriv` by default).
    pub facility: String,
    /// PEM certificates the TLS server's certificate must chain to; the system's roots when
    /// null.
    pub ca_pem: Option<String>,
    pub status: SyslogStatusView,
}

/// How far forwarding got.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyslogStatusView {
    /// The id of the newest audit record the server took (the cursor); null before
    /// forwarding was first turned on.
    pub last_forwarded_id: Option<i64>,
    /// Records forwarded since forwarding started.
    pub forwarded: i64,
    /// Audit records waiting to be forwarded.
    pub backlog: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_sent_at: Option<OffsetDateTime>,
    /// Failed attempts since the last success.
    pub failures: i64,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_error_at: Option<OffsetDateTime>,
    /// No attempt before this time (backoff after failures).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl From<SyslogStatus> for SyslogView {
    fn from(s: SyslogStatus) -> Self {
        let cursor = s.cursor;
        Self {
            enabled: s.settings.enabled,
            host: s.settings.host,
            port: s.settings.port,
            protocol: s.settings.protocol.as_str().to_owned(),
            facility: s.settings.facility.name().to_owned(),
            ca_pem: s.settings.ca_pem,
            status: SyslogStatusView {
                last_forwarded_id: cursor.as_ref().map(|c| c.after_id),
                forwarded: cursor.as_ref().map_or(0, |c| c.forwarded),
                backlog: s.backlog,
                last_sent_at: cursor.as_ref().and_then(|c| c.last_sent_at),
                failures: cursor.as_ref().map_or(0, |c| c.failures),
                last_error: cursor.as_ref().and_then(|c| c.last_error.clone()),
                last_error_at: cursor.as_ref().and_then(|c| c.last_error_at),
                next_attempt_at: cursor.as_ref().and_then(|c| c.next_attempt_at),
            },
        }
    }
}

/// A change to the syslog settings; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyslogPatch {
    pub enabled: Option<bool>,
    /// A host name or an IP address (non-public addresses only with `[syslog]
    /// allow_private_targets`).
    pub host: Option<String>,
    /// 1 to 65535.
    pub port: Option<i64>,
    /// `tcp` or `tls`; `udp` is refused, since it loses records silently.
    pub protocol: Option<String>,
    /// PEM CA certificates for TLS; an empty string goes back to the system's roots.
    pub ca_pem: Option<String>,
    /// A syslog facility name: `authpriv`, `auth`, `daemon`, `local0` … `local7`, ….
    pub facility: Option<String>,
}

/// How the test message went.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyslogTestView {
    /// Whether the server took the message.
    pub sent: bool,
    /// `host:port (protocol)`.
    pub target: String,
    pub latency_ms: i64,
    /// Why it was not sent.
    pub error: Option<String>,
}

impl From<SyslogTest> for SyslogTestView {
    fn from(t: SyslogTest) -> Self {
        Self {
            sent: t.sent,
            target: t.target,
            latency_ms: t.latency_ms,
            error: t.error,
        }
    }
}

/// The syslog settings, with the forwarding cursor, the backlog and the last error.
#[utoipa::path(get, path = "/system/audit/syslog", tag = "audit",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Settings and status", body = Envelope<SyslogView>)))]
async fn syslog(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(SyslogView::from(
        app.authority.syslog(&principal).await?,
    )))
}

/// Change the syslog settings.
#[utoipa::path(put, path = "/system/audit/syslog", tag = "audit",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = SyslogPatch,
    responses((status = 200, description = "Updated", body = Envelope<SyslogView>),
              (status = 422, description = "A bad host, port, protocol, facility or CA bundle", body = ErrorBody)))]
async fn update_syslog(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(patch): ApiJson<SyslogPatch>,
) -> ApiResult<Response> {
    let change = SyslogChange {
        enabled: patch.enabled,
        host: patch.host,
        port: patch.port,
        protocol: patch.protocol,
        ca_pem: patch.ca_pem,
        facility: patch.facility,
    };
    let status = app.authority.update_syslog(&principal, change).await?;
    Ok(ok_with(SyslogView::from(status), "syslog settings updated"))
}

/// Send one test message to the configured server now and report whether it was taken.
#[utoipa::path(post, path = "/system/audit/syslog/test", tag = "audit",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Tried; see sent and error", body = Envelope<SyslogTestView>),
              (status = 422, description = "No syslog server set", body = ErrorBody)))]
async fn test_syslog(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let tried = app.authority.test_syslog(&principal).await?;
    let message = match &tried.error {
        None => format!("test message sent to {}", tried.target),
        Some(e) => format!("the test message was not sent: {e}"),
    };
    Ok(ok_with(SyslogTestView::from(tried), message))
}
