//! Login certificates (mTLS): one's own under `/account/mtls`, everyone's under
//! `/user-certificates` for those who hold the `*:user_certificates` permissions (others see
//! their own there too). Path ids are the login certificate's, not the inventory's.

use authority::pki::{bundle, pem};
use authority::{LoginKey, MtlsChange, Permission, Reach, RevocationReason};
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::certificates::{ExportQuery, certificate_file, export_needs_key};
use super::views::nullable;
use crate::App;
use crate::envelope::{Envelope, Pagination, created, no_content, ok, ok_with, page};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(settings, update_settings))
        .routes(routes!(own_list))
        .routes(routes!(all_list))
        .routes(routes!(create))
        .routes(routes!(enroll))
        .routes(routes!(own_download))
        .routes(routes!(own_enable))
        .routes(routes!(own_revoke))
        .routes(routes!(own_delete))
        .routes(routes!(list))
        .routes(routes!(stats))
        .routes(routes!(get, delete))
        .routes(routes!(export))
        .routes(routes!(revoke))
}

/// How certificate login works on this server.
#[derive(Debug, Serialize, ToSchema)]
pub struct MtlsSettingsView {
    /// Whether client certificates log in.
    pub enabled: bool,
    /// The CA that issues login certificates.
    pub issuing_ca_id: Option<i64>,
    /// Further CAs whose certificates log in.
    pub trusted_ca_ids: Vec<i64>,
    /// Whether a certificate without a link logs in the one enabled user its e-mail SAN names.
    pub map_by_email: bool,
    /// How long new login certificates are valid.
    pub validity_days: i64,
    /// The template login certificates are issued from (needed when the issuing CA requires
    /// one).
    pub template_id: Option<i64>,
}

