//! `/system/db/*`: the database's figures, its integrity check, upkeep, and an export of every
//! certificate and CA (PEM files and a JSON index in a ZIP, never a key).

use std::io::{BufWriter, Seek, Write};

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::backup::BackupView;
use crate::App;
use crate::archive::{ZipBuilder, streamed_attachment};
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller};
use authority::pki::pem;
use authority::{Backend, CertificateId, DatabaseStats, ExportItem};
use zeroize::Zeroizing;

/// Certificates read and written into the export at a time.
const EXPORT_PAGE: i64 = 500;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(db_stats))
        .routes(routes!(db_integrity_check))
        .routes(routes!(db_optimize))
        .routes(routes!(db_export))
        .routes(routes!(db_reset))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TableView {
    pub name: String,
    /// Rows, counted.
    pub rows: i64,
    /// Bytes with its indexes; null when the backend does not say (SQLite without `dbstat`).
    pub bytes: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolView {
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DbStats {
    /// `sqlite` or `postgresql`.
    pub backend: &'static str,
    /// The database's size (SQLite: pages × page size, without the write-ahead log).
    pub database_bytes: i64,
    /// SQLite's free pages, in bytes (null on PostgreSQL).
    pub free_bytes: Option<i64>,
    /// SQLite's write-ahead log file (null on PostgreSQL).
    pub wal_bytes: Option<u64>,
    pub tables: Vec<TableView>,
    /// This node's connection pool.
    pub pool: PoolView,
}

/// Sizes before or after an optimize run.
#[derive(Debug, Serialize, ToSchema)]
pub struct Sizes {
    pub database_bytes: i64,
    pub free_bytes: Option<i64>,
    pub wal_bytes: Option<u64>,
}

impl From<&DatabaseStats> for Sizes {
    fn from(s: &DatabaseStats) -> Self {
        Self {
            database_bytes: s.bytes,
            free_bytes: s.free_bytes,
            wal_bytes: s.wal_bytes,
        }
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    }
}

/// The database's size, each table's rows and size, SQLite's write-ahead log, and the
/// connection pool.
#[utoipa::path(get, path = "/system/db/stats", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Figures", body = Envelope<DbStats>)))]
async fn db_stats(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(stats(&app, &principal).await?))
}

/// The database's figures.
pub(crate) async fn stats(app: &App, principal: &authority::Principal) -> ApiResult<DbStats> {
    let report = app.authority.database_report(principal).await?;
    let stats = report.stats;
    Ok(DbStats {
        backend: backend_name(stats.backend),
        database_bytes: stats.bytes,
        free_bytes: stats.free_bytes,
        wal_bytes: stats.wal_bytes,
        tables: stats
            .tables
            .into_iter()
            .map(|t| TableView {
                name: t.name,
                rows: t.rows,
                bytes: t.bytes,
            })
            .collect(),
        pool: PoolView {
            size: report.pool.size,
            idle: report.pool.idle,
            max: report.pool.max,
        },
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EngineView {
    /// What ran: `PRAGMA integrity_check`, `PRAGMA foreign_key_check`, or amcheck's
    /// `bt_index_check` on PostgreSQL.
    pub checks: Vec<String>,
    /// What the engine found wrong (at most 100).
    pub problems: Vec<String>,
    /// Why a check did not run (PostgreSQL without the amcheck extension).
    pub skipped: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemView {
    /// `certificate`, `ca` or `key`.
    pub resource: &'static str,
    pub id: i64,
    /// `unreadable_der`, `fingerprint_mismatch`, `issuer_link` or `sealed_key`.
    pub kind: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrityView {
    /// True when neither the engine nor certmint's own checks found anything wrong.
    pub ok: bool,
    pub engine: EngineView,
    pub cas_checked: i64,
    pub certificates_checked: i64,
    /// Keys sealed here, each tried with the vault.
    pub keys_checked: i64,
    /// Keys held in an HSM, not opened.
    pub keys_elsewhere: i64,
    /// Problems certmint's own checks found, in all.
    pub problem_count: i64,
    /// The first 100 of them.
    pub problems: Vec<ProblemView>,
}

/// Check the database: the engine's own checks (SQLite `integrity_check` and
/// `foreign_key_check`; PostgreSQL amcheck where installed), then every CA and certificate
/// (DER and fingerprint, issuer link, signature under the issuer's key) and every sealed key
/// (opens with the vault, matches its public key). Audited.
#[utoipa::path(post, path = "/system/db/integrity-check", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "What was found", body = Envelope<IntegrityView>),
              (status = 503, description = "The CPU pool is busy", body = ErrorBody)))]
async fn db_integrity_check(
    State(app): State<App>,
    Caller(principal): Caller,
) -> ApiResult<Response> {
    let view = integrity(&app, &principal).await?;
    let message = if view.ok {
        "no problems found"
    } else {
        "problems found"
    };
    Ok(ok_with(view, message))
}

/// The integrity check's findings.
pub(crate) async fn integrity(
    app: &App,
    principal: &authority::Principal,
) -> ApiResult<IntegrityView> {
    let report = app.authority.integrity_check(principal).await?;
    Ok(IntegrityView {
        ok: report.ok(),
        engine: EngineView {
            checks: report.engine.checks,
            problems: report.engine.problems,
            skipped: report.engine.skipped,
        },
        cas_checked: report.cas_checked,
        certificates_checked: report.certificates_checked,
        keys_checked: report.keys_checked,
        keys_elsewhere: report.keys_elsewhere,
        problem_count: report.problem_count,
        problems: report
            .problems
            .into_iter()
            .map(|p| ProblemView {
                resource: p.resource,
                id: p.id,
                kind: p.kind,
                message: p.message,
            })
            .collect(),
    })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OptimizeQuery {
    /// SQLite only: also `VACUUM`, which rewrites the whole file and holds the write lock
    /// (every write waits) while it does.
    pub vacuum: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OptimizeView {
    pub backend: &'static str,
    /// What ran.
    pub actions: Vec<String>,
    pub before: Sizes,
    pub after: Sizes,
}

/// Upkeep: SQLite `PRAGMA optimize` and `wal_checkpoint(TRUNCATE)` (and `VACUUM` with
/// `?vacuum=true`); PostgreSQL `VACUUM (ANALYZE)` on certmint's tables. Audited; answers the
/// sizes before and after.
#[utoipa::path(post, path = "/system/db/optimize", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(OptimizeQuery),
    responses((status = 200, description = "Done", body = Envelope<OptimizeView>),
              (status = 400, description = "A bad query string", body = ErrorBody),
              (status = 503, description = "SQLite's readers kept the log from emptying", body = ErrorBody)))]
async fn db_optimize(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<OptimizeQuery>,
) -> ApiResult<Response> {
    Ok(ok_with(
        optimized(&app, &principal, q.vacuum).await?,
        "database optimized",
    ))
}

/// The upkeep run, with the sizes before and after.
pub(crate) async fn optimized(
    app: &App,
    principal: &authority::Principal,
    vacuum: bool,
) -> ApiResult<OptimizeView> {
    let done = app.authority.optimize_database(principal, vacuum).await?;
    Ok(OptimizeView {
        backend: backend_name(done.before.backend),
        actions: done.actions,
        before: Sizes::from(&done.before),
        after: Sizes::from(&done.after),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// Must be `true`: everything in the database goes.
    pub confirm: bool,
    /// The backup taken first is encrypted under it (12 characters or more); the master key
    /// stays out of it, on this node.
    pub passphrase: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResetView {
    /// The backup taken before anything was dropped: restore it to undo the reset.
    pub backup: BackupView,
    /// The new first admin.
    pub admin_username: String,
    /// Its password, shown only this once.
    pub admin_password: String,
    /// Always true: this node starts again now.
    pub restarting: bool,
}

/// Resets the database to a new install's: a backup first (its id is in the answer), then every
/// table dropped and made anew, with a new first admin whose password only this answer holds.
/// The node then starts again by itself with a new CA hierarchy; every other node on the same
/// database must be started again by hand. Audited as the first record of the new chain.
#[utoipa::path(post, path = "/system/db/reset", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = ResetRequest,
    responses((status = 200, description = "Reset; the node starts again", body = Envelope<ResetView>),
              (status = 409, description = "A backup or restore is running", body = ErrorBody),
              (status = 422, description = "Not confirmed, or the passphrase is too short", body = ErrorBody)))]
async fn db_reset(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<ResetRequest>,
) -> ApiResult<Response> {
    if !body.confirm {
        return Err(authority::Error::Invalid(
            "a reset drops everything in the database: send \"confirm\": true".into(),
        )
        .into());
    }
    let reset = app
        .authority
        .reset_database(&principal, Zeroizing::new(body.passphrase))
        .await?;
    app.restart_soon();
    Ok(ok_with(
        ResetView {
            backup: BackupView::from(reset.backup),
            admin_username: reset.admin_username,
            admin_password: reset.admin_password.to_string(),
            restarting: true,
        },
        "the database is reset; this node starts again now: start every other node on this database again",
    ))
}

/// What `index.json` says of each certificate and CA.
#[derive(Debug, Serialize)]
struct IndexEntry<'a> {
    id: i64,
    refid: &'a str,
    name: Option<&'a str>,
    subject: &'a str,
    issuer: &'a str,
    /// The CA (by id, among the export's `cas`) that issued it, when certmint holds it.
    issuer_ca_id: Option<i64>,
    serial: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    status: &'a str,
    fingerprint_sha256: &'a str,
    /// The PEM file in the archive.
    file: String,
}

/// An export being written: the archive in one temporary file, and `index.json` in another
/// until the archive's end, where it is copied in. Neither is held in memory.
struct ExportFile {
    zip: ZipBuilder<std::fs::File>,
    index: BufWriter<std::fs::File>,
    /// Whether a certificate entry was written (the next one takes a comma).
    any: bool,
}

impl ExportFile {
    /// Starts an export in `dir` at `now`: the CAs' PEM files and index entries.
    fn start(
        dir: &std::path::Path,
        now: OffsetDateTime,
        cas: &[ExportItem],
    ) -> Result<Self, authority::Error> {
        let temp = || {
            tempfile::tempfile_in(dir).map_err(|e| {
                authority::Error::Internal(format!("cannot create the export's file: {e}"))
            })
        };
        let mut export = Self {
            zip: ZipBuilder::new(temp()?),
            index: BufWriter::new(temp()?),
            any: false,
        };
        let header = format!(
            "{{\"format\":\"certmint-export\",\"version\":1,\"exported_at\":\"{}\",\"cas\":[",
            authority::rfc3339(now)
        );
        export.write_index(header.as_bytes())?;
        for (i, ca) in cas.iter().enumerate() {
            if i > 0 {
                export.write_index(b",")?;
            }
            export.add(ca)?;
        }
        export.write_index(b"],\"certificates\":[")?;
        Ok(export)
    }

    fn write_index(&mut self, bytes: &[u8]) -> Result<(), authority::Error> {
        self.index
            .write_all(bytes)
            .map_err(|e| authority::Error::Internal(format!("cannot write the export: {e}")))
    }

    /// Writes `item`'s PEM file and index entry.
    fn add(&mut self, item: &ExportItem) -> Result<(), authority::Error> {
        let file = format!("{}-{}.pem", item.kind, item.id);
        self.zip
            .add(&file, pem::encode("CERTIFICATE", &item.cert.der).as_bytes())?;
        let entry = IndexEntry {
            id: item.id,
            refid: &item.refid,
            name: item.name.as_deref(),
            subject: &item.cert.subject,
            issuer: &item.cert.issuer,
            issuer_ca_id: item.issuer_ca_id,
            serial: &item.cert.serial,
            not_before: item.cert.not_before,
            not_after: item.cert.not_after,
            status: &item.status,
            fingerprint_sha256: &item.cert.fingerprint_sha256,
            file,
        };
        let json = serde_json::to_vec(&entry)
            .map_err(|e| authority::Error::Internal(format!("cannot write the export: {e}")))?;
        self.write_index(&json)
    }

    /// Writes a page of certificates.
    fn add_certificates(&mut self, page: &[ExportItem]) -> Result<(), authority::Error> {
        for item in page {
            if self.any {
                self.write_index(b",")?;
            }
            self.any = true;
            self.add(item)?;
        }
        Ok(())
    }

    /// Closes the index, copies it in, and finishes the archive.
    fn finish(mut self) -> Result<std::fs::File, authority::Error> {
        self.write_index(b"]}")?;
        let fail =
            |e: std::io::Error| authority::Error::Internal(format!("cannot write the export: {e}"));
        let mut index = self.index.into_inner().map_err(|e| fail(e.into_error()))?;
        index.rewind().map_err(fail)?;
        self.zip.add("index.json", index)?;
        self.zip.finish()
    }
}

/// Download every CA and certificate as a ZIP: one PEM file per CA (`ca-{id}.pem`) and per
/// certificate (`certificate-{id}.pem`), and `index.json` describing them (subject, issuer and
/// issuing CA, serial, validity, status, fingerprint). No private key is ever included.
/// Certificates are read a page at a time and the archive is written to a temporary file in
/// the data directory, then streamed.
#[utoipa::path(get, path = "/system/db/export", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "The ZIP archive", content_type = "application/zip"),
              (status = 503, description = "The CPU pool is busy", body = ErrorBody)))]
async fn db_export(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    export(&app, &principal).await
}

/// The export archive, as a download.
pub(crate) async fn export(app: &App, principal: &authority::Principal) -> ApiResult<Response> {
    let cas = app.authority.export_cas(principal).await?;
    let (dir, now) = (app.settings.data_dir.clone(), app.authority.now());
    let cpu = app.authority.cpu();
    // Deflating and file writes run in the CPU pool, the export handed to it and back.
    let mut file = cpu.run(move || ExportFile::start(&dir, now, &cas)).await?;
    let mut after = CertificateId(0);
    loop {
        let page = app
            .authority
            .export_certificates(principal, after, EXPORT_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = CertificateId(last.id);
        file = cpu
            .run(move || {
                file.add_certificates(&page)?;
                Ok(file)
            })
            .await?;
    }
    let archive = cpu.run(move || file.finish()).await?;
    let name = format!(
        "certmint-export-{:04}{:02}{:02}.zip",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    Ok(streamed_attachment("application/zip", &name, archive)?)
}
