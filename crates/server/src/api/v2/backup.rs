//! Backups (`/system/backup/*`, and the reference's `/settings/backup/*`): write one now, list,
//! download and delete those in this node's backup directory, restore one (uploaded, or from
//! the directory), and the schedule of automatic ones. A backup holds every secret, encrypted
//! under its passphrase: only `admin:system` reaches any of it, and every step is audited.

use std::io::Write;

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use zeroize::Zeroizing;

use super::aliased;
use super::views::nullable;
use crate::App;
use crate::archive::streamed_attachment;
use crate::envelope::{Envelope, created, no_content, ok, ok_with};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};
use authority::backup::{
    BackupKind, BackupRecord, BackupRequest, BackupSchedule, BackupScheduleChange, Frequency,
    TableCount,
};

/// The routes: those the reference has under both `/system/backup` and `/settings/backup`,
/// then those it has under one of them.
pub fn routes() -> OpenApiRouter<App> {
    aliased(&["/system", "/settings"], shared)
        .routes(routes!(list_system))
        .routes(routes!(history))
        .routes(routes!(configuration))
        .routes(routes!(delete_backup))
        .routes(routes!(get_schedule, update_schedule))
}

fn shared() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(create_backup))
        .routes(routes!(download))
        // The upload is counted against the node's own limit as it streams to disk.
        .routes(routes!(restore).layer(DefaultBodyLimit::disable()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupView {
    /// Names the backup: `certmint-YYYYMMDD-HHMMSS-xxxxxxxx`.
    pub id: String,
    pub file_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The encrypted file's size.
    pub size: u64,
    /// The encrypted file's SHA-256, to check a copy kept elsewhere.
    pub sha256: String,
    /// `manual` or `scheduled` (only scheduled ones are removed by the retention).
    #[schema(value_type = String)]
    pub kind: BackupKind,
    pub created_by: String,
    pub node: String,
    pub version: String,
    pub schema_version: i64,
    /// `sqlite` or `postgresql` (it restores into either).
    pub backend: String,
    pub master_key_included: bool,
    pub rows: u64,
    pub certificates: u64,
    pub cas: u64,
    /// Rows per table in the snapshot.
    pub tables: Vec<TableRows>,
}

impl From<BackupRecord> for BackupView {
    fn from(r: BackupRecord) -> Self {
        Self {
            id: r.id,
            file_name: r.file_name,
            created_at: r.created_at,
            size: r.bytes,
            sha256: r.sha256,
            kind: r.kind,
            created_by: r.created_by,
            node: r.node,
            version: r.product_version,
            schema_version: r.schema_version,
            backend: r.backend,
            master_key_included: r.master_key_included,
            rows: r.rows,
            certificates: r.certificates,
            cas: r.cas,
            tables: r.tables.into_iter().map(TableRows::from).collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBackup {
    /// What the backup is encrypted under (at least 12 characters); needed to restore it.
    pub passphrase: String,
    /// Put the master key inside, under the passphrase; without it the backup restores only
    /// where the master key file is.
    #[serde(default)]
    pub include_master_key: bool,
}

/// Write a backup now into this node's backup directory: every table in one consistent
/// snapshot, this node's listener certificate and settings file, and the master key only when
/// asked; all encrypted under the passphrase.
#[utoipa::path(post, path = "/backup/create", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = CreateBackup,
    responses((status = 201, description = "Written", body = Envelope<BackupView>),
        (status = 409, description = "Another backup or restore is running", body = ErrorBody),
        (status = 422, description = "Passphrase too short", body = ErrorBody)))]
async fn create_backup(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<CreateBackup>,
) -> ApiResult<Response> {
    let record = app
        .authority
        .create_backup(
            &principal,
            BackupRequest {
                passphrase: Zeroizing::new(body.passphrase),
                include_master_key: body.include_master_key,
            },
        )
        .await?;
    Ok(created(BackupView::from(record), "backup written"))
}

async fn listed(app: &App, principal: &authority::Principal) -> ApiResult<Response> {
    let records = app.authority.backups(principal).await?;
    Ok(ok(records
        .into_iter()
        .map(BackupView::from)
        .collect::<Vec<_>>()))
}

/// The backups in this node's backup directory, newest first.
#[utoipa::path(get, path = "/system/backup/list", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Backups", body = Envelope<Vec<BackupView>>)))]
async fn list_system(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    listed(&app, &principal).await
}

/// The backups in this node's backup directory, newest first.
#[utoipa::path(get, path = "/settings/backup/history", tag = "settings",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Backups", body = Envelope<Vec<BackupView>>)))]
async fn history(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    listed(&app, &principal).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupConfiguration {
    /// Where this node writes backups.
    pub directory: String,
    /// The largest backup this node accepts for a restore, in bytes.
    pub max_upload_bytes: u64,
    pub schedule: ScheduleView,
    /// How many backups are in the directory, and the newest.
    pub count: usize,
    pub latest: Option<BackupView>,
}

/// The backup configuration: directory, schedule and the latest backup.
#[utoipa::path(get, path = "/settings/backup", tag = "settings",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Configuration", body = Envelope<BackupConfiguration>)))]
async fn configuration(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let schedule = app.authority.backup_schedule(&principal).await?;
    let records = app.authority.backups(&principal).await?;
    Ok(ok(BackupConfiguration {
        directory: app.authority.backup_shelf()?.dir().display().to_string(),
        max_upload_bytes: app.settings.backup.max_upload_bytes,
        schedule: schedule.into(),
        count: records.len(),
        latest: records.into_iter().next().map(BackupView::from),
    }))
}

/// Download a backup file (encrypted; the passphrase opens it).
#[utoipa::path(get, path = "/backup/{backup_id}/download", tag = "system",
    params(("backup_id" = String, Path, description = "The backup's id or file name")),
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 404, description = "No such backup", body = ErrorBody)))]
async fn download(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(backup_id): Path<String>,
) -> ApiResult<Response> {
    download_of(&app, &principal, &backup_id).await
}

