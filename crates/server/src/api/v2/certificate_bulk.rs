//! `/certificates/bulk/*` and `/certificates/export`: the inventory several at a time.

use std::sync::atomic::AtomicUsize;

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::certificates::{CertificateQuery, certificate_filter, revocation_reason};
use super::views::{BulkIds, BulkResult, bulk, bulk_counting, bulk_ids};
use crate::App;
use crate::archive;
use crate::envelope::{Envelope, attachment, ok};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller};
use authority::pki::{bundle, pem};
use authority::{CaId, CertificateId, CertificateRow, PageRequest, Principal, RevocationReason};

/// Most certificates one `/certificates/export` returns; narrow the filter for more.
const MAX_EXPORT: i64 = 10_000;

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

/// Download every certificate a list query matches (same filters) as one PEM file.
#[utoipa::path(get, path = "/certificates/export", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(CertificateQuery),
    responses((status = 200, description = "The PEM file"),
              (status = 422, description = "More than 10,000 match", body = ErrorBody)))]
async fn export_all(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<CertificateQuery>,
) -> ApiResult<Response> {
    let now = app.authority.now();
    let filter = certificate_filter(q, now)?;
    let store = app.authority.reader();
    let mut ders = Vec::new();
    for page in 1.. {
        let result = store
            .certificates(
                &filter,
                now,
                PageRequest {
                    page,
                    per_page: 100,
                    after: None,
                },
            )
            .await
            .map_err(authority::Error::from)?;
        if result.total > MAX_EXPORT {
            return Err(ApiError::invalid(format!(
                "{} certificates match; export at most {MAX_EXPORT} at a time (filter by status, ca_id or search)",
                result.total
            )));
        }
        let last = result.items.len() < 100;
        ders.extend(result.items.into_iter().map(|c| c.cert.der));
        if last {
            break;
        }
    }
    let ders: Vec<&[u8]> = ders.iter().map(Vec::as_slice).collect();
    Ok(attachment(
        "application/x-pem-file",
        "certificates.pem",
        bundle::certificates_pem(&ders).into_bytes(),
    ))
}
