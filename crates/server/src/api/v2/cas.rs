//! `/cas`: certificate authorities.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::import::{ImportAnswer, ImportBody};
use super::views::{
    BulkIds, BulkResult, SubjectFields, bulk, bulk_ids, nullable, requested_key_type,
};
use crate::App;
use crate::envelope::{Envelope, Pagination, attachment, created, no_content, ok, ok_with, page};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id, Upload};
use authority::RevocationSettings;
use authority::pki::cert::{NameConstraints, Subtree};
use authority::pki::{bundle, pem};
use authority::{CaId, CaKind, KeyId, KeyLocation, NewCaInput, Pointers};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(tree))
        .routes(routes!(get, update, delete))
        .routes(routes!(export))
        .routes(routes!(certificates))
        .routes(routes!(import))
        .routes(routes!(export_all))
        .routes(routes!(bulk_delete))
        .routes(routes!(bulk_export))
}

/// A CA, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaView {
    pub id: i64,
    /// Public identifier: the CA certificate downloads at `/ca/{refid}.cer`.
    pub refid: String,
    pub name: String,
    pub description: Option<String>,
    pub common_name: Option<String>,
    pub subject: String,
    pub issuer: String,
    /// root or intermediate.
    pub ca_type: String,
    /// A root (self-signed) CA, as the reference's CA object says.
    pub is_root: bool,
    /// The display name, under the reference's field name (`name` here).
    pub descr: String,
    pub parent_id: Option<i64>,
    /// Hex.
    pub serial_number: String,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    /// RSA, EC or Ed25519 with size, e.g. `EC P-256`.
    pub key_type: String,
    /// The key's size in bits: the modulus for RSA, the curve for EC, 256 for Ed25519.
    pub key_size: Option<u32>,
    pub signature_algorithm: String,
    pub path_length: Option<i64>,
    pub fingerprint_sha256: String,
    pub is_active: bool,
    /// The CA that issues when a request names none.
    pub is_default: bool,
    /// Whether certmint holds the CA's private key (and so can issue).
    pub has_private_key: bool,
    /// created, imported, or issued (a CA certificate certmint issued for a key held
    /// elsewhere: listed, chained and revocable, but it issues nothing here).
    pub source: String,
    /// Requests that name no template_id are refused.
    pub require_template: bool,
    /// Lint rules that only warn, instead of refusing, for what this CA signs (see
    /// `GET /api/v2/lint/rules`).
    pub lint_warn_only: Vec<String>,
    /// Certificates it issues carry its CRL distribution point, and it publishes CRLs.
    pub cdp_enabled: bool,
    /// Where its latest full CRL downloads.
    pub crl_url: String,
    /// Certificates it issues carry the OCSP responder's URL, which answers for it.
    pub ocsp_enabled: bool,
    pub ocsp_url: String,
    /// Certificates it issues carry the caIssuers URL (AIA).
    pub aia_ca_issuers_enabled: bool,
    pub aia_ca_issuers_url: String,
    /// A full CRL's validity (nextUpdate after thisUpdate), in hours.
    pub crl_validity_hours: i64,
    /// A new full CRL is published this many hours after the last.
    pub crl_refresh_hours: i64,
    /// Publishes delta CRLs; full CRLs then point to them (Freshest CRL).
    pub delta_crl_enabled: bool,
    pub delta_crl_url: String,
    /// A delta CRL's validity, in hours; it is republished at half of that.
    pub delta_crl_validity_hours: i64,
    /// `delegated` (a responder certificate issued for the purpose) or `ca` (the CA's key).
    pub ocsp_signer: String,
    /// An OCSP response's validity, in hours; responses are signed again at half of that.
    pub ocsp_validity_hours: i64,
    /// Certificates in the inventory that this CA issued (any state).
    pub certificates_count: i64,
}

