//! `/audit`: the keyed hash chain of audit records — list, stats, export, checkpoint, verify,
//! cleanup.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, Pagination, Total, attachment, keyset_page, ok, ok_with};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id};
use authority::reports::csv_text;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(logs))
        .routes(routes!(log))
        .routes(routes!(stats))
        .routes(routes!(actions))
        .routes(routes!(export))
        .routes(routes!(checkpoint))
        .routes(routes!(verify, verify_checkpoint))
        .routes(routes!(cleanup))
        .routes(routes!(retention, update_retention))
}

/// An audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub username: Option<String>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub details: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub success: bool,
    /// The previous record's hash.
    pub prev_hash: String,
    /// HMAC-SHA256 (plain SHA-256 for records written before the chain was keyed) over this
    /// record's content and `prev_hash`.
    pub hash: String,
}

impl From<authority::AuditRecord> for AuditView {
    fn from(r: authority::AuditRecord) -> Self {
        Self {
            id: r.id,
            timestamp: r.entry.at,
            username: r.entry.username,
            action: r.entry.action,
            resource_type: r.entry.resource_type,
            resource_id: r.entry.resource_id,
            details: r.entry.details,
            ip_address: r.entry.ip_address,
            user_agent: r.entry.user_agent,
            success: r.entry.success,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub username: Option<String>,
    pub action: Option<String>,
    pub success: Option<bool>,
    /// A date (YYYY-MM-DD) or an RFC 3339 time; records at or after it.
    pub date_from: Option<String>,
    /// A date (YYYY-MM-DD, the whole day included) or an RFC 3339 time; records before it.
    pub date_to: Option<String>,
    /// Text in details, resource id or action.
    pub search: Option<String>,
}

impl AuditQuery {
    fn filter(self) -> ApiResult<authority::AuditFilter> {
        let to = match &self.date_to {
            Some(v) if v.len() == 10 => {
                Some(authority::parse_time("date_to", v)? + time::Duration::days(1))
            }
            Some(v) => Some(authority::parse_time("date_to", v)?),
            None => None,
        };
        Ok(authority::AuditFilter {
            from: self
                .date_from
                .as_deref()
                .map(|v| authority::parse_time("date_from", v))
                .transpose()?,
            to,
            username: self.username.filter(|s| !s.is_empty()),
            action: self.action.filter(|s| !s.is_empty()),
            success: self.success,
            search: self.search.filter(|s| !s.is_empty()),
        })
    }
}

/// Audit records, newest first.
#[utoipa::path(get, path = "/audit/logs", tag = "audit",
    security(("session" = ["read:audit"]), ("api_key" = ["read:audit"])),
    params(AuditQuery, Pagination),
    responses((status = 200, description = "Records", body = Envelope<Vec<AuditView>>),
              (status = 400, description = "A bad filter", body = ErrorBody)))]
async fn logs(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<AuditQuery>,
    ApiQuery(p): ApiQuery<Pagination>,
) -> ApiResult<Response> {
    let request = p.keyset_request()?;
    let (items, total) = logs_page(&app, q, request).await?;
    Ok(keyset_page(items, request, total, |r| r.id))
}

/// One page of the records a query selects, newest first, and how many it selects; the
/// console's list reads them the same way.
pub async fn logs_page(
    app: &App,
    q: AuditQuery,
    request: authority::PageRequest,
) -> ApiResult<(Vec<AuditView>, Total)> {
    let result = app.authority.audit_logs(&q.filter()?, request).await?;
    let total = Total {
        n: result.total,
        estimated: result.estimated,
    };
    Ok((
        result.items.into_iter().map(AuditView::from).collect(),
        total,
    ))
}

/// One audit record.
#[utoipa::path(get, path = "/audit/logs/{log_id}", tag = "audit",
    security(("session" = ["read:audit"]), ("api_key" = ["read:audit"])),
    params(("log_id" = i64, Path)),
    responses((status = 200, description = "Record", body = Envelope<AuditView>),
              (status = 404, description = "No such record", body = ErrorBody)))]