impl From<authority::MtlsSettings> for MtlsSettingsView {
    fn from(s: authority::MtlsSettings) -> Self {
        Self {
            enabled: s.enabled,
            issuing_ca_id: s.issuing_ca_id,
            trusted_ca_ids: s.trusted_ca_ids,
            map_by_email: s.map_by_email,
            validity_days: s.validity_days,
            template_id: s.template_id,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MtlsSettingsInput {
    pub enabled: Option<bool>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub issuing_ca_id: Option<Option<i64>>,
    pub trusted_ca_ids: Option<Vec<i64>>,
    pub map_by_email: Option<bool>,
    pub validity_days: Option<i64>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub template_id: Option<Option<i64>>,
}

/// A login certificate: the link to its user and the certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginCertificateView {
    /// The login certificate's id (the path id of these routes).
    pub id: i64,
    /// The certificate's id in the inventory.
    pub cert_id: i64,
    /// What its user calls it.
    pub name: String,
    /// Whether it may log in.
    pub enabled: bool,
    pub user_id: i64,
    pub username: String,
    pub common_name: Option<String>,
    pub cn: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub serial_number: String,
    pub fingerprint: String,
    pub key_algorithm: String,
    pub signature_algorithm: String,
    /// valid, expired or revoked.
    pub status: String,
    pub days_remaining: i64,
    /// Whether certmint holds its key (for its owner to download).
    pub has_private_key: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_valid_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_valid_after: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub revocation_reason: Option<String>,
}

impl LoginCertificateView {
    fn new(row: authority::UserCertificateRow, now: OffsetDateTime) -> Self {
        let c = row.certificate;
        let status = match authority::CertificateState::of(c.status, c.cert.not_after, now) {
            authority::CertificateState::Revoked => "revoked",
            authority::CertificateState::Expired => "expired",
            _ => "valid",
        };
        Self {
            id: row.id,
            cert_id: c.id.0,
            name: row.name,
            enabled: row.enabled,
            user_id: row.user_id,
            username: row.username,
            cn: c.cert.common_name.clone(),
            common_name: c.cert.common_name,
            subject: c.cert.subject,
            issuer: c.cert.issuer,
            serial_number: c.cert.serial,
            fingerprint: c.cert.fingerprint_sha256,
            key_algorithm: c.cert.key_type,
            signature_algorithm: c.cert.signature_algorithm,
            status: status.into(),
            days_remaining: (c.cert.not_after - now).whole_days().max(0),
            has_private_key: c.key_id.is_some(),
            created_at: row.created_at,
            not_valid_before: c.cert.not_before,
            not_valid_after: c.cert.not_after,
            last_used_at: row.last_used_at,
            revoked_at: c.revoked_at,
            revocation_reason: c.revocation_reason.as_deref().map(RevocationReason::shown),
        }
    }
}

/// A login certificate just made: the certificate, its issuers, and the key certmint
/// generated (shown this once; certmint keeps it sealed for its owner).
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedLoginCertificateView {
    pub certificate: LoginCertificateView,
    pub certificate_pem: String,
    /// The issuing CAs, PEM, nearest first.
    pub chain_pem: String,
    /// PKCS#8 PEM, when certmint generated the key.
    pub private_key_pem: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInput {
    /// What to call it ("My laptop").
    pub name: String,
    /// At most the settings' `validity_days`, which is the default.
    pub validity_days: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollInput {
    pub name: String,
    /// A PKCS#10 CSR, PEM; its key becomes the certificate's. Its subject and extensions are
    /// not used: the certificate is named after the account.
    pub csr: String,
    pub validity_days: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableInput {
    pub enabled: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeInput {
    /// unspecified (default), key_compromise, affiliation_changed, superseded,
    /// cessation_of_operation…
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// valid, expired or revoked.
    pub status: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

impl StatusQuery {
    fn state(&self) -> ApiResult<Option<authority::CertificateState>> {
        Ok(match self.status.as_deref() {
            None | Some("" | "all") => None,
            Some("valid") => Some(authority::CertificateState::Active),
            Some("expired") => Some(authority::CertificateState::Expired),
            Some("revoked") => Some(authority::CertificateState::Revoked),
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "unknown status '{other}'; expected valid, expired or revoked"
                )));
            }
        })
    }

    fn pagination(&self) -> Pagination {
        let default = Pagination::default();
        Pagination {
            page: self.page.unwrap_or(default.page),
            per_page: self.per_page.unwrap_or(default.per_page),
            cursor: None,
        }
    }
}

/// Everyone may read how certificate login works, to know whether to offer it.
#[utoipa::path(get, path = "/account/mtls/settings", tag = "account",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "The settings", body = Envelope<MtlsSettingsView>)))]
async fn settings(State(app): State<App>) -> ApiResult<Response> {
    Ok(ok(MtlsSettingsView::from(
        app.authority.mtls_settings().await?,
    )))
}

/// Change how certificate login works: turn it on, name the CA that issues login certificates
/// and further CAs whose certificates log in, allow e-mail mapping, set the validity.
/// Audited.
#[utoipa::path(put, path = "/account/mtls/settings", tag = "account",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = MtlsSettingsInput,
    responses((status = 200, description = "The settings now", body = Envelope<MtlsSettingsView>),
              (status = 422, description = "Unknown CA, a CA without its key, no CA, a validity out of range", body = ErrorBody)))]
async fn update_settings(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<MtlsSettingsInput>,
) -> ApiResult<Response> {
    let change = MtlsChange {
        enabled: body.enabled,
        issuing_ca_id: body.issuing_ca_id,
        trusted_ca_ids: body.trusted_ca_ids,
        map_by_email: body.map_by_email,
        validity_days: body.validity_days,
        template_id: body.template_id,
    };
    let after = app
        .authority
        .update_mtls_settings(&principal, change)
        .await?;
    Ok(ok_with(
        MtlsSettingsView::from(after),
        "mTLS settings saved",
    ))
}

async fn listed(
    app: &App,
    principal: &authority::Principal,
    reach: Reach,
    q: &StatusQuery,
) -> ApiResult<Response> {
    let request = q.pagination().request()?;
    let found = app
        .authority
        .login_certificates(principal, reach, q.state()?, request)
        .await?;
    let now = app.authority.now();
    let items: Vec<LoginCertificateView> = found
        .items
        .into_iter()
        .map(|row| LoginCertificateView::new(row, now))
        .collect();
    Ok(page(items, request, found.total))
}

/// One's own login certificates, newest first.
#[utoipa::path(get, path = "/account/mtls/certificates", tag = "account",
    security(("session" = []), ("api_key" = [])),
    params(StatusQuery),
    responses((status = 200, description = "Login certificates", body = Envelope<Vec<LoginCertificateView>>)))]