impl CaView {
    pub fn new(
        c: authority::CaRow,
        publishing: &authority::Publishing,
        certificates_count: i64,
    ) -> Self {
        let s = c.revocation;
        Self {
            certificates_count,
            crl_url: publishing.crl_url(&c.refid),
            delta_crl_url: publishing.delta_crl_url(&c.refid),
            ocsp_url: publishing.ocsp_url(),
            aia_ca_issuers_url: publishing.ca_issuers_url(&c.refid),
            cdp_enabled: s.cdp_enabled,
            ocsp_enabled: s.ocsp_enabled,
            aia_ca_issuers_enabled: s.aia_ca_issuers_enabled,
            crl_validity_hours: s.crl_validity_hours,
            crl_refresh_hours: s.crl_refresh_hours,
            delta_crl_enabled: s.delta_crl_enabled,
            delta_crl_validity_hours: s.delta_crl_validity_hours,
            ocsp_signer: s.ocsp_signer,
            ocsp_validity_hours: s.ocsp_validity_hours,
            id: c.id.0,
            refid: c.refid,
            is_root: c.ca_type == "root",
            descr: c.name.clone(),
            name: c.name,
            description: c.description,
            common_name: c.cert.common_name,
            subject: c.cert.subject,
            issuer: c.cert.issuer,
            ca_type: c.ca_type,
            parent_id: c.parent_id.map(i64::from),
            serial_number: c.cert.serial,
            valid_from: c.cert.not_before,
            valid_until: c.cert.not_after,
            key_size: authority::pki::KeyType::from_label(&c.cert.key_type)
                .ok()
                .map(authority::pki::KeyType::bits),
            key_type: c.cert.key_type,
            signature_algorithm: c.cert.signature_algorithm,
            path_length: c.path_len,
            fingerprint_sha256: c.cert.fingerprint_sha256,
            is_active: c.is_active,
            is_default: c.is_default,
            has_private_key: c.key_id.is_some(),
            source: c.source.to_string(),
            require_template: c.require_template,
            lint_warn_only: c.lint_warn_only,
        }
    }
}

/// `ca` as the API shows it, with the number of certificates it issued.
pub async fn view(app: &App, ca: authority::CaRow) -> ApiResult<CaView> {
    let filter = authority::CertificateFilter {
        ca_id: Some(ca.id),
        ..authority::CertificateFilter::default()
    };
    let count = app
        .authority
        .reader()
        .count_certificates(&filter, app.authority.now())
        .await
        .map_err(authority::Error::from)?;
    Ok(CaView::new(ca, &app.authority.publishing(), count))
}

/// CAs, by id.
#[utoipa::path(get, path = "/cas", tag = "cas",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    params(Pagination),
    responses((status = 200, description = "CAs", body = Envelope<Vec<CaView>>)))]
async fn list(State(app): State<App>, ApiQuery(p): ApiQuery<Pagination>) -> ApiResult<Response> {
    let request = p.request()?;
    let all = app.authority.cas().await?;
    let counts = app
        .authority
        .reader()
        .certificates_per_ca()
        .await
        .map_err(authority::Error::from)?;
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let skip =
        usize::try_from(u64::from(request.page.saturating_sub(1)) * u64::from(request.per_page))
            .unwrap_or(usize::MAX);
    let items = all
        .into_iter()
        .skip(skip)
        .take(usize::try_from(request.per_page).unwrap_or(usize::MAX))
        .map(|c| {
            let count = counts.get(&c.id).copied().unwrap_or(0);
            CaView::new(c, &app.authority.publishing(), count)
        })
        .collect();
    Ok(page(items, request, total))
}

/// A CA and the CAs below it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaNode {
    pub id: i64,
    pub name: String,
    pub ca_type: String,
    pub parent_id: Option<i64>,
    #[schema(no_recursion)]
    pub children: Vec<CaNode>,
}

/// The CAs of `all` under `parent` (the top of the tree for `None`), each with its own.
pub fn subtree(all: &[authority::CaRow], parent: Option<CaId>) -> Vec<CaNode> {
    let known = |id: CaId| all.iter().any(|c| c.id == id);
    all.iter()
        // A CA whose parent certmint does not hold is shown as a top-level node.
        .filter(|c| match parent {
            Some(p) => c.parent_id == Some(p),
            None => c.parent_id.is_none_or(|p| !known(p)),
        })
        .map(|c| CaNode {
            id: c.id.0,
            name: c.name.clone(),
            ca_type: c.ca_type.clone(),
            parent_id: c.parent_id.map(i64::from),
            children: subtree(all, Some(c.id)),
        })
        .collect()
}