async fn log(State(app): State<App>, Id(id): Id) -> ApiResult<Response> {
    Ok(ok(AuditView::from(app.authority.audit_log(id).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// The period, in days (default 30).
    pub days: i64,
}

impl Default for StatsQuery {
    fn default() -> Self {
        Self { days: 30 }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Count {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsData {
    pub total_logs: i64,
    pub success_count: i64,
    pub failure_count: i64,
    pub success_rate: f64,
    pub top_actions: Vec<Count>,
    pub top_users: Vec<Count>,
    pub recent_failures: Vec<AuditView>,
}

/// Totals, top actions and users, and recent failures over a period.
#[utoipa::path(get, path = "/audit/stats", tag = "audit",
    security(("session" = ["read:audit"]), ("api_key" = ["read:audit"])),
    params(StatsQuery),
    responses((status = 200, description = "Statistics", body = Envelope<StatsData>)))]
async fn stats(State(app): State<App>, ApiQuery(q): ApiQuery<StatsQuery>) -> ApiResult<Response> {
    let s = app.authority.audit_stats(q.days).await?;
    let rate = if s.total == 0 {
        100.0
    } else {
        (s.successes as f64 * 1000.0 / s.total as f64).round() / 10.0
    };
    Ok(ok(StatsData {
        total_logs: s.total,
        success_count: s.successes,
        failure_count: s.total - s.successes,
        success_rate: rate,
        top_actions: s
            .top_actions
            .into_iter()
            .map(|(action, count)| Count {
                action: Some(action),
                username: None,
                count,
            })
            .collect(),
        top_users: s
            .top_users
            .into_iter()
            .map(|(username, count)| Count {
                action: None,
                username: Some(username),
                count,
            })
            .collect(),
        recent_failures: s.recent_failures.into_iter().map(AuditView::from).collect(),
    }))
}

/// Every action name that occurs in the log.
#[utoipa::path(get, path = "/audit/actions", tag = "audit",
    security(("session" = ["read:audit"]), ("api_key" = ["read:audit"])),
    responses((status = 200, description = "Action names", body = Envelope<Vec<String>>)))]
async fn actions(State(app): State<App>) -> ApiResult<Response> {
    Ok(ok(app.authority.audit_actions().await?))
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Json,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default) or `csv`.
    #[param(inline)]
    pub format: ExportFormat,
    /// At most this many records, oldest first (default 10000, at most 100000).
    pub limit: i64,
}

impl Default for ExportQuery {
    fn default() -> Self {
        Self {
            format: ExportFormat::Json,
            limit: 10_000,
        }
    }
}

/// Download records as JSON or CSV (filters as for the list). The export is itself audited.
#[utoipa::path(get, path = "/audit/export", tag = "audit",
    security(("session" = ["read:audit"]), ("api_key" = ["read:audit"])),
    params(ExportQuery, AuditQuery),
    responses((status = 200, description = "The records as a file"),
              (status = 400, description = "Unknown format or a bad filter", body = ErrorBody)))]
async fn export(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(e): ApiQuery<ExportQuery>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    export_file(&app, &principal, e, q).await
}

/// The records a query selects as a file in the format `e` asks for, the export itself
/// audited; the console's CSV button asks the same way.
pub async fn export_file(
    app: &App,
    principal: &authority::Principal,
    e: ExportQuery,
    q: AuditQuery,
) -> ApiResult<Response> {
    let name = match e.format {
        ExportFormat::Json => "json",
        ExportFormat::Csv => "csv",
    };
    let records = app
        .authority
        .audit_export(principal, &q.filter()?, e.limit, name)
        .await?;
    let views: Vec<AuditView> = records.into_iter().map(AuditView::from).collect();
    let (content_type, body) = match e.format {
        ExportFormat::Json => (
            "application/json",
            serde_json::to_vec_pretty(&views)
                .map_err(|e| ApiError::from(authority::Error::Internal(e.to_string())))?,
        ),
        ExportFormat::Csv => ("text/csv", csv_bytes(&views)?),
    };
    Ok(attachment(
        content_type,
        &format!("certmint-audit.{name}"),
        body,
    ))
}