async fn own_list(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> ApiResult<Response> {
    listed(&app, &principal, Reach::Own, &q).await
}

/// Everyone's login certificates, newest first.
#[utoipa::path(get, path = "/account/mtls/certificates/all", tag = "account",
    security(("session" = ["read:user_certificates"]), ("api_key" = ["read:user_certificates"])),
    params(StatusQuery),
    responses((status = 200, description = "Login certificates", body = Envelope<Vec<LoginCertificateView>>)))]
async fn all_list(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> ApiResult<Response> {
    listed(
        &app,
        &principal,
        Reach::Anyone(Permission::ReadUserCertificates),
        &q,
    )
    .await
}

async fn made(
    app: &App,
    principal: &authority::Principal,
    name: &str,
    validity_days: Option<i64>,
    key: LoginKey,
) -> ApiResult<Response> {
    let new = app
        .authority
        .create_login_certificate(principal, name, validity_days, key)
        .await?;
    let chain = match new.certificate.certificate.ca_id {
        Some(ca) => app.authority.ca_chain(ca).await?,
        None => Vec::new(),
    };
    let chain: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let view = IssuedLoginCertificateView {
        certificate_pem: pem::encode("CERTIFICATE", &new.certificate.certificate.cert.der),
        chain_pem: bundle::certificates_pem(&chain),
        private_key_pem: new.key.map(|k| k.to_pkcs8_pem().to_string()),
        certificate: LoginCertificateView::new(new.certificate, app.authority.now()),
    };
    Ok(created(view, "Login certificate created"))
}

/// Make a login certificate: certmint generates its key (EC P-256) and signs it with the
/// issuing CA, named after the account, for client authentication. The answer carries the key,
/// shown this once (certmint keeps it sealed, for its owner to download). Needs a login
/// session: an API key cannot make a credential that logs in.
#[utoipa::path(post, path = "/account/mtls/certificates/create", tag = "account",
    security(("session" = [])),
    request_body = CreateInput,
    responses((status = 201, description = "The certificate and its key", body = Envelope<IssuedLoginCertificateView>),
              (status = 403, description = "Not a login session", body = ErrorBody),
              (status = 409, description = "Certificate login is off or has no issuing CA", body = ErrorBody),
              (status = 422, description = "Bad name or validity", body = ErrorBody)))]
async fn create(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<CreateInput>,
) -> ApiResult<Response> {
    made(
        &app,
        &principal,
        &body.name,
        body.validity_days,
        LoginKey::Generate(None),
    )
    .await
}

/// Get a login certificate for a key one holds: the CSR proves it; the certificate is named
/// after the account whatever the CSR asks. Needs a login session.
#[utoipa::path(post, path = "/account/mtls/certificates/enroll", tag = "account",
    security(("session" = [])),
    request_body = EnrollInput,
    responses((status = 201, description = "The certificate", body = Envelope<IssuedLoginCertificateView>),
              (status = 400, description = "A CSR that does not read or verify", body = ErrorBody),
              (status = 403, description = "Not a login session", body = ErrorBody),
              (status = 409, description = "Certificate login is off or has no issuing CA", body = ErrorBody),
              (status = 422, description = "Bad name or validity", body = ErrorBody)))]
async fn enroll(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<EnrollInput>,
) -> ApiResult<Response> {
    made(
        &app,
        &principal,
        &body.name,
        body.validity_days,
        LoginKey::Csr(body.csr.into_bytes()),
    )
    .await
}

/// The file of login certificate `id` as `q` asks for. A format holding the key (pem with
/// include_key, pkcs12) is for the certificate's owner only, in a login session.
pub(crate) async fn file(
    app: &App,
    principal: &authority::Principal,
    id: i64,
    reach: Reach,
    q: ExportQuery,
) -> ApiResult<Response> {
    let (row, key) = if export_needs_key(&q)? {
        let (row, key) = app
            .authority
            .login_certificate_key(principal, id, reach)
            .await?;
        (row, Some(key))
    } else {
        (
            app.authority
                .login_certificate(principal, id, reach)
                .await?,
            None,
        )
    };
    certificate_file(app, &row.certificate, q, key).await
}