/// Backup `id`'s file, as a download.
pub(crate) async fn download_of(
    app: &App,
    principal: &authority::Principal,
    id: &str,
) -> ApiResult<Response> {
    let (record, path) = app.authority.backup_download(principal, id).await?;
    let file = std::fs::File::open(&path)
        .map_err(|e| authority::Error::Internal(format!("cannot read {}: {e}", path.display())))?;
    Ok(streamed_attachment(
        "application/octet-stream",
        &record.file_name,
        file,
    )?)
}

/// Delete a backup from this node's backup directory.
#[utoipa::path(delete, path = "/settings/backup/{backup_id}", tag = "settings",
    params(("backup_id" = String, Path, description = "The backup's id or file name")),
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such backup", body = ErrorBody)))]
async fn delete_backup(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(backup_id): Path<String>,
) -> ApiResult<Response> {
    app.authority.delete_backup(&principal, &backup_id).await?;
    Ok(no_content())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreFromShelf {
    /// A backup in this node's backup directory.
    pub backup_id: String,
    pub passphrase: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TableRows {
    pub name: String,
    pub rows: u64,
}

impl From<TableCount> for TableRows {
    fn from(t: TableCount) -> Self {
        Self {
            name: t.name,
            rows: t.rows,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RestoreView {
    #[serde(with = "time::serde::rfc3339")]
    pub backup_created_at: OffsetDateTime,
    pub backup_version: String,
    pub schema_version: i64,
    /// Where the backup was taken.
    pub backend: String,
    pub tables: Vec<TableRows>,
    /// True: this node starts again now to drop what it held of the old rows; start every
    /// other node on the same database again too.
    pub restarting: bool,
}

/// Restore a backup while the service runs: multipart with the backup as part `file` and a
/// `passphrase` part, or JSON naming a `backup_id` of this node's directory. The file is
/// decrypted and checked whole before anything is written, then every row is replaced in one
/// transaction; the node then starts again by itself.
#[utoipa::path(post, path = "/backup/restore", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body(content = RestoreFromShelf, description = "Or multipart/form-data with `file` and `passphrase`"),
    responses((status = 200, description = "Restored", body = Envelope<RestoreView>),
        (status = 409, description = "Another backup or restore is running", body = ErrorBody),
        (status = 413, description = "Larger than this node accepts", body = ErrorBody),
        (status = 422, description = "Wrong passphrase, damaged file, or another schema or master key", body = ErrorBody)))]
async fn restore(
    State(app): State<App>,
    Caller(principal): Caller,
    request: Request,
) -> ApiResult<Response> {
    let multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (file, passphrase) = if multipart {
        let form = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        uploaded(&app, form).await?
    } else {
        let ApiJson(body) = ApiJson::<RestoreFromShelf>::from_request(request, &()).await?;
        (
            shelved(&app, &body.backup_id)?,
            Zeroizing::new(body.passphrase),
        )
    };
    Ok(ok_with(
        restored(&app, &principal, file, passphrase).await?,
        "restored; this node starts again now: start every other node on this database again",
    ))
}

/// The file of backup `id` in this node's backup directory.
pub(crate) fn shelved(app: &App, id: &str) -> ApiResult<std::fs::File> {
    let (_, path) = app.authority.backup_shelf()?.path(id)?;
    Ok(std::fs::File::open(&path)
        .map_err(|e| authority::Error::Internal(format!("cannot read {}: {e}", path.display())))?)
}

/// `file` restored under `passphrase`, and this node starting again (what it holds in memory
/// no longer matches the database).
pub(crate) async fn restored(
    app: &App,
    principal: &authority::Principal,
    file: std::fs::File,
    passphrase: Zeroizing<String>,
) -> ApiResult<RestoreView> {
    let restored = app
        .authority
        .restore_backup(principal, file, passphrase)
        .await?;
    app.restart_soon();
    Ok(RestoreView {
        backup_created_at: restored.manifest.created_at,
        backup_version: restored.manifest.product_version,
        schema_version: restored.manifest.schema_version,
        backend: restored.manifest.backend,
        tables: restored.tables.into_iter().map(TableRows::from).collect(),
        restarting: true,
    })
}

/// The uploaded backup, streamed into a private temporary file in the backup directory (never
/// held in memory) and cut off at the node's limit, and the passphrase sent with it.
pub(crate) async fn uploaded(
    app: &App,
    mut form: Multipart,
) -> Result<(std::fs::File, Zeroizing<String>), ApiError> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request(format!("unreadable multipart body: {}", e.body_text()))
    };
    let limit = app.settings.backup.max_upload_bytes;
    let shelf = app.authority.backup_shelf()?;
    let mut file = None;
    let mut passphrase = None;
    while let Some(mut part) = form.next_field().await.map_err(unreadable)? {
        match part.name().unwrap_or_default() {
            "file" if file.is_none() => {
                let mut out = tempfile::Builder::new()
                    .prefix(".upload-")
                    .tempfile_in(shelf.dir())
                    .or_else(|_| tempfile::NamedTempFile::new())
                    .map_err(|e| {
                        authority::Error::Internal(format!("cannot store the upload: {e}"))
                    })?;
                let mut size = 0_u64;
                while let Some(chunk) = part.chunk().await.map_err(unreadable)? {
                    size += chunk.len() as u64;
                    if size > limit {
                        return Err(ApiError::new(
                            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                            format!(
                                "the backup is larger than this node accepts ({limit} bytes: backup.max_upload_bytes)"
                            ),
                        ));
                    }
                    out.write_all(&chunk).map_err(|e| {
                        authority::Error::Internal(format!("cannot store the upload: {e}"))
                    })?;
                }
                // Unlinked now: the open file is all that is left, and it goes when dropped.
                let opened = out.reopen().map_err(|e| {
                    authority::Error::Internal(format!("cannot read the upload back: {e}"))
                })?;
                drop(out);
                file = Some(opened);
            }
            "passphrase" if passphrase.is_none() => {
                passphrase = Some(Zeroizing::new(part.text().await.map_err(unreadable)?));
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unexpected or repeated part '{other}': send one 'file' and one 'passphrase'"
                )));
            }
        }
    }
    match (file, passphrase) {
        (Some(file), Some(passphrase)) => Ok((file, passphrase)),
        _ => Err(ApiError::invalid(
            "send the backup as the part 'file' and its passphrase as the part 'passphrase'",
        )),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    pub enabled: bool,
    /// `hourly`, `daily` or `weekly`.
    #[schema(value_type = String)]
    pub frequency: Frequency,
    /// `HH:MM`, UTC (daily and weekly).
    pub time: Option<String>,
    /// `mon` to `sun` (weekly).
    pub day: Option<String>,
    /// The `backup` job's schedule as written.
    pub schedule: String,
    /// Scheduled backups kept; older ones are removed after each run.
    pub keep: u32,
    /// Scheduled backups older than this are removed too.
    pub retention_days: Option<u32>,
    pub include_master_key: bool,
    /// Whether a passphrase is set; it is never shown.
    pub passphrase_set: bool,
    pub directory: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub next_run_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_run_at: Option<OffsetDateTime>,
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
}