/// The CA hierarchy as a tree.
#[utoipa::path(get, path = "/cas/tree", tag = "cas",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    responses((status = 200, description = "CA tree", body = Envelope<Vec<CaNode>>)))]
async fn tree(State(app): State<App>) -> ApiResult<Response> {
    let all = app.authority.cas().await?;
    Ok(ok(subtree(&all, None)))
}

/// One CA.
#[utoipa::path(get, path = "/cas/{id}", tag = "cas",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    params(("id" = i64, Path, description = "CA id")),
    responses((status = 200, description = "CA", body = Envelope<CaView>),
              (status = 404, description = "No such CA", body = ErrorBody)))]
async fn get(State(app): State<App>, Id(id): Id) -> ApiResult<Response> {
    Ok(ok(view(&app, app.authority.ca(CaId(id)).await?).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaCreate {
    #[serde(flatten)]
    pub subject: SubjectFields,
    /// Display name; the common name when omitted.
    pub name: Option<String>,
    pub description: Option<String>,
    /// root (default) or intermediate.
    pub ca_type: Option<String>,
    /// The issuing CA of an intermediate.
    pub parent_id: Option<i64>,
    /// RSA, EC or Ed25519; EC when omitted.
    pub key_algorithm: Option<String>,
    /// RSA bits (2048, 3072, 4096) or EC size (256, 384).
    pub key_size: Option<u32>,
    /// EC curve: P-256 or P-384.
    pub curve: Option<String>,
    /// Days; 3650 for a root and 1825 for an intermediate when omitted.
    pub validity_days: Option<i64>,
    /// Path length constraint.
    pub path_length: Option<u8>,
    /// Make it the CA that issues when a request names none.
    #[serde(default)]
    pub is_default: bool,
    /// Refuse requests that name no template_id; true when omitted.
    pub require_template: Option<bool>,
    /// Name constraints (RFC 5280 §4.2.1.10): the names it may certify, as `dns:example.com`,
    /// `email:example.com` or `ip:10.0.0.0/8`.
    #[serde(default)]
    pub permitted_subtrees: Vec<String>,
    /// Names it may not certify, written as `permitted_subtrees`.
    #[serde(default)]
    pub excluded_subtrees: Vec<String>,
    /// Its certificates carry its CRL distribution point, and it publishes CRLs; true when
    /// omitted.
    pub cdp_enabled: Option<bool>,
    /// Its certificates carry the OCSP responder's URL, which answers for it; true when omitted.
    pub ocsp_enabled: Option<bool>,
    /// Its certificates carry the caIssuers URL (AIA); true when omitted.
    pub aia_ca_issuers_enabled: Option<bool>,
    /// Make the key in this HSM provider's token (`/api/v2/hsm/providers`), never
    /// extractable; needs `admin:system`.
    pub hsm_provider_id: Option<i64>,
    /// The key's label in the token; the CA's name when omitted.
    pub hsm_key_label: Option<String>,
    /// Use this key already in a token (`/api/v2/hsm/keys`) instead of making one; its type
    /// is the key's. Needs `admin:system`.
    pub hsm_key_id: Option<i64>,
}

/// Create a root or an intermediate CA with a new key.
#[utoipa::path(post, path = "/cas", tag = "cas",
    security(("session" = ["write:cas"]), ("api_key" = ["write:cas"])),
    request_body = CaCreate,
    responses((status = 201, description = "Created", body = Envelope<CaView>),
              (status = 409, description = "The name is taken", body = ErrorBody),
              (status = 422, description = "A field breaks a rule", body = ErrorBody)))]
async fn create(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<CaCreate>,
) -> ApiResult<Response> {
    let ca = create_ca(&app, &principal, body).await?;
    let message = format!("CA '{}' created", ca.name);
    Ok(created(ca, message))
}

/// Creates the CA `body` asks for; the console's form sends the same request.
pub async fn create_ca(
    app: &App,
    principal: &authority::Principal,
    body: CaCreate,
) -> ApiResult<CaView> {
    let subtrees = |names: &[String]| {
        names
            .iter()
            .map(|n| Subtree::parse(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(authority::Error::from)
    };
    let permitted = subtrees(&body.permitted_subtrees)?;
    let excluded = subtrees(&body.excluded_subtrees)?;
    let name_constraints =
        (!permitted.is_empty() || !excluded.is_empty()).then_some(NameConstraints {
            permitted,
            excluded,
        });
    let kind = CaKind::parse(body.ca_type.as_deref().unwrap_or("root"))?;
    let key_type = requested_key_type(
        body.key_algorithm.as_deref(),
        body.key_size,
        body.curve.as_deref(),
    )?;
    let key_location = match (body.hsm_provider_id, body.hsm_key_id) {
        (None, None) => KeyLocation::Software,
        (Some(provider_id), None) => KeyLocation::HsmProvider {
            provider_id,
            label: body.hsm_key_label,
        },
        (None, Some(id)) => KeyLocation::HsmKey(KeyId(id)),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "give hsm_provider_id (a new key in the token) or hsm_key_id (a key there), not \
                 both",
            ));
        }
    };
    let ca = app
        .authority
        .create_ca(
            principal,
            NewCaInput {
                key_location,
                name: body.name,
                description: body.description,
                subject: body.subject.to_name()?,
                kind,
                parent_id: body.parent_id.map(CaId),
                key_type,
                validity_days: body.validity_days.unwrap_or(match kind {
                    CaKind::Root => 3650,
                    CaKind::Intermediate => 1825,
                }),
                path_len: body.path_length,
                name_constraints,
                make_default: body.is_default,
                require_template: body.require_template.unwrap_or(true),
                pointers: Pointers {
                    cdp: body.cdp_enabled.unwrap_or(true),
                    ocsp: body.ocsp_enabled.unwrap_or(true),
                    aia_ca_issuers: body.aia_ca_issuers_enabled.unwrap_or(true),
                },
            },
        )
        .await?;
    view(app, ca).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CaExportQuery {
    /// pem (default), der, or chain (this CA and those above it, PEM).
    pub format: Option<String>,
}

/// Download a CA certificate.
#[utoipa::path(get, path = "/cas/{id}/export", tag = "cas",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    params(("id" = i64, Path, description = "CA id"), CaExportQuery),
    responses((status = 200, description = "The certificate"),
              (status = 404, description = "No such CA", body = ErrorBody),
              (status = 422, description = "Unknown format", body = ErrorBody)))]