/// Download one's own login certificate: pem (with `include_key` and `include_chain`), der,
/// chain, pkcs7, or pkcs12 (with `password`). The key needs a login session.
#[utoipa::path(get, path = "/account/mtls/certificates/{cert_id}/download", tag = "account",
    security(("session" = []), ("api_key" = [])),
    params(("cert_id" = i64, Path, description = "Login certificate id"), ExportQuery),
    responses((status = 200, description = "The file"),
              (status = 403, description = "The key, asked for with an API key", body = ErrorBody),
              (status = 404, description = "No such login certificate of one's own", body = ErrorBody),
              (status = 422, description = "Unknown format or a missing password", body = ErrorBody)))]
async fn own_download(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    file(&app, &principal, id, Reach::Own, q).await
}

async fn enabled(
    app: &App,
    principal: &authority::Principal,
    id: i64,
    on: bool,
    reach: Reach,
) -> ApiResult<Response> {
    let row = app
        .authority
        .enable_login_certificate(principal, id, on, reach)
        .await?;
    Ok(ok_with(
        LoginCertificateView::new(row, app.authority.now()),
        if on {
            "Login certificate enabled"
        } else {
            "Login certificate disabled"
        },
    ))
}

/// Let one's own login certificate log in, or not. Needs a login session.
#[utoipa::path(post, path = "/account/mtls/certificates/{cert_id}/enable", tag = "account",
    security(("session" = [])),
    params(("cert_id" = i64, Path, description = "Login certificate id")),
    request_body = EnableInput,
    responses((status = 200, description = "The login certificate", body = Envelope<LoginCertificateView>),
              (status = 404, description = "No such login certificate of one's own", body = ErrorBody)))]
async fn own_enable(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<EnableInput>,
) -> ApiResult<Response> {
    enabled(&app, &principal, id, body.enabled, Reach::Own).await
}

async fn revoked(
    app: &App,
    principal: &authority::Principal,
    id: i64,
    body: RevokeInput,
    reach: Reach,
) -> ApiResult<Response> {
    let reason = match body.reason.as_deref() {
        None | Some("") => RevocationReason::Unspecified,
        Some(text) => RevocationReason::parse(text)?,
    };
    let row = app
        .authority
        .revoke_login_certificate(principal, id, reason, reach)
        .await?;
    Ok(ok_with(
        LoginCertificateView::new(row, app.authority.now()),
        "Certificate revoked successfully",
    ))
}

/// Revoke one's own login certificate: CRL and OCSP show it, and it no longer logs in.
#[utoipa::path(post, path = "/account/mtls/certificates/{cert_id}/revoke", tag = "account",
    security(("session" = []), ("api_key" = [])),
    params(("cert_id" = i64, Path, description = "Login certificate id")),
    request_body = RevokeInput,
    responses((status = 200, description = "Revoked", body = Envelope<LoginCertificateView>),
              (status = 404, description = "No such login certificate of one's own", body = ErrorBody),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
async fn own_revoke(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<RevokeInput>,
) -> ApiResult<Response> {
    revoked(&app, &principal, id, body, Reach::Own).await
}

/// Delete one's own login certificate: revoked (cessation of operation) if still valid, and
/// unlinked; the certificate stays in the inventory.
#[utoipa::path(delete, path = "/account/mtls/certificates/{cert_id}", tag = "account",
    security(("session" = []), ("api_key" = [])),
    params(("cert_id" = i64, Path, description = "Login certificate id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such login certificate of one's own", body = ErrorBody)))]
async fn own_delete(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority
        .delete_login_certificate(&principal, id, Reach::Own)
        .await?;
    Ok(no_content())
}

/// Login certificates, newest first: everyone's with `read:user_certificates`, one's own
/// otherwise.
#[utoipa::path(get, path = "/user-certificates", tag = "user-certificates",
    security(("session" = []), ("api_key" = [])),
    params(StatusQuery),
    responses((status = 200, description = "Login certificates", body = Envelope<Vec<LoginCertificateView>>),
              (status = 422, description = "Unknown status", body = ErrorBody)))]
