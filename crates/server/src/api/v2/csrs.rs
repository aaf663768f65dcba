//! `/csrs`: certificate signing requests kept to be signed later, uploaded or made here with a
//! server-side key.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::certificates::CertificateView;
use super::views::{BulkIds, BulkResult, SubjectFields, bulk, requested_key_type};
use crate::App;
use crate::envelope::{Envelope, Pagination, attachment, created, no_content, ok, page};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id, Upload, file_or_text};
use authority::pki::{SubjectAltName, pem};
use authority::{CaId, CsrId, CsrRow, CsrStatus, SignCsr, TemplateId};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(upload))
        .routes(routes!(import))
        .routes(routes!(history))
        .routes(routes!(get, delete))
        .routes(routes!(sign))
        .routes(routes!(export))
        .routes(routes!(private_key))
        .routes(routes!(bulk_sign))
        .routes(routes!(bulk_delete))
}

/// A stored CSR, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CsrView {
    pub id: i64,
    pub refid: String,
    pub name: String,
    pub common_name: Option<String>,
    pub subject: String,
    /// `kind:value`.
    pub san: Vec<String>,
    pub key_type: String,
    pub signature_algorithm: String,
    /// pending or signed.
    pub status: String,
    /// The certificate it was signed into.
    pub certificate_id: Option<i64>,
    /// uploaded or generated.
    pub source: String,
    /// Whether certmint holds the private key.
    pub has_private_key: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub signed_at: Option<OffsetDateTime>,
}

impl From<CsrRow> for CsrView {
    fn from(c: CsrRow) -> Self {
        Self {
            id: c.id.0,
            refid: c.refid,
            name: c.name,
            common_name: c.common_name,
            subject: c.subject,
            san: c.sans,
            key_type: c.key_type,
            signature_algorithm: c.signature_algorithm,
            status: c.status.to_string(),
            certificate_id: c.certificate_id.map(i64::from),
            source: c.source.to_string(),
            has_private_key: c.key_id.is_some(),
            created_at: c.created_at,
            signed_at: c.signed_at,
        }
    }
}

/// Shares the query string with [`Pagination`], so neither may refuse the other's fields.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct CsrQuery {
    /// pending or signed.
    pub status: Option<String>,
}

async fn csr_page(app: &App, status: Option<&str>, p: Pagination) -> ApiResult<Response> {
    let request = p.request()?;
    let (items, total) = csrs_page(app, status, request).await?;
    Ok(page(items, request, total))
}

/// One page of stored CSRs, `pending` or `signed` only when `status` says so, and how many
/// there are.
///
/// # Errors
/// 400 for an unknown status.
pub async fn csrs_page(
    app: &App,
    status: Option<&str>,
    request: authority::PageRequest,
) -> ApiResult<(Vec<CsrView>, i64)> {
    let status = match status {
        None | Some("" | "all") => None,
        Some(word) => Some(CsrStatus::parse(word).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown status '{word}'; expected pending or signed"
            ))
        })?),
    };
    let result = app.authority.csrs(status, request).await?;
    let items = result.items.into_iter().map(CsrView::from).collect();
    Ok((items, result.total))
}

/// Stored CSRs, newest first.
#[utoipa::path(get, path = "/csrs", tag = "csrs",
    security(("session" = ["read:csrs"]), ("api_key" = ["read:csrs"])),
    params(CsrQuery, Pagination),
    responses((status = 200, description = "CSRs", body = Envelope<Vec<CsrView>>),
              (status = 400, description = "Unknown status", body = ErrorBody)))]
async fn list(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<CsrQuery>,
    ApiQuery(p): ApiQuery<Pagination>,
) -> ApiResult<Response> {
    csr_page(&app, q.status.as_deref(), p).await
}

/// Signed CSRs, most recently signed first.
#[utoipa::path(get, path = "/csrs/history", tag = "csrs",
    security(("session" = ["read:csrs"]), ("api_key" = ["read:csrs"])),
    params(Pagination),
    responses((status = 200, description = "Signed CSRs", body = Envelope<Vec<CsrView>>)))]
async fn history(State(app): State<App>, ApiQuery(p): ApiQuery<Pagination>) -> ApiResult<Response> {
    csr_page(&app, Some("signed"), p).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsrCreate {
    /// Display name; the common name when omitted.
    pub name: Option<String>,
    /// A CSR to keep (PEM). Without it, certmint makes a key and a CSR from the fields below.
    pub csr: Option<String>,
    #[serde(flatten)]
    pub subject: SubjectFields,
    /// `dns:…`, `ip:…`, `email:…`, `uri:…`.
    #[serde(default)]
    pub san: Vec<String>,
    /// RSA, EC or Ed25519; EC P-256 when omitted.
    pub key_algorithm: Option<String>,
    pub key_size: Option<u32>,
    pub curve: Option<String>,
}

fn created_csr(row: CsrRow) -> Response {
    created(CsrView::from(row), "CSR stored")
}

/// Keep a CSR given as `csr` (PEM), or make a key and a CSR here from subject fields, SANs
/// and a key type; the key stays with certmint for the certificate.
#[utoipa::path(post, path = "/csrs", tag = "csrs",
    security(("session" = ["write:csrs"]), ("api_key" = ["write:csrs"])),
    request_body = CsrCreate,
    responses((status = 201, description = "Stored", body = Envelope<CsrView>),
              (status = 422, description = "Bad CSR or fields", body = ErrorBody)))]