fn csv_bytes(views: &[AuditView]) -> ApiResult<Vec<u8>> {
    let internal = |e: csv::Error| ApiError::from(authority::Error::Internal(e.to_string()));
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "id",
            "timestamp",
            "username",
            "action",
            "resource_type",
            "resource_id",
            "details",
            "ip_address",
            "user_agent",
            "success",
            "prev_hash",
            "hash",
        ])
        .map_err(internal)?;
    for v in views {
        writer
            .write_record([
                v.id.to_string(),
                authority::rfc3339(v.timestamp),
                csv_text(v.username.as_deref().unwrap_or_default()),
                csv_text(&v.action),
                csv_text(v.resource_type.as_deref().unwrap_or_default()),
                csv_text(v.resource_id.as_deref().unwrap_or_default()),
                csv_text(v.details.as_deref().unwrap_or_default()),
                csv_text(v.ip_address.as_deref().unwrap_or_default()),
                csv_text(v.user_agent.as_deref().unwrap_or_default()),
                v.success.to_string(),
                v.prev_hash.clone(),
                v.hash.clone(),
            ])
            .map_err(internal)?;
    }
    writer
        .into_inner()
        .map_err(|e| ApiError::from(authority::Error::Internal(e.to_string())))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// Walk from this record (with `end_id`, a range; the range's records only).
    pub start_id: Option<i64>,
    /// Walk up to this record.
    pub end_id: Option<i64>,
    /// Without a range: re-hash every record, not only those after the newest trusted
    /// checkpoint.
    pub full: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Fault {
    pub id: i64,
    /// `altered`, `missing`, `broken_link` or `forged_checkpoint`.
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyData {
    pub valid: bool,
    pub checked: i64,
    pub start_id: i64,
    pub end_id: i64,
    /// The record of the checkpoint this walk started after: a walk without a range or `full`
    /// trusts the newest checkpoint whose signature holds and whose record still carries its
    /// hash, and re-hashes only the records after it. Null when the walk did not start from
    /// one.
    pub from_checkpoint: Option<i64>,
    pub errors: Vec<Fault>,
}

/// Recompute the hash chain and report exactly where it breaks: the records after the newest
/// trusted checkpoint by default, every record with `full=true`, or a range.
#[utoipa::path(get, path = "/audit/verify", tag = "audit",
    security(("session" = ["read:audit"]), ("api_key" = ["read:audit"])),
    params(VerifyQuery),
    responses((status = 200, description = "Verification report", body = Envelope<VerifyData>)))]
async fn verify(State(app): State<App>, ApiQuery(q): ApiQuery<VerifyQuery>) -> ApiResult<Response> {
    Ok(ok(verification(&app, q).await?))
}

/// The chain recomputed over the range `q` names, or all of it with `full`, or what is new
/// since the newest trusted checkpoint, with every fault found; the console's "Verify the
/// chain" shows the same report.
pub async fn verification(app: &App, q: VerifyQuery) -> ApiResult<VerifyData> {
    let walked = if q.start_id.is_some() || q.end_id.is_some() || q.full == Some(true) {
        app.authority.audit_verify(q.start_id, q.end_id).await?
    } else {
        app.authority.audit_verify_since_checkpoint().await?
    };
    Ok(report(walked))
}

/// A signed statement of the chain's head, to keep outside the server and verify against later.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointView {
    /// The id of the newest record (the count of records ever written).
    pub last_id: i64,
    /// Its hash.
    pub head_hash: String,
    /// The first record whose hash is keyed.
    pub keyed_from: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// HMAC-SHA256 over the other fields under a key derived from the master key.
    pub signature: String,
}

/// A signed checkpoint of the chain's head now.
#[utoipa::path(get, path = "/audit/checkpoint", tag = "audit",
    security(("session" = ["read:audit"]), ("api_key" = ["read:audit"])),
    responses((status = 200, description = "Checkpoint", body = Envelope<CheckpointView>)))]
async fn checkpoint(State(app): State<App>) -> ApiResult<Response> {
    let c = app.authority.audit_checkpoint().await?;
    Ok(ok(CheckpointView {
        last_id: c.last_id,
        head_hash: c.head_hash,
        keyed_from: c.keyed_from,
        at: c.at,
        signature: c.signature,
    }))
}