async fn list(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> ApiResult<Response> {
    listed(
        &app,
        &principal,
        Reach::Anyone(Permission::ReadUserCertificates),
        &q,
    )
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    pub total: i64,
    pub valid: i64,
    pub expired: i64,
    pub revoked: i64,
    /// Valid and expiring within 30 days.
    pub expiring_soon: i64,
}

/// How many login certificates are in each state: everyone's with
/// `read:user_certificates`, one's own otherwise.
#[utoipa::path(get, path = "/user-certificates/stats", tag = "user-certificates",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Counts", body = Envelope<StatsView>)))]
async fn stats(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let s = app
        .authority
        .login_certificate_stats(&principal, Reach::Anyone(Permission::ReadUserCertificates))
        .await?;
    Ok(ok(StatsView {
        total: s.total,
        valid: s.valid,
        expired: s.expired,
        revoked: s.revoked,
        expiring_soon: s.expiring_soon,
    }))
}

/// One login certificate: anyone's with `read:user_certificates`, one's own otherwise.
#[utoipa::path(get, path = "/user-certificates/{id}", tag = "user-certificates",
    security(("session" = []), ("api_key" = [])),
    params(("id" = i64, Path, description = "Login certificate id")),
    responses((status = 200, description = "The login certificate", body = Envelope<LoginCertificateView>),
              (status = 404, description = "No such login certificate in reach", body = ErrorBody)))]
async fn get(State(app): State<App>, Caller(principal): Caller, Id(id): Id) -> ApiResult<Response> {
    let row = app
        .authority
        .login_certificate(
            &principal,
            id,
            Reach::Anyone(Permission::ReadUserCertificates),
        )
        .await?;
    Ok(ok(LoginCertificateView::new(row, app.authority.now())))
}

/// Download a login certificate: anyone's with `read:user_certificates`, one's own otherwise.
/// Its key (pem with `include_key`, pkcs12) goes to its owner only, whatever permissions others
/// hold: whoever holds it logs in as its owner.
#[utoipa::path(get, path = "/user-certificates/{id}/export", tag = "user-certificates",
    security(("session" = []), ("api_key" = [])),
    params(("id" = i64, Path, description = "Login certificate id"), ExportQuery),
    responses((status = 200, description = "The file"),
              (status = 403, description = "The key of someone else's certificate, or asked for with an API key", body = ErrorBody),
              (status = 404, description = "No such login certificate in reach", body = ErrorBody),
              (status = 422, description = "Unknown format or a missing password", body = ErrorBody)))]
async fn export(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    file(
        &app,
        &principal,
        id,
        Reach::Anyone(Permission::ReadUserCertificates),
        q,
    )
    .await
}

/// Revoke a login certificate: anyone's with `write:user_certificates`, one's own otherwise.
#[utoipa::path(post, path = "/user-certificates/{id}/revoke", tag = "user-certificates",
    security(("session" = []), ("api_key" = [])),
    params(("id" = i64, Path, description = "Login certificate id")),
    request_body = RevokeInput,
    responses((status = 200, description = "Revoked", body = Envelope<LoginCertificateView>),
              (status = 403, description = "Someone else's, without write:user_certificates", body = ErrorBody),
              (status = 404, description = "No such login certificate in reach", body = ErrorBody),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
async fn revoke(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<RevokeInput>,
) -> ApiResult<Response> {
    revoked(
        &app,
        &principal,
        id,
        body,
        Reach::Anyone(Permission::WriteUserCertificates),
    )
    .await
}

/// Delete a login certificate (anyone's with `delete:user_certificates`, one's own
/// otherwise): revoked if still valid, and unlinked; the certificate stays in the inventory.
#[utoipa::path(delete, path = "/user-certificates/{id}", tag = "user-certificates",
    security(("session" = []), ("api_key" = [])),
    params(("id" = i64, Path, description = "Login certificate id")),
    responses((status = 204, description = "Deleted"),
              (status = 403, description = "Someone else's, without delete:user_certificates", body = ErrorBody),
              (status = 404, description = "No such login certificate in reach", body = ErrorBody)))]
async fn delete(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority
        .delete_login_certificate(
            &principal,
            id,
            Reach::Anyone(Permission::DeleteUserCertificates),
        )
        .await?;
    Ok(no_content())
}