async fn export(
    State(app): State<App>,
    Id(id): Id,
    ApiQuery(q): ApiQuery<CaExportQuery>,
) -> ApiResult<Response> {
    let (content_type, body) = ca_file(&app, CaId(id), q.format.as_deref()).await?;
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// CA `id`'s certificate in `format` (pem when `None`), and its content type.
pub async fn ca_file(
    app: &App,
    id: CaId,
    format: Option<&str>,
) -> ApiResult<(&'static str, Vec<u8>)> {
    let ca = app.authority.ca(id).await?;
    Ok(match format.unwrap_or("pem") {
        "pem" => (
            "application/x-pem-file",
            pem::encode("CERTIFICATE", &ca.cert.der).into_bytes(),
        ),
        "der" | "cer" => ("application/pkix-cert", ca.cert.der),
        "chain" => {
            let chain = app.authority.ca_chain(id).await?;
            let chain: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
            (
                "application/x-pem-file",
                bundle::certificates_pem(&chain).into_bytes(),
            )
        }
        other => {
            return Err(ApiError::invalid(format!(
                "unknown format '{other}'; expected pem, der or chain"
            )));
        }
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// Inactive CAs issue nothing.
    pub is_active: Option<bool>,
    /// Make it the CA that issues when a request names none.
    pub is_default: Option<bool>,
    /// Refuse requests that name no template_id.
    pub require_template: Option<bool>,
    /// Lint rules that only warn for what this CA signs, the whole list (`[]`: every rule
    /// refuses, the default).
    pub lint_warn_only: Option<Vec<String>>,
    pub cdp_enabled: Option<bool>,
    pub ocsp_enabled: Option<bool>,
    pub aia_ca_issuers_enabled: Option<bool>,
    /// Hours, 1 to 8760 (a year); more than `crl_refresh_hours`.
    pub crl_validity_hours: Option<i64>,
    /// Hours, at least 1.
    pub crl_refresh_hours: Option<i64>,
    pub delta_crl_enabled: Option<bool>,
    /// Hours, 1 to `crl_validity_hours`.
    pub delta_crl_validity_hours: Option<i64>,
    /// `delegated` or `ca`.
    pub ocsp_signer: Option<String>,
    /// Hours, 1 to 168 (a week).
    pub ocsp_validity_hours: Option<i64>,
}

impl CaPatch {
    /// The CA's revocation settings with this patch applied, or `None` when it changes none.
    fn revocation(&self, before: &RevocationSettings) -> Option<RevocationSettings> {
        let unchanged = self.cdp_enabled.is_none()
            && self.ocsp_enabled.is_none()
            && self.aia_ca_issuers_enabled.is_none()
            && self.crl_validity_hours.is_none()
            && self.crl_refresh_hours.is_none()
            && self.delta_crl_enabled.is_none()
            && self.delta_crl_validity_hours.is_none()
            && self.ocsp_signer.is_none()
            && self.ocsp_validity_hours.is_none();
        (!unchanged).then(|| RevocationSettings {
            cdp_enabled: self.cdp_enabled.unwrap_or(before.cdp_enabled),
            ocsp_enabled: self.ocsp_enabled.unwrap_or(before.ocsp_enabled),
            aia_ca_issuers_enabled: self
                .aia_ca_issuers_enabled
                .unwrap_or(before.aia_ca_issuers_enabled),
            crl_validity_hours: self.crl_validity_hours.unwrap_or(before.crl_validity_hours),
            crl_refresh_hours: self.crl_refresh_hours.unwrap_or(before.crl_refresh_hours),
            delta_crl_enabled: self.delta_crl_enabled.unwrap_or(before.delta_crl_enabled),
            delta_crl_validity_hours: self
                .delta_crl_validity_hours
                .unwrap_or(before.delta_crl_validity_hours),
            ocsp_signer: self
                .ocsp_signer
                .clone()
                .unwrap_or_else(|| before.ocsp_signer.clone()),
            ocsp_validity_hours: self
                .ocsp_validity_hours
                .unwrap_or(before.ocsp_validity_hours),
        })
    }
}

/// Rename, describe, activate or deactivate a CA, make it the default, require a template of
/// its requests or not, downgrade lint rules to warnings, or change how it publishes revocation (CRL and OCSP settings, AIA and
/// CDP toggles).
#[utoipa::path(method(patch, put), path = "/cas/{id}", tag = "cas",
    security(("session" = ["write:cas"]), ("api_key" = ["write:cas"])),
    params(("id" = i64, Path, description = "CA id")),
    request_body = CaPatch,
    responses((status = 200, description = "Updated", body = Envelope<CaView>),
              (status = 404, description = "No such CA", body = ErrorBody),
              (status = 409, description = "The name is taken", body = ErrorBody)))]
async fn update(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<CaPatch>,
) -> ApiResult<Response> {
    let before = app.authority.ca(CaId(id)).await?;
    let revocation = body.revocation(&before.revocation);
    let ca = app
        .authority
        .update_ca(
            &principal,
            CaId(id),
            authority::CaUpdate {
                name: body.name.map(|n| n.trim().to_owned()),
                description: body.description,
                is_active: body.is_active,
                is_default: body.is_default,
                require_template: body.require_template,
                lint_warn_only: body.lint_warn_only,
                revocation,
            },
        )
        .await?;
    Ok(ok_with(view(&app, ca).await?, "CA updated"))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Delete even while certificates it issued are still valid.
    pub force: bool,
}

/// Delete a CA and its key: 409 while certificates it issued are still valid, unless
/// `force=true`.
#[utoipa::path(delete, path = "/cas/{id}", tag = "cas",
    security(("session" = ["delete:cas"]), ("api_key" = ["delete:cas"])),
    params(("id" = i64, Path, description = "CA id"), DeleteQuery),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such CA", body = ErrorBody),
              (status = 409, description = "It has valid certificates", body = ErrorBody)))]