async fn create(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<CsrCreate>,
) -> ApiResult<Response> {
    if let Some(text) = body.csr {
        let row = app
            .authority
            .upload_csr(&principal, body.name, text.as_bytes())
            .await?;
        return Ok(created_csr(row));
    }
    let sans = body
        .san
        .iter()
        .map(|s| SubjectAltName::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(authority::Error::from)?;
    let key_type = requested_key_type(
        body.key_algorithm.as_deref(),
        body.key_size,
        body.curve.as_deref(),
    )?;
    let row = app
        .authority
        .generate_csr(
            &principal,
            body.name,
            &body.subject.to_name()?,
            &sans,
            key_type,
        )
        .await?;
    Ok(created_csr(row))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsrUpload {
    /// The CSR, PEM.
    pub pem: String,
    pub name: Option<String>,
}

/// Keep a CSR given as PEM text.
#[utoipa::path(post, path = "/csrs/upload", tag = "csrs",
    security(("session" = ["write:csrs"]), ("api_key" = ["write:csrs"])),
    request_body = CsrUpload,
    responses((status = 201, description = "Stored", body = Envelope<CsrView>),
              (status = 422, description = "Not a valid CSR", body = ErrorBody)))]
async fn upload(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<CsrUpload>,
) -> ApiResult<Response> {
    let row = app
        .authority
        .upload_csr(&principal, body.name, body.pem.as_bytes())
        .await?;
    Ok(created_csr(row))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsrImport {
    /// The CSR, PEM (JSON bodies; a multipart body sends the file, PEM or DER, as `file`).
    pub pem_content: Option<String>,
    pub name: Option<String>,
}

/// Keep a CSR from a file (multipart `file`, PEM or DER) or from JSON `pem_content`.
#[utoipa::path(post, path = "/csrs/import", tag = "csrs",
    security(("session" = ["write:csrs"]), ("api_key" = ["write:csrs"])),
    request_body(content = CsrImport, description = "JSON, or multipart/form-data with `file` and `name`"),
    responses((status = 201, description = "Stored", body = Envelope<CsrView>),
              (status = 422, description = "Not a valid CSR", body = ErrorBody)))]
async fn import(
    State(app): State<App>,
    Caller(principal): Caller,
    upload: Upload<CsrImport>,
) -> ApiResult<Response> {
    let bytes = file_or_text(upload.file, upload.fields.pem_content, "pem_content")?;
    let row = app
        .authority
        .upload_csr(&principal, upload.fields.name, &bytes)
        .await?;
    Ok(created_csr(row))
}

/// One stored CSR.
#[utoipa::path(get, path = "/csrs/{id}", tag = "csrs",
    security(("session" = ["read:csrs"]), ("api_key" = ["read:csrs"])),
    params(("id" = i64, Path, description = "CSR id")),
    responses((status = 200, description = "CSR", body = Envelope<CsrView>),
              (status = 404, description = "No such CSR", body = ErrorBody)))]
async fn get(State(app): State<App>, Id(id): Id) -> ApiResult<Response> {
    Ok(ok(CsrView::from(app.authority.csr(CsrId(id)).await?)))
}

/// Delete a stored CSR (and its key, unless its certificate uses it).
#[utoipa::path(delete, path = "/csrs/{id}", tag = "csrs",
    security(("session" = ["delete:csrs"]), ("api_key" = ["delete:csrs"])),
    params(("id" = i64, Path, description = "CSR id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such CSR", body = ErrorBody)))]
async fn delete(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.delete_csr(&principal, CsrId(id)).await?;
    Ok(no_content())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CsrSign {
    /// The issuing CA; the default CA when omitted.
    pub ca_id: Option<i64>,
    /// Days; the template's, or 365, when omitted.
    pub validity_days: Option<i64>,
    /// The template the request is held to.
    pub template_id: Option<i64>,
}

/// Sign a pending CSR: subject and SANs are the CSR's, held to the template's rules.
#[utoipa::path(post, path = "/csrs/{id}/sign", tag = "csrs",
    security(("session" = ["write:certificates"]), ("api_key" = ["write:certificates"])),
    params(("id" = i64, Path, description = "CSR id")),
    request_body = CsrSign,
    responses((status = 201, description = "Signed", body = Envelope<CertificateView>),
              (status = 404, description = "No such CSR", body = ErrorBody),
              (status = 409, description = "Signed already", body = ErrorBody),
              (status = 422, description = "The template or CA does not allow it", body = ErrorBody)))]
