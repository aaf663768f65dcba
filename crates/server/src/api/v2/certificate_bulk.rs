//! `/certificates/bulk/*` and `/certificates/export`: the inventory several at a time.

use std::sync::atomic::AtomicUsize;

use authority::reports::csv_cell;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::certificates::{
    CertificateQuery, CertificateView, certificate_filter, revocation_reason,
};
use super::views::{BulkIds, BulkResult, bulk, bulk_counting, bulk_ids};
use crate::App;
use crate::archive;
use crate::envelope::{Envelope, attachment, ok};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller};
use authority::pki::{bundle, pem};
use authority::{CaId, CertificateId, CertificateRow, PageRequest, Principal, RevocationReason};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(bulk_revoke))
        .routes(routes!(bulk_renew))
        .routes(routes!(bulk_delete))
        .routes(routes!(bulk_export))
        .routes(routes!(export_all))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRevoke {
    pub ids: Vec<i64>,
    /// RFC 5280 reason, as for one certificate; unspecified when omitted.
    pub reason: Option<String>,
    pub comments: Option<String>,
}

/// Revoke several certificates with one reason.
#[utoipa::path(post, path = "/certificates/bulk/revoke", tag = "certificates",
    security(("session" = ["delete:certificates"]), ("api_key" = ["delete:certificates"])),
    request_body = BulkRevoke,
    responses((status = 200, description = "What was revoked", body = Envelope<BulkResult>),
              (status = 422, description = "Bad ids or reason", body = ErrorBody)))]
async fn bulk_revoke(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<BulkRevoke>,
) -> ApiResult<Response> {
    let reason = revocation_reason(body.reason.as_deref(), body.comments.as_deref())?;
    let done = AtomicUsize::new(0);
    let result = revoke_each(&app, &principal, &body.ids, reason, body.comments, &done).await?;
    Ok(ok(result))
}

/// Revokes each of `ids` for `reason`, counting in `done`; the console's bulk revocation runs
/// the same.
pub async fn revoke_each(
    app: &App,
    principal: &Principal,
    ids: &[i64],
    reason: RevocationReason,
    comments: Option<String>,
    done: &AtomicUsize,
) -> ApiResult<BulkResult> {
    let each = |id| {
        let comments = comments.clone();
        async move {
            app.authority
                .revoke(
                    principal,
                    CertificateId(id),
                    reason,
                    comments.as_deref(),
                    None,
                )
                .await
                .map(drop)
        }
    };
    bulk_counting(ids, each, done).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRenew {
    pub ids: Vec<i64>,
    /// Issue from this CA instead of each original's.
    pub ca_id: Option<i64>,
    /// Days; each original's validity when omitted.
    pub validity_days: Option<i64>,
}

/// Renew several certificates, each keeping its key, names and usages.
#[utoipa::path(post, path = "/certificates/bulk/renew", tag = "certificates",
    security(("session" = ["write:certificates"]), ("api_key" = ["write:certificates"])),
    request_body = BulkRenew,
    responses((status = 200, description = "Which were renewed (ids of the originals)", body = Envelope<BulkResult>),
              (status = 422, description = "Bad ids", body = ErrorBody)))]
async fn bulk_renew(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<BulkRenew>,
) -> ApiResult<Response> {
    let done = AtomicUsize::new(0);
    let ca_id = body.ca_id.map(CaId);
    let result = renew_each(
        &app,
        &principal,
        &body.ids,
        ca_id,
        body.validity_days,
        &done,
    )
    .await?;
    Ok(ok(result))
}

/// Renews each of `ids` (each keeping its key), counting in `done`; the console's bulk renewal
/// runs the same.
pub async fn renew_each(
    app: &App,
    principal: &Principal,
    ids: &[i64],
    ca_id: Option<CaId>,
    validity_days: Option<i64>,
    done: &AtomicUsize,
) -> ApiResult<BulkResult> {
    let each = |id| async move {
        app.authority
            .renew(principal, CertificateId(id), validity_days, ca_id, None)
            .await
            .map(drop)
    };
    bulk_counting(ids, each, done).await
}