async fn delete(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<Response> {
    app.authority
        .delete_ca(&principal, CaId(id), q.force)
        .await?;
    Ok(no_content())
}

/// The certificates a CA issued, with the inventory's filters.
#[utoipa::path(get, path = "/cas/{id}/certificates", tag = "cas",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(("id" = i64, Path, description = "CA id"), super::certificates::CertificateQuery, Pagination),
    responses((status = 200, description = "Certificates", body = Envelope<Vec<super::certificates::CertificateView>>),
              (status = 404, description = "No such CA", body = ErrorBody)))]
async fn certificates(
    State(app): State<App>,
    Id(id): Id,
    ApiQuery(q): ApiQuery<super::certificates::CertificateQuery>,
    ApiQuery(p): ApiQuery<Pagination>,
) -> ApiResult<Response> {
    app.authority.ca(CaId(id)).await?;
    let q = super::certificates::CertificateQuery {
        ca_id: Some(id),
        ..q
    };
    super::certificates::list_page(&app, q, p).await
}

/// Import CA certificates (PEM, DER, PKCS#7, PKCS#12), with their keys if given: with its key
/// a CA can issue here. Each is linked to its parent when certmint has it.
#[utoipa::path(post, path = "/cas/import", tag = "cas",
    security(("session" = ["write:cas"]), ("api_key" = ["write:cas"])),
    request_body(content = ImportBody, description = "JSON, or multipart/form-data with `file`, `password`, `private_key`, `name`, `description`, `ca_id`, `import_key`"),
    responses((status = 201, description = "Imported: the certificate or CA when the file held one certificate, otherwise what was stored and skipped", body = Envelope<ImportAnswer>),
              (status = 409, description = "The file's one certificate is stored already", body = ErrorBody),
              (status = 422, description = "Unreadable file, wrong password, not a CA, or not issued by ca_id", body = ErrorBody)))]
