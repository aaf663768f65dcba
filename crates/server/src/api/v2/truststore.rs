//! `/truststore`: certificates of other CAs that certmint trusts.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, Pagination, created, no_content, ok, page};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id, Upload, file_or_text};
use authority::{TrustLabels, TrustReport, TrustSource, TrustedRow};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(stats))
        .routes(routes!(import))
        .routes(routes!(sync))
        .routes(routes!(get, delete))
}

/// A trusted certificate, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrustedView {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// What it is trusted for, such as `trust_anchor`.
    pub purpose: String,
    pub notes: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub serial_number: String,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    /// root_ca or intermediate_ca.
    pub cert_type: String,
    pub fingerprint_sha256: String,
    /// manual, import or system.
    pub source: String,
    /// The certificate, PEM.
    pub pem: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<TrustedRow> for TrustedView {
    fn from(t: TrustedRow) -> Self {
        Self {
            id: t.id,
            name: t.name,
            description: t.description,
            purpose: t.purpose,
            notes: t.notes,
            subject: t.subject,
            issuer: t.issuer,
            serial_number: t.serial,
            valid_from: t.not_before,
            valid_until: t.not_after,
            cert_type: if t.is_root {
                "root_ca"
            } else {
                "intermediate_ca"
            }
            .into(),
            fingerprint_sha256: t.fingerprint_sha256,
            source: t.source.to_string(),
            pem: authority::pki::pem::encode("CERTIFICATE", &t.der),
            created_at: t.created_at,
        }
    }
}

/// What an import or sync added.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrustReportView {
    pub added: usize,
    pub skipped: usize,
    pub ids: Vec<i64>,
}

impl From<TrustReport> for TrustReportView {
    fn from(r: TrustReport) -> Self {
        Self {
            added: r.added.len(),
            skipped: r.skipped,
            ids: r.added,
        }
    }
}

/// The trust store, by name.
#[utoipa::path(get, path = "/truststore", tag = "truststore",
    security(("session" = ["read:truststore"]), ("api_key" = ["read:truststore"])),
    params(Pagination),
    responses((status = 200, description = "Trusted certificates", body = Envelope<Vec<TrustedView>>)))]
async fn list(State(app): State<App>, ApiQuery(p): ApiQuery<Pagination>) -> ApiResult<Response> {
    let request = p.request()?;
    let result = app.authority.trusted_certificates(request).await?;
    let items = result.items.into_iter().map(TrustedView::from).collect();
    Ok(page(items, request, result.total))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustCreate {
    /// The CA certificate, PEM.
    pub certificate: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// 1 to 64 lower-case letters, digits, `_` or `-`; `trust_anchor` when omitted.
    pub purpose: Option<String>,
    pub notes: Option<String>,
}

/// Trust one CA certificate.
#[utoipa::path(post, path = "/truststore", tag = "truststore",
    security(("session" = ["write:truststore"]), ("api_key" = ["write:truststore"])),
    request_body = TrustCreate,
    responses((status = 201, description = "Trusted", body = Envelope<TrustedView>),
              (status = 409, description = "Trusted already", body = ErrorBody),
              (status = 422, description = "Not a CA certificate", body = ErrorBody)))]
async fn create(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<TrustCreate>,
) -> ApiResult<Response> {
    Ok(created(
        trust_one(&app, &principal, body).await?,
        "Certificate added to the trust store",
    ))
}