/// Delete several certificates from the inventory (they are not revoked).
#[utoipa::path(post, path = "/certificates/bulk/delete", tag = "certificates",
    security(("session" = ["delete:certificates"]), ("api_key" = ["delete:certificates"])),
    request_body = BulkIds,
    responses((status = 200, description = "What was deleted", body = Envelope<BulkResult>),
              (status = 422, description = "Bad ids", body = ErrorBody)))]
async fn bulk_delete(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<BulkIds>,
) -> ApiResult<Response> {
    let result = bulk(&body.ids, |id| {
        let (app, principal) = (app.clone(), principal.clone());
        async move {
            app.authority
                .delete_certificate(&principal, CertificateId(id))
                .await
        }
    })
    .await?;
    Ok(ok(result))
}

fn pem_file(cert: &CertificateRow) -> (String, Vec<u8>) {
    let name = cert
        .cert
        .common_name
        .clone()
        .unwrap_or_else(|| cert.refid.clone());
    (
        format!("{}-{name}.pem", cert.id),
        pem::encode("CERTIFICATE", &cert.cert.der).into_bytes(),
    )
}

/// Download several certificates as a ZIP of PEM files (`{id}-{common name}.pem`).
#[utoipa::path(post, path = "/certificates/bulk/export", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    request_body = BulkIds,
    responses((status = 200, description = "The ZIP file"),
              (status = 404, description = "An id names no certificate", body = ErrorBody),
              (status = 422, description = "Bad ids", body = ErrorBody)))]
async fn bulk_export(
    State(app): State<App>,
    ApiJson(body): ApiJson<BulkIds>,
) -> ApiResult<Response> {
    export_each(&app, &body.ids).await
}

/// `ids` as a ZIP of PEM files; the console's bulk export answers the same.
pub async fn export_each(app: &App, ids: &[i64]) -> ApiResult<Response> {
    bulk_ids(ids)?;
    let mut files = Vec::with_capacity(ids.len());
    for id in ids {
        files.push(pem_file(
            &app.authority.certificate(CertificateId(*id)).await?,
        ));
    }
    Ok(attachment(
        "application/zip",
        "certificates.zip",
        archive::zip(&files)?,
    ))
}

/// Rows read from the database at a time while streaming an export.
const EXPORT_PAGE: u32 = 500;

/// `?format=` of `/certificates/export`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `pem` (the default), `csv` or `json`.
    pub format: Option<String>,
}

/// How `/certificates/export` writes the certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportFormat {
    Pem,
    Csv,
    Json,
}

/// The columns of the CSV export: fields of [`CertificateView`], in its JSON names.
const CSV_COLUMNS: [&str; 15] = [
    "id",
    "refid",
    "common_name",
    "subject",
    "issuer",
    "ca_id",
    "serial_number",
    "san",
    "status",
    "valid_from",
    "valid_until",
    "key_type",
    "signature_algorithm",
    "fingerprint_sha256",
    "source",
];

impl ExportFormat {
    fn parse(format: Option<&str>) -> ApiResult<Self> {
        match format.unwrap_or("pem") {
            "pem" => Ok(Self::Pem),
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            other => Err(ApiError::bad_request(format!(
                "unknown format '{other}'; expected pem, csv or json"
            ))),
        }
    }

    fn content_type(self) -> (&'static str, &'static str) {
        match self {
            Self::Pem => ("application/x-pem-file", "certificates.pem"),
            Self::Csv => ("text/csv; charset=utf-8", "certificates.csv"),
            Self::Json => ("application/json", "certificates.json"),
        }
    }