impl From<BackupSchedule> for ScheduleView {
    fn from(s: BackupSchedule) -> Self {
        Self {
            enabled: s.enabled,
            frequency: s.frequency,
            time: s.time,
            day: s.day,
            schedule: s.schedule,
            keep: s.keep,
            retention_days: s.retention_days,
            include_master_key: s.include_master_key,
            passphrase_set: s.passphrase_set,
            directory: s.directory,
            next_run_at: s.next_run_at,
            last_run_at: s.last_run_at,
            last_outcome: s.last_outcome,
            last_error: s.last_error,
        }
    }
}

/// The schedule of automatic backups.
#[utoipa::path(get, path = "/settings/backup/schedule", tag = "settings",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Schedule", body = Envelope<ScheduleView>)))]
async fn get_schedule(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let schedule = app.authority.backup_schedule(&principal).await?;
    Ok(ok(ScheduleView::from(schedule)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleChange {
    pub enabled: Option<bool>,
    /// `hourly`, `daily` or `weekly`.
    #[schema(value_type = Option<String>)]
    pub frequency: Option<Frequency>,
    /// `HH:MM`, UTC.
    pub time: Option<String>,
    /// `mon` to `sun`.
    pub day: Option<String>,
    /// Scheduled backups kept, 1 to 1000.
    pub keep: Option<u32>,
    /// Remove scheduled backups older than this many days (1 to 3650); null for no age limit.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>)]
    pub retention_days: Option<Option<u32>>,
    pub include_master_key: Option<bool>,
    /// What scheduled backups are encrypted under (at least 12 characters); sealed under the
    /// master key and never shown.
    pub passphrase: Option<String>,
}

/// Change the schedule of automatic backups (switching it on needs a passphrase).
#[utoipa::path(patch, path = "/settings/backup/schedule", tag = "settings",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = ScheduleChange,
    responses((status = 200, description = "Schedule", body = Envelope<ScheduleView>),
        (status = 422, description = "Invalid", body = ErrorBody)))]
async fn update_schedule(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<ScheduleChange>,
) -> ApiResult<Response> {
    let schedule = app
        .authority
        .update_backup_schedule(
            &principal,
            BackupScheduleChange {
                enabled: body.enabled,
                frequency: body.frequency,
                time: body.time,
                day: body.day,
                keep: body.keep,
                retention_days: body.retention_days,
                include_master_key: body.include_master_key,
                passphrase: body.passphrase.map(Zeroizing::new),
            },
        )
        .await?;
    Ok(ok_with(ScheduleView::from(schedule), "schedule saved"))
}