/// Trusts the one CA certificate of `body`.
///
/// # Errors
/// As [`authority::Authority::trust`]; 409 when it is trusted already; 422 for a file of
/// several certificates.
pub async fn trust_one(
    app: &App,
    principal: &authority::Principal,
    body: TrustCreate,
) -> ApiResult<TrustedView> {
    let report = app
        .authority
        .trust(
            principal,
            body.certificate.as_bytes(),
            None,
            TrustLabels {
                name: body.name.as_deref(),
                description: body.description.as_deref(),
                purpose: body.purpose.as_deref(),
                notes: body.notes.as_deref(),
            },
            TrustSource::Manual,
        )
        .await?;
    let id = match report.added.as_slice() {
        [id] => *id,
        [] => {
            return Err(
                authority::Error::Conflict("the certificate is trusted already".into()).into(),
            );
        }
        _ => {
            return Err(ApiError::invalid(
                "send one certificate here; several go to /truststore/import",
            ));
        }
    };
    Ok(TrustedView::from(
        app.authority.trusted_certificate(id).await?,
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrustImport {
    /// Certificates, PEM (JSON bodies; a multipart body sends the file as `file`).
    pub pem_content: Option<String>,
    /// Opens a PKCS#12 file.
    pub password: Option<String>,
    /// The entry's name when the file holds one certificate; otherwise each is named after
    /// its common name.
    pub name: Option<String>,
    pub description: Option<String>,
    /// 1 to 64 lower-case letters, digits, `_` or `-`; `trust_anchor` when omitted.
    pub purpose: Option<String>,
    pub notes: Option<String>,
}

/// Trust every CA certificate of a file (PEM bundle, DER, PKCS#7, PKCS#12): all or none.
#[utoipa::path(post, path = "/truststore/import", tag = "truststore",
    security(("session" = ["write:truststore"]), ("api_key" = ["write:truststore"])),
    request_body(content = TrustImport, description = "JSON, or multipart/form-data with `file`"),
    responses((status = 200, description = "What was added", body = Envelope<TrustReportView>),
              (status = 422, description = "Unreadable, or not all CA certificates", body = ErrorBody)))]
async fn import(
    State(app): State<App>,
    Caller(principal): Caller,
    upload: Upload<TrustImport>,
) -> ApiResult<Response> {
    let data = file_or_text(upload.file, upload.fields.pem_content, "pem_content")?;
    let report = app
        .authority
        .trust(
            &principal,
            &data,
            upload.fields.password.as_deref(),
            TrustLabels {
                name: upload.fields.name.as_deref(),
                description: upload.fields.description.as_deref(),
                purpose: upload.fields.purpose.as_deref(),
                notes: upload.fields.notes.as_deref(),
            },
            TrustSource::Import,
        )
        .await?;
    Ok(ok(TrustReportView::from(report)))
}

/// Add the operating system's CA bundle (setting `system_trust_bundle`) to the trust store.
#[utoipa::path(post, path = "/truststore/sync", tag = "truststore",
    security(("session" = ["write:truststore"]), ("api_key" = ["write:truststore"])),
    responses((status = 200, description = "What was added", body = Envelope<TrustReportView>),
              (status = 422, description = "The bundle cannot be read", body = ErrorBody)))]
async fn sync(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let path = &app.settings.system_trust_bundle;
    let data = tokio::fs::read(path).await.map_err(|e| {
        ApiError::invalid(format!(
            "cannot read the system CA bundle {}: {e}",
            path.display()
        ))
    })?;
    let report = app
        .authority
        .trust(
            &principal,
            &data,
            None,
            TrustLabels::default(),
            TrustSource::System,
        )
        .await?;
    Ok(ok(TrustReportView::from(report)))
}

/// Counts of the trust store.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrustStatsView {
    pub total: i64,
    pub root_ca: i64,
    pub intermediate_ca: i64,
    pub expired: i64,
    pub valid: i64,
}

/// How many certificates are trusted, of which kind, and how many have expired.
#[utoipa::path(get, path = "/truststore/stats", tag = "truststore",
    security(("session" = ["read:truststore"]), ("api_key" = ["read:truststore"])),
    responses((status = 200, description = "Counts", body = Envelope<TrustStatsView>)))]
async fn stats(State(app): State<App>) -> ApiResult<Response> {
    let s = app.authority.trust_stats().await?;
    Ok(ok(TrustStatsView {
        total: s.total,
        root_ca: s.root_ca,
        intermediate_ca: s.intermediate_ca,
        expired: s.expired,
        valid: s.valid,
    }))
}

/// One trusted certificate.
#[utoipa::path(get, path = "/truststore/{id}", tag = "truststore",
    security(("session" = ["read:truststore"]), ("api_key" = ["read:truststore"])),
    params(("id" = i64, Path, description = "Trusted certificate id")),
    responses((status = 200, description = "The certificate", body = Envelope<TrustedView>),
              (status = 404, description = "No such certificate", body = ErrorBody)))]
async fn get(State(app): State<App>, Id(id): Id) -> ApiResult<Response> {
    Ok(ok(TrustedView::from(
        app.authority.trusted_certificate(id).await?,
    )))
}

/// Stop trusting a certificate.
#[utoipa::path(delete, path = "/truststore/{id}", tag = "truststore",
    security(("session" = ["delete:truststore"]), ("api_key" = ["delete:truststore"])),
    params(("id" = i64, Path, description = "Trusted certificate id")),
    responses((status = 204, description = "Removed"),
              (status = 404, description = "No such certificate", body = ErrorBody)))]
async fn delete(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.untrust(&principal, id).await?;
    Ok(no_content())
}