    /// One page of the export: `first` opens the file (the CSV header, JSON's `[`), `last`
    /// closes it (JSON's `]`).
    fn chunk(
        self,
        rows: Vec<CertificateRow>,
        now: OffsetDateTime,
        first: bool,
        last: bool,
    ) -> Result<Vec<u8>, authority::Error> {
        let failed = |e: String| authority::Error::Internal(format!("writing the export: {e}"));
        match self {
            Self::Pem => {
                let ders: Vec<&[u8]> = rows.iter().map(|c| c.cert.der.as_slice()).collect();
                Ok(bundle::certificates_pem(&ders).into_bytes())
            }
            Self::Csv => {
                let mut out = csv::Writer::from_writer(Vec::new());
                if first {
                    out.write_record(CSV_COLUMNS)
                        .map_err(|e| failed(e.to_string()))?;
                }
                for row in rows {
                    let view = serde_json::to_value(CertificateView::new(row, now))
                        .map_err(|e| failed(e.to_string()))?;
                    out.write_record(CSV_COLUMNS.iter().map(|c| csv_cell(view.get(*c))))
                        .map_err(|e| failed(e.to_string()))?;
                }
                out.into_inner().map_err(|e| failed(e.to_string()))
            }
            Self::Json => {
                let mut out = Vec::new();
                if first {
                    out.push(b'[');
                }
                for (i, row) in rows.into_iter().enumerate() {
                    if !first || i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut out, &CertificateView::new(row, now))
                        .map_err(|e| failed(e.to_string()))?;
                }
                if last {
                    out.push(b']');
                }
                Ok(out)
            }
        }
    }
}

/// Where a streamed export stands.
struct Export {
    reader: authority::Reader,
    filter: authority::CertificateFilter,
    now: OffsetDateTime,
    format: ExportFormat,
    /// The page read before the answer began (so that its failure is the answer's status).
    ready: Option<Vec<CertificateRow>>,
    /// The id of the last row written.
    after: Option<i64>,
    /// Whether something was written (the CSV header, JSON's `[`).
    started: bool,
    done: bool,
}

impl Export {
    async fn page(&self) -> Result<Vec<CertificateRow>, authority::Error> {
        let page = PageRequest {
            page: 1,
            per_page: EXPORT_PAGE,
            after: self.after,
        };
        Ok(self
            .reader
            .certificate_rows(&self.filter, self.now, page)
            .await?)
    }

    /// The next chunk of the file, or `None` once it is whole.
    async fn next(mut self) -> Option<(Result<Vec<u8>, std::io::Error>, Self)> {
        if self.done {
            return None;
        }
        let rows = match self.ready.take() {
            Some(rows) => rows,
            None => match self.page().await {
                Ok(rows) => rows,
                Err(e) => {
                    // The body ends here; the client sees a short download, never a whole one.
                    self.done = true;
                    return Some((Err(std::io::Error::other(e.to_string())), self));
                }
            },
        };
        let last = u32::try_from(rows.len()).is_ok_and(|n| n < EXPORT_PAGE);
        self.after = rows.last().map(|c| c.id.0).or(self.after);
        let chunk = self.format.chunk(rows, self.now, !self.started, last);
        self.started = true;
        self.done = last || chunk.is_err();
        Some((
            chunk.map_err(|e| std::io::Error::other(e.to_string())),
            self,
        ))
    }
}

/// Download every certificate a list query matches (same filters), as one PEM file, CSV or a
/// JSON array of the list's items. The file is written as it is read, a page at a time, so an
/// export of any size holds one page in memory.
#[utoipa::path(get, path = "/certificates/export", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(CertificateQuery, ExportQuery),
    responses((status = 200, description = "The file: PEM, CSV or JSON"),
              (status = 400, description = "A bad filter or format", body = ErrorBody)))]
async fn export_all(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<CertificateQuery>,
    ApiQuery(e): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let format = ExportFormat::parse(e.format.as_deref())?;
    let now = app.authority.now();
    let mut export = Export {
        reader: app.authority.reader().clone(),
        filter: certificate_filter(q, now)?,
        now,
        format,
        ready: None,
        after: None,
        started: false,
        done: false,
    };
    export.ready = Some(export.page().await?);
    let (content_type, file_name) = format.content_type();
    let chunks = futures_util::stream::unfold(export, Export::next);
    Ok(attachment(
        content_type,
        file_name,
        Body::from_stream(chunks),
    ))
}