/// Verify the whole chain and that it still holds what a checkpoint (as
/// `GET /audit/checkpoint` gave it) saw: its record with its hash. A checkpoint whose
/// signature is not genuine fails.
#[utoipa::path(post, path = "/audit/verify", tag = "audit",
    security(("session" = ["read:audit"]), ("api_key" = ["read:audit"])),
    request_body = CheckpointView,
    responses((status = 200, description = "Verification report", body = Envelope<VerifyData>),
              (status = 400, description = "Not a checkpoint", body = ErrorBody)))]
async fn verify_checkpoint(
    State(app): State<App>,
    ApiJson(c): ApiJson<CheckpointView>,
) -> ApiResult<Response> {
    let checkpoint = authority::Checkpoint {
        last_id: c.last_id,
        head_hash: c.head_hash,
        keyed_from: c.keyed_from,
        at: c.at,
        signature: c.signature,
    };
    Ok(ok(report(
        app.authority.audit_verify_checkpoint(&checkpoint).await?,
    )))
}

fn report(v: authority::Verification) -> VerifyData {
    VerifyData {
        valid: v.valid,
        checked: v.checked,
        start_id: v.start_id,
        end_id: v.end_id,
        from_checkpoint: v.from_checkpoint,
        errors: v
            .faults
            .into_iter()
            .map(|f| Fault {
                id: f.id,
                kind: f.kind.to_owned(),
                message: f.message,
            })
            .collect(),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanupRequest {
    /// Keep records of the last this many days (at least `audit_min_retention_days`, 90 by
    /// default).
    pub retention_days: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CleanupData {
    pub deleted: i64,
}

/// Remove records older than the retention period; the rest of the chain stays verifiable.
#[utoipa::path(post, path = "/audit/cleanup", tag = "audit",
    security(("session" = ["delete:audit"]), ("api_key" = ["delete:audit"])),
    request_body = CleanupRequest,
    responses((status = 200, description = "Removed", body = Envelope<CleanupData>),
              (status = 422, description = "A retention period under the minimum", body = ErrorBody)))]
async fn cleanup(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<CleanupRequest>,
) -> ApiResult<Response> {
    let deleted = app
        .authority
        .audit_cleanup(&principal, body.retention_days)
        .await?;
    Ok(ok_with(
        CleanupData { deleted },
        format!("{deleted} audit records removed"),
    ))
}

/// Whether the `audit_retention` job removes old records, and how old.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionView {
    /// Off by default: records are kept until an administrator turns retention on.
    pub enabled: bool,
    /// Records older than this many days are removed each day (at least
    /// `audit_min_retention_days`).
    pub retention_days: i64,
}

impl From<authority::jobs::AuditRetention> for RetentionView {
    fn from(r: authority::jobs::AuditRetention) -> Self {
        Self {
            enabled: r.enabled,
            retention_days: r.retention_days,
        }
    }
}

/// A change to the retention; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPatch {
    pub enabled: Option<bool>,
    pub retention_days: Option<i64>,
}

/// The audit retention that the daily `audit_retention` job applies.
#[utoipa::path(get, path = "/system/audit/retention", tag = "audit",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Retention", body = Envelope<RetentionView>)))]
async fn retention(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(RetentionView::from(
        app.authority.audit_retention(&principal).await?,
    )))
}

/// Change the audit retention.
#[utoipa::path(put, path = "/system/audit/retention", tag = "audit",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = RetentionPatch,
    responses((status = 200, description = "Updated", body = Envelope<RetentionView>),
              (status = 422, description = "A retention period under the minimum", body = ErrorBody)))]
async fn update_retention(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(patch): ApiJson<RetentionPatch>,
) -> ApiResult<Response> {
    let change = authority::jobs::AuditRetentionChange {
        enabled: patch.enabled,
        retention_days: patch.retention_days,
    };
    let retention = app
        .authority
        .update_audit_retention(&principal, change)
        .await?;
    Ok(ok_with(
        RetentionView::from(retention),
        "audit retention updated",
    ))
}