async fn sign(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<CsrSign>,
) -> ApiResult<Response> {
    Ok(created(
        sign_csr(&app, &principal, id, body).await?,
        "CSR signed",
    ))
}

/// Signs pending CSR `id` as `body` asks, and the certificate made.
///
/// # Errors
/// As [`authority::Authority::sign_csr`].
pub async fn sign_csr(
    app: &App,
    principal: &authority::Principal,
    id: i64,
    body: CsrSign,
) -> ApiResult<CertificateView> {
    let issued = app
        .authority
        .sign_csr(
            principal,
            CsrId(id),
            SignCsr {
                ca_id: body.ca_id.map(CaId),
                validity_days: body.validity_days,
                template_id: body.template_id.map(TemplateId),
            },
        )
        .await?;
    Ok(CertificateView::new(
        issued.certificate,
        app.authority.now(),
    ))
}

/// Download the CSR as PEM.
#[utoipa::path(get, path = "/csrs/{id}/export", tag = "csrs",
    security(("session" = ["read:csrs"]), ("api_key" = ["read:csrs"])),
    params(("id" = i64, Path, description = "CSR id")),
    responses((status = 200, description = "The PEM file"),
              (status = 404, description = "No such CSR", body = ErrorBody)))]
async fn export(State(app): State<App>, Id(id): Id) -> ApiResult<Response> {
    let csr = app.authority.csr(CsrId(id)).await?;
    Ok(attachment(
        "application/pkcs10",
        &format!("{}.csr", csr.name),
        pem::encode("CERTIFICATE REQUEST", &csr.der).into_bytes(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsrKey {
    /// The private key, PEM (PKCS#8, encrypted PKCS#8, PKCS#1 or SEC1).
    pub key: String,
    /// For an encrypted key.
    pub passphrase: Option<String>,
}

/// Give certmint the CSR's private key, so the certificate can later be exported with it.
#[utoipa::path(post, path = "/csrs/{id}/key", tag = "csrs",
    security(("session" = ["write:csrs"]), ("api_key" = ["write:csrs"])),
    params(("id" = i64, Path, description = "CSR id")),
    request_body = CsrKey,
    responses((status = 200, description = "Key stored", body = Envelope<CsrView>),
              (status = 404, description = "No such CSR", body = ErrorBody),
              (status = 409, description = "certmint has its key already", body = ErrorBody),
              (status = 422, description = "Not its key, or unreadable", body = ErrorBody)))]
async fn private_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<CsrKey>,
) -> ApiResult<Response> {
    let row = app
        .authority
        .set_csr_key(
            &principal,
            CsrId(id),
            body.key.as_bytes(),
            body.passphrase.as_deref(),
        )
        .await?;
    Ok(ok(CsrView::from(row)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsrBulkSign {
    pub ids: Vec<i64>,
    pub ca_id: Option<i64>,
    pub validity_days: Option<i64>,
    pub template_id: Option<i64>,
}

/// Sign several pending CSRs with the same CA, validity and template.
#[utoipa::path(post, path = "/csrs/bulk/sign", tag = "csrs",
    security(("session" = ["write:certificates"]), ("api_key" = ["write:certificates"])),
    request_body = CsrBulkSign,
    responses((status = 200, description = "What was signed", body = Envelope<BulkResult>),
              (status = 422, description = "No ids, too many, or repeated", body = ErrorBody)))]
async fn bulk_sign(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<CsrBulkSign>,
) -> ApiResult<Response> {
    let how = SignCsr {
        ca_id: body.ca_id.map(CaId),
        validity_days: body.validity_days,
        template_id: body.template_id.map(TemplateId),
    };
    let result = bulk(&body.ids, |id| {
        let (app, principal, how) = (app.clone(), principal.clone(), how.clone());
        async move {
            app.authority
                .sign_csr(&principal, CsrId(id), how)
                .await
                .map(drop)
        }
    })
    .await?;
    Ok(ok(result))
}

/// Delete several CSRs.
#[utoipa::path(post, path = "/csrs/bulk/delete", tag = "csrs",
    security(("session" = ["delete:csrs"]), ("api_key" = ["delete:csrs"])),
    request_body = BulkIds,
    responses((status = 200, description = "What was deleted", body = Envelope<BulkResult>),
              (status = 422, description = "No ids, too many, or repeated", body = ErrorBody)))]
async fn bulk_delete(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<BulkIds>,
) -> ApiResult<Response> {
    let result = bulk(&body.ids, |id| {
        let (app, principal) = (app.clone(), principal.clone());
        async move { app.authority.delete_csr(&principal, CsrId(id)).await }
    })
    .await?;
    Ok(ok(result))
}