async fn import(
    State(app): State<App>,
    Caller(principal): Caller,
    upload: Upload<ImportBody>,
) -> ApiResult<Response> {
    super::import::run(&app, &principal, upload, true).await
}

/// Download every CA certificate as one PEM file.
#[utoipa::path(get, path = "/cas/export", tag = "cas",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    responses((status = 200, description = "The PEM file")))]
async fn export_all(State(app): State<App>) -> ApiResult<Response> {
    let cas = app.authority.cas().await?;
    let ders: Vec<&[u8]> = cas.iter().map(|c| c.cert.der.as_slice()).collect();
    Ok(attachment(
        "application/x-pem-file",
        "cas.pem",
        bundle::certificates_pem(&ders).into_bytes(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaBulkDelete {
    pub ids: Vec<i64>,
    /// Delete even CAs whose certificates are still valid.
    #[serde(default)]
    pub force: bool,
}

/// Delete several CAs and their keys; without `force`, those with valid certificates fail.
#[utoipa::path(post, path = "/cas/bulk/delete", tag = "cas",
    security(("session" = ["delete:cas"]), ("api_key" = ["delete:cas"])),
    request_body = CaBulkDelete,
    responses((status = 200, description = "What was deleted", body = Envelope<BulkResult>),
              (status = 422, description = "Bad ids", body = ErrorBody)))]
async fn bulk_delete(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<CaBulkDelete>,
) -> ApiResult<Response> {
    let result = bulk(&body.ids, |id| {
        let (app, principal) = (app.clone(), principal.clone());
        async move {
            app.authority
                .delete_ca(&principal, CaId(id), body.force)
                .await
        }
    })
    .await?;
    Ok(ok(result))
}

/// Download several CA certificates as a ZIP of PEM files (`{id}-{name}.pem`).
#[utoipa::path(post, path = "/cas/bulk/export", tag = "cas",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    request_body = BulkIds,
    responses((status = 200, description = "The ZIP file"),
              (status = 404, description = "An id names no CA", body = ErrorBody),
              (status = 422, description = "Bad ids", body = ErrorBody)))]
async fn bulk_export(
    State(app): State<App>,
    ApiJson(body): ApiJson<BulkIds>,
) -> ApiResult<Response> {
    bulk_ids(&body.ids)?;
    let mut files = Vec::with_capacity(body.ids.len());
    for id in &body.ids {
        let ca = app.authority.ca(CaId(*id)).await?;
        files.push((
            format!("{}-{}.pem", ca.id, ca.name),
            pem::encode("CERTIFICATE", &ca.cert.der).into_bytes(),
        ));
    }
    Ok(attachment(
        "application/zip",
        "cas.zip",
        crate::archive::zip(&files)?,
    ))
}
