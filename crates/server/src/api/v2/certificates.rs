//! `/certificates`: the inventory, issuance with a server-side key, and export.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::import::{ImportAnswer, ImportBody};
use super::views::{SubjectFields, requested_key_type};
use crate::App;
use crate::envelope::{
    Envelope, Pagination, Total, attachment, created, keyset_page, no_content, ok, page,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id, Upload};
use authority::pki::bundle::{self, Pkcs12Cipher};
use authority::pki::{ExtendedKeyUsage, KeyUsage, SubjectAltName, pem};
use authority::{
    CaId, CertificateFilter, CertificateId, CertificateOrder, CertificateSource, CertificateState,
    IssueRequest, KeySource, RevocationReason, SanKind, TemplateId, TimeWindow,
};

/// Certificates within this many days of expiry count as expiring.
pub const EXPIRING_DAYS: u32 = 30;

/// The end of the expiring window that starts at `now`.
pub fn expiring_until(now: OffsetDateTime) -> OffsetDateTime {
    now + Duration::days(EXPIRING_DAYS.into())
}

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(stats))
        .routes(routes!(get, delete))
        .routes(routes!(export))
        .routes(routes!(export_with_body))
        .routes(routes!(revoke))
        .routes(routes!(renew))
        .routes(routes!(private_key))
        .routes(routes!(import))
}

/// A certificate, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateView {
    pub id: i64,
    pub refid: String,
    pub common_name: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub ca_id: Option<i64>,
    /// Hex.
    pub serial_number: String,
    /// `kind:value`.
    pub san: Vec<String>,
    /// active, expired or revoked.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    pub days_remaining: i64,
    pub key_type: String,
    pub signature_algorithm: String,
    pub fingerprint_sha256: String,
    /// Whether certmint holds the private key.
    pub private_key_available: bool,
    pub source: String,
    pub description: Option<String>,
    /// The user who answers for it: its requester unless reassigned.
    pub owner_id: Option<i64>,
    /// The group (team) that answers for it.
    pub team_id: Option<i64>,
    /// Its labels, sorted.
    pub tags: Vec<String>,
    /// The certificate this one renewed.
    pub renewed_from: Option<i64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// RFC 5280 reason, camelCase as the reference spells it (keyCompromise, caCompromise).
    pub revocation_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl CertificateView {
    pub fn new(c: authority::CertificateRow, now: OffsetDateTime) -> Self {
        let status = CertificateState::of(c.status, c.cert.not_after, now);
        Self {
            id: c.id.0,
            refid: c.refid,
            common_name: c.cert.common_name,
            subject: c.cert.subject,
            issuer: c.cert.issuer,
            ca_id: c.ca_id.map(i64::from),
            serial_number: c.cert.serial,
            san: c.sans,
            status: status.as_str().into(),
            valid_from: c.cert.not_before,
            valid_until: c.cert.not_after,
            days_remaining: (c.cert.not_after - now).whole_days().max(0),
            key_type: c.cert.key_type,
            signature_algorithm: c.cert.signature_algorithm,
            fingerprint_sha256: c.cert.fingerprint_sha256,
            private_key_available: c.key_id.is_some(),
            source: c.source.to_string(),
            description: c.description,
            owner_id: c.owner_id,
            team_id: c.team_id,
            tags: c.tags,
            renewed_from: c.renewed_from.map(i64::from),
            revoked_at: c.revoked_at,
            revocation_reason: c.revocation_reason.as_deref().map(RevocationReason::shown),
            created_at: c.created_at,
        }
    }
}

/// The list's filters and order; a saved view keeps them as they serialise back.
#[derive(Debug, Default, Deserialize, Serialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct CertificateQuery {
    /// active, expired, revoked or expiring (active, ending within 30 days).
    pub status: Option<String>,
    /// Only certificates issued by this CA.
    pub ca_id: Option<i64>,
    /// Text (up to 200 characters, any case) in the common name, a SAN, the serial or the
    /// subject, or at the start of the SHA-256 fingerprint; hex typed with colons (`0A:1B:…`)
    /// finds serials and fingerprints too. Three characters or more are looked up in a trigram
    /// index.
    pub search: Option<String>,
    /// With `status=expiring`: the window in days (1 to 3650), 30 when omitted: the
    /// certificates with at most this many days remaining.
    pub days: Option<u32>,
    /// Only certificates issued from this template.
    pub template_id: Option<i64>,
    /// Only certificates that came in this way: api, acme, csr, est, scep, imported or system.
    pub source: Option<String>,
    /// Only keys of this type, as a certificate's `key_type` shows it (`EC P-256`, `RSA 2048`,
    /// `Ed25519`).
    pub key_type: Option<String>,
    /// Only keys of this algorithm (RSA, EC, Ed25519), with `key_size` for RSA and EC: another
    /// way to name a `key_type`.
    pub key_algorithm: Option<String>,
    /// With `key_algorithm`: RSA bits, or the EC curve's size (256, 384).
    pub key_size: Option<u32>,
    /// Only certificates signed with this algorithm, as `signature_algorithm` shows it.
    pub signature_algorithm: Option<String>,
    /// Only certificates with this issuer, exactly as `issuer` shows it (RFC 4514).
    pub issuer: Option<String>,
    /// Only certificates owned by this user id (their requester unless reassigned).
    pub owner_id: Option<i64>,
    /// Only certificates of this team (group id).
    pub team_id: Option<i64>,
    /// Only certificates with this tag (any case).
    pub tag: Option<String>,
    /// Only certificates with a SAN of this kind: dns, ip, email or uri.
    pub san_type: Option<String>,
    /// Only certificates valid from this time on or later (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub valid_from_after: Option<OffsetDateTime>,
    /// Only certificates valid from before this time (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub valid_from_before: Option<OffsetDateTime>,
    /// Only certificates that expire at this time or later (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub expires_after: Option<OffsetDateTime>,
    /// Only certificates that expire before this time (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub expires_before: Option<OffsetDateTime>,
    /// `true`: only certificates a later one renewed; `false`: only those none has renewed.
    pub renewed: Option<bool>,
    /// Whether certmint holds the private key (`private_key_available`).
    pub has_key: Option<bool>,
    /// The order: created_at (the default), valid_until or valid_from. Only created_at takes a
    /// cursor.
    pub sort: Option<String>,
    /// desc (the default) or asc.
    pub order: Option<String>,
}

/// Certificates, newest first.
#[utoipa::path(get, path = "/certificates", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(CertificateQuery, Pagination),
    responses((status = 200, description = "Certificates", body = Envelope<Vec<CertificateView>>),
              (status = 400, description = "Unknown status", body = ErrorBody)))]
async fn list(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<CertificateQuery>,
    ApiQuery(p): ApiQuery<Pagination>,
) -> ApiResult<Response> {
    list_page(&app, q, p).await
}

/// One page of the inventory for a query; `/cas/{id}/certificates` serves it too. A list in
/// id order (by `created_at`) is paged by cursor too; another order by number only.
pub async fn list_page(app: &App, q: CertificateQuery, p: Pagination) -> ApiResult<Response> {
    let filter = certificate_filter(q, app.authority.now())?;
    if filter.order.by_id() {
        let request = p.keyset_request()?;
        let (items, total) = filtered_page(app, &filter, request).await?;
        Ok(keyset_page(items, request, total, |c| c.id))
    } else {
        let request = p.request()?;
        let (items, total) = filtered_page(app, &filter, request).await?;
        Ok(page(items, request, total))
    }
}

/// One page of the inventory for a query, and how many certificates match it.
pub async fn certificates_page(
    app: &App,
    q: CertificateQuery,
    request: authority::PageRequest,
) -> ApiResult<(Vec<CertificateView>, Total)> {
    let filter = certificate_filter(q, app.authority.now())?;
    filtered_page(app, &filter, request).await
}

async fn filtered_page(
    app: &App,
    filter: &CertificateFilter,
    request: authority::PageRequest,
) -> ApiResult<(Vec<CertificateView>, Total)> {
    let now = app.authority.now();
    let result = app
        .authority
        .reader()
        .certificates(filter, now, request)
        .await
        .map_err(authority::Error::from)?;
    let items = result
        .items
        .into_iter()
        .map(|c| CertificateView::new(c, now))
        .collect();
    Ok((
        items,
        Total {
            n: result.total,
            estimated: result.estimated,
        },
    ))
}

/// The store's filter for a list query.
pub fn certificate_filter(
    q: CertificateQuery,
    now: OffsetDateTime,
) -> ApiResult<CertificateFilter> {
    let state = match q.status.as_deref() {
        None | Some("" | "all") => None,
        Some("active" | "valid") => Some(CertificateState::Active),
        Some("expired") => Some(CertificateState::Expired),
        Some("revoked") => Some(CertificateState::Revoked),
        Some("expiring") => Some(CertificateState::ExpiringBefore(match q.days {
            None => expiring_until(now),
            Some(days @ 1..=3650) => now + Duration::days(days.into()),
            Some(_) => return Err(ApiError::bad_request("days must be from 1 to 3650")),
        })),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown status '{other}'; expected active, expired, revoked or expiring"
            )));
        }
    };
    if q.search
        .as_ref()
        .is_some_and(|t| t.chars().count() > super::search::MAX_QUERY_CHARS)
    {
        return Err(ApiError::bad_request(format!(
            "search holds at most {} characters",
            super::search::MAX_QUERY_CHARS
        )));
    }
    let key_type = match (q.key_type, q.key_algorithm.as_deref(), q.key_size) {
        (Some(_), Some(_), _) | (Some(_), None, Some(_)) => {
            return Err(ApiError::bad_request(
                "name a key by key_type or by key_algorithm and key_size, not both",
            ));
        }
        (key_type, None, None) => key_type,
        (None, None, Some(_)) => {
            return Err(ApiError::bad_request("key_size needs key_algorithm"));
        }
        (None, Some(alg), size) => {
            if size.is_none() && !alg.eq_ignore_ascii_case("ed25519") {
                return Err(ApiError::bad_request(
                    "key_algorithm RSA or EC needs key_size (or name the key_type)",
                ));
            }
            // A query that names no key type certmint knows is a bad query (400), where the
            // same words in an issuance body are a request it cannot do (422).
            let key = requested_key_type(Some(alg), size, None)
                .map_err(|e| ApiError::bad_request(ApiError::from(e).message().to_owned()))?;
            Some(key.label())
        }
    };
    let source = match q.source.as_deref() {
        None | Some("") => None,
        Some(word) => Some(CertificateSource::parse(word).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown source '{word}'; expected one of {}",
                words(CertificateSource::ALL.iter().map(|s| s.as_str()))
            ))
        })?),
    };
    let san_kind = match q.san_type.as_deref() {
        None | Some("") => None,
        Some(name) => Some(SanKind::parse(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown san_type '{name}'; expected one of {}",
                words(SanKind::ALL.iter().map(|k| k.as_str()))
            ))
        })?),
    };
    let descending = match q.order.as_deref() {
        None | Some("" | "desc") => true,
        Some("asc") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown order '{other}'; expected asc or desc"
            )));
        }
    };
    let order = match (q.sort.as_deref(), descending) {
        (None | Some("" | "created_at"), true) => CertificateOrder::Newest,
        (None | Some("" | "created_at"), false) => CertificateOrder::Oldest,
        (Some("valid_until"), true) => CertificateOrder::ExpiresLast,
        (Some("valid_until"), false) => CertificateOrder::ExpiresFirst,
        (Some("valid_from"), true) => CertificateOrder::ValidFromLast,
        (Some("valid_from"), false) => CertificateOrder::ValidFromFirst,
        (Some(other), _) => {
            return Err(ApiError::bad_request(format!(
                "unknown sort '{other}'; expected created_at, valid_until or valid_from"
            )));
        }
    };
    for (name, value) in [
        ("key_type", &key_type),
        ("signature_algorithm", &q.signature_algorithm),
        ("issuer", &q.issuer),
    ] {
        if value
            .as_ref()
            .is_some_and(|v| v.chars().count() > super::search::MAX_QUERY_CHARS)
        {
            return Err(ApiError::bad_request(format!(
                "{name} holds at most {} characters",
                super::search::MAX_QUERY_CHARS
            )));
        }
    }
    Ok(CertificateFilter {
        state,
        ca_id: q.ca_id.map(CaId),
        search: q.search,
        template_id: q.template_id.map(TemplateId),
        source,
        key_type: key_type.filter(|k| !k.is_empty()),
        signature_algorithm: q.signature_algorithm.filter(|v| !v.is_empty()),
        issuer: q.issuer.filter(|v| !v.is_empty()),
        owner_id: q.owner_id,
        team_id: q.team_id,
        tag: match q.tag.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(tag) => Some(
                authority::certificate_metadata::tag(tag)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?,
            ),
        },
        san_kind,
        valid_from: TimeWindow {
            from: q.valid_from_after,
            until: q.valid_from_before,
        },
        valid_until: TimeWindow {
            from: q.expires_after,
            until: q.expires_before,
        },
        renewed: q.renewed,
        has_key: q.has_key,
        order,
    })
}

/// `a, b or c`.
fn words<'a>(all: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = all.collect();
    match all.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// How many certificates are in each state.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateStats {
    pub total: i64,
    pub active: i64,
    pub expired: i64,
    pub revoked: i64,
    /// Active and ending within 30 days.
    pub expiring: i64,
}

/// Counts of the inventory by state.
#[utoipa::path(get, path = "/certificates/stats", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    responses((status = 200, description = "Counts", body = Envelope<CertificateStats>)))]
async fn stats(State(app): State<App>) -> ApiResult<Response> {
    let now = app.authority.now();
    let store = app.authority.reader();
    let total = store
        .count_certificates(&CertificateFilter::default(), now)
        .await
        .map_err(authority::Error::from)?;
    let states = store
        .certificate_states(now, expiring_until(now))
        .await
        .map_err(authority::Error::from)?;
    Ok(ok(CertificateStats {
        total,
        active: states.active,
        expired: states.expired,
        revoked: states.revoked,
        expiring: states.expiring,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateCreate {
    #[serde(flatten)]
    pub subject: SubjectFields,
    /// The issuing CA; the default CA when omitted.
    pub ca_id: Option<i64>,
    /// Checks the request and fills in what it leaves out (validity, key, usages).
    pub template_id: Option<i64>,
    /// Days; the template's, or 365, when omitted.
    pub validity_days: Option<i64>,
    /// RSA, EC or Ed25519; the template's default, or EC P-256, when omitted.
    pub key_algorithm: Option<String>,
    /// RSA bits (2048, 3072, 4096) or EC size (256, 384).
    pub key_size: Option<u32>,
    /// EC curve: P-256 or P-384.
    pub curve: Option<String>,
    /// `dns:…`, `ip:…`, `email:…`, `uri:…`.
    #[serde(default)]
    pub san: Vec<String>,
    pub key_usage: Option<Vec<String>>,
    pub extended_key_usage: Option<Vec<String>>,
    pub description: Option<String>,
    /// A CSR (PEM) to sign instead: subject, SANs and key come from it.
    pub csr: Option<String>,
}

/// Issue a certificate: with a key generated and kept (sealed) by certmint, or for the key of
/// a CSR given as `csr`.
#[utoipa::path(post, path = "/certificates", tag = "certificates",
    security(("session" = ["write:certificates"]), ("api_key" = ["write:certificates"])),
    request_body = CertificateCreate,
    responses((status = 201, description = "Issued", body = Envelope<CertificateView>),
              (status = 422, description = "A field breaks a rule", body = ErrorBody)))]
async fn create(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<CertificateCreate>,
) -> ApiResult<Response> {
    Ok(created(
        issue_certificate(&app, &principal, body).await?,
        "Certificate issued successfully",
    ))
}

/// Issues what `body` asks for; the console's issuance form sends the same request.
pub async fn issue_certificate(
    app: &App,
    principal: &authority::Principal,
    body: CertificateCreate,
) -> ApiResult<CertificateView> {
    let key_type = match (&body.key_algorithm, body.key_size, &body.curve) {
        (None, None, None) => None,
        (algorithm, size, curve) => Some(requested_key_type(
            algorithm.as_deref(),
            size,
            curve.as_deref(),
        )?),
    };
    let sans = body
        .san
        .iter()
        .map(|s| SubjectAltName::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(authority::Error::from)?;
    let subject = body.subject.to_name()?;
    let (subject, sans, key) = match &body.csr {
        None => (subject, sans, KeySource::Generate(key_type)),
        Some(_) if !subject.is_empty() || !sans.is_empty() || key_type.is_some() => {
            return Err(ApiError::invalid(
                "with csr, the subject, SANs and key come from the CSR; leave out the subject \
                 fields, san and key parameters",
            ));
        }
        Some(pem) => {
            let csr = authority::parse_csr(pem.as_bytes())?;
            (
                csr.subject.clone(),
                csr.sans.clone(),
                KeySource::Csr(Box::new(csr)),
            )
        }
    };
    let key_usage = body
        .key_usage
        .map(|v| {
            v.iter()
                .map(|u| KeyUsage::parse(u))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(authority::Error::from)?;
    let extended_key_usage = body
        .extended_key_usage
        .map(|v| {
            v.iter()
                .map(|u| ExtendedKeyUsage::parse(u))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(authority::Error::from)?;
    let issued = app
        .authority
        .issue(
            principal,
            IssueRequest {
                ca_id: body.ca_id.map(CaId),
                subject,
                sans,
                key,
                template_id: body.template_id.map(TemplateId),
                validity_days: body.validity_days,
                key_usage,
                extended_key_usage,
                description: body.description,
                source: CertificateSource::Api,
                renewed_from: None,
            },
        )
        .await?;
    Ok(CertificateView::new(
        issued.certificate,
        app.authority.now(),
    ))
}

/// One certificate.
#[utoipa::path(get, path = "/certificates/{id}", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(("id" = i64, Path, description = "Certificate id")),
    responses((status = 200, description = "Certificate", body = Envelope<CertificateView>),
              (status = 404, description = "No such certificate", body = ErrorBody)))]
async fn get(State(app): State<App>, Id(id): Id) -> ApiResult<Response> {
    let cert = app.authority.certificate(CertificateId(id)).await?;
    Ok(ok(CertificateView::new(cert, app.authority.now())))
}

#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// pem (default), der, chain, pkcs7, pkcs12.
    #[serde(default)]
    pub format: Option<String>,
    /// With `format=pem`: add the private key (needs export:keys).
    #[serde(default)]
    pub include_key: bool,
    /// With `format=pem`: add the issuing CAs' certificates after the certificate.
    #[serde(default)]
    pub include_chain: bool,
    /// For `format=pkcs12`: at least 8 characters.
    pub password: Option<String>,
    /// For `format=pkcs12`: `legacy` for 3DES/SHA-1 (old Windows and Java); AES-256 otherwise.
    pub encryption: Option<String>,
}

/// Download a certificate: PEM (optionally with its key), DER, the PEM chain, PKCS#7 or
/// PKCS#12. Exporting the key needs `export:keys` and is audited.
#[utoipa::path(get, path = "/certificates/{id}/export", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(("id" = i64, Path, description = "Certificate id"), ExportQuery),
    responses((status = 200, description = "The file"),
              (status = 403, description = "The key was asked for without export:keys", body = ErrorBody),
              (status = 404, description = "No such certificate", body = ErrorBody),
              (status = 422, description = "Unknown format or a missing password", body = ErrorBody)))]
async fn export(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    export_file(&app, &principal, id, q).await
}

/// As `GET /certificates/{id}/export`, with the options in a JSON body, so that a PKCS#12
/// password need not travel in a URL (which browsers keep in their history and proxies log).
#[utoipa::path(post, path = "/certificates/{id}/export", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(("id" = i64, Path, description = "Certificate id")),
    request_body = ExportQuery,
    responses((status = 200, description = "The file"),
              (status = 403, description = "The key was asked for without export:keys", body = ErrorBody),
              (status = 404, description = "No such certificate", body = ErrorBody),
              (status = 422, description = "Unknown format or a missing password", body = ErrorBody)))]
async fn export_with_body(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(q): ApiJson<ExportQuery>,
) -> ApiResult<Response> {
    export_file(&app, &principal, id, q).await
}

/// The certificate `id` as a file in the format `q` asks for; the console's export form asks
/// the same way.
pub async fn export_file(
    app: &App,
    principal: &authority::Principal,
    id: i64,
    q: ExportQuery,
) -> ApiResult<Response> {
    let cert = app.authority.certificate(CertificateId(id)).await?;
    let key = if export_needs_key(&q)? {
        Some(
            app.authority
                .certificate_key(principal, CertificateId(id))
                .await?,
        )
    } else {
        None
    };
    certificate_file(app, &cert, q, key).await
}

/// Whether the export `q` asks for holds the private key, after checking its options, so
/// that a key is fetched (and its export audited) only for an export that then happens.
///
/// # Errors
/// 422 for an unknown format or encryption, or a PKCS#12 password under 8 characters.
pub fn export_needs_key(q: &ExportQuery) -> ApiResult<bool> {
    match q.format.as_deref().unwrap_or("pem") {
        "pem" | "crt" => Ok(q.include_key),
        "der" | "cer" | "chain" | "pkcs7" | "p7b" => Ok(false),
        "pkcs12" | "p12" | "pfx" => {
            if q.password.as_deref().is_none_or(|p| p.chars().count() < 8) {
                return Err(ApiError::invalid(
                    "format=pkcs12 needs a password of at least 8 characters",
                ));
            }
            pkcs12_cipher(q.encryption.as_deref())?;
            Ok(true)
        }
        other => Err(ApiError::invalid(format!(
            "unknown format '{other}'; expected pem, der, chain, pkcs7 or pkcs12"
        ))),
    }
}

fn pkcs12_cipher(encryption: Option<&str>) -> ApiResult<Pkcs12Cipher> {
    match encryption {
        None | Some("aes256" | "aes") => Ok(Pkcs12Cipher::Aes256),
        Some("legacy" | "3des") => Ok(Pkcs12Cipher::Legacy3Des),
        Some(other) => Err(ApiError::invalid(format!(
            "unknown encryption '{other}'; expected aes256 or legacy"
        ))),
    }
}

/// `cert` as the file `q` asks for, with `key` where the format holds one (see
/// [`export_needs_key`], which the caller asked first).
pub async fn certificate_file(
    app: &App,
    cert: &authority::CertificateRow,
    q: ExportQuery,
    key: Option<authority::pki::PrivateKey>,
) -> ApiResult<Response> {
    let needs_key = export_needs_key(&q)?;
    let key = match (needs_key, key) {
        (true, Some(key)) => Some(key),
        (true, None) => {
            return Err(
                authority::Error::Internal("the export's key was not fetched".into()).into(),
            );
        }
        (false, _) => None,
    };
    let name = cert
        .cert
        .common_name
        .clone()
        .unwrap_or_else(|| cert.refid.clone());
    let chain = match cert.ca_id {
        Some(ca) => app.authority.ca_chain(ca).await?,
        None => Vec::new(),
    };
    let mut all: Vec<&[u8]> = vec![&cert.cert.der];
    all.extend(chain.iter().map(Vec::as_slice));
    let (content_type, ext, body) = match (q.format.as_deref().unwrap_or("pem"), key) {
        ("pem" | "crt", key) => {
            let mut text = pem::encode("CERTIFICATE", &cert.cert.der);
            if q.include_chain {
                text = bundle::certificates_pem(&all);
            }
            if let Some(key) = key {
                text.push_str(&key.to_pkcs8_pem());
            }
            ("application/x-pem-file", "pem", text.into_bytes())
        }
        ("der" | "cer", _) => ("application/pkix-cert", "cer", cert.cert.der.clone()),
        ("chain", _) => (
            "application/x-pem-file",
            "chain.pem",
            bundle::certificates_pem(&all).into_bytes(),
        ),
        ("pkcs7" | "p7b", _) => (
            "application/pkcs7-mime",
            "p7b",
            bundle::pkcs7_certs_only(&all).map_err(authority::Error::from)?,
        ),
        (_, Some(key)) => {
            let cipher = pkcs12_cipher(q.encryption.as_deref())?;
            let password = q.password.clone().unwrap_or_default();
            let leaf = cert.cert.der.clone();
            let chain: Vec<Vec<u8>> = all[1..].iter().map(|c| c.to_vec()).collect();
            let friendly_name = name.clone();
            let p12 = app
                .authority
                .cpu()
                .run(move || {
                    let chain: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
                    Ok(bundle::pkcs12(
                        Some(key.pkcs8_der()),
                        &leaf,
                        &chain,
                        &password,
                        &friendly_name,
                        cipher,
                    )?)
                })
                .await?;
            ("application/x-pkcs12", "p12", p12)
        }
        (other, None) => {
            return Err(ApiError::invalid(format!(
                "unknown format '{other}'; expected pem, der, chain, pkcs7 or pkcs12"
            )));
        }
    };
    Ok(attachment(content_type, &format!("{name}.{ext}"), body))
}

/// The reason a revocation request names (unspecified when none), after checking its
/// comments' length.
pub fn revocation_reason(
    reason: Option<&str>,
    comments: Option<&str>,
) -> ApiResult<RevocationReason> {
    if comments.is_some_and(|c| c.chars().count() > 1000) {
        return Err(ApiError::invalid("comments may be at most 1000 characters"));
    }
    Ok(RevocationReason::parse(reason.unwrap_or("unspecified"))?)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RevokeBody {
    /// RFC 5280 reason: unspecified (default), keyCompromise, caCompromise, affiliationChanged,
    /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aaCompromise;
    /// removeFromCRL releases a hold. Any case, and snake_case (`ca_compromise`), is read too;
    /// answers spell it as listed here.
    pub reason: Option<String>,
    pub comments: Option<String>,
    /// When the key is known or suspected to have been compromised (RFC 3339; RFC 5280
    /// §5.3.2): CRLs carry it as the entry's invalidity date.
    #[serde(with = "time::serde::rfc3339::option")]
    pub invalidity_date: Option<OffsetDateTime>,
}

/// Revoke a certificate, put it on hold (`certificateHold`), or release a hold
/// (`removeFromCRL`).
#[utoipa::path(post, path = "/certificates/{id}/revoke", tag = "certificates",
    security(("session" = ["delete:certificates"]), ("api_key" = ["delete:certificates"])),
    params(("id" = i64, Path, description = "Certificate id")),
    request_body = RevokeBody,
    responses((status = 200, description = "Revoked or released", body = Envelope<CertificateView>),
              (status = 404, description = "No such certificate", body = ErrorBody),
              (status = 409, description = "Already revoked, or not on hold", body = ErrorBody),
              (status = 422, description = "Unknown reason", body = ErrorBody)))]
async fn revoke(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<RevokeBody>,
) -> ApiResult<Response> {
    let reason = revocation_reason(body.reason.as_deref(), body.comments.as_deref())?;
    let cert = app
        .authority
        .revoke(
            &principal,
            CertificateId(id),
            reason,
            body.comments.as_deref(),
            body.invalidity_date,
        )
        .await?;
    let message = if reason == RevocationReason::RemoveFromCrl {
        "Certificate released from hold"
    } else {
        "Certificate revoked successfully"
    };
    Ok(crate::envelope::ok_with(
        CertificateView::new(cert, app.authority.now()),
        message,
    ))
}

/// Delete a certificate from the inventory, with the key certmint held for it. It is not
/// revoked.
#[utoipa::path(delete, path = "/certificates/{id}", tag = "certificates",
    security(("session" = ["delete:certificates"]), ("api_key" = ["delete:certificates"])),
    params(("id" = i64, Path, description = "Certificate id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such certificate", body = ErrorBody)))]
async fn delete(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority
        .delete_certificate(&principal, CertificateId(id))
        .await?;
    Ok(no_content())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RenewBody {
    /// Days; the original's validity when omitted.
    pub validity_days: Option<i64>,
    /// Issue from this CA instead of the original one.
    pub ca_id: Option<i64>,
    /// Rekey: generate a new key (EC P-256 unless `key_algorithm`, `key_size` or `curve`
    /// say otherwise) instead of carrying the old one over.
    pub new_key: bool,
    pub key_algorithm: Option<String>,
    pub key_size: Option<u32>,
    pub curve: Option<String>,
    /// Rekey to the key of this CSR (PEM) instead; the names stay the original's.
    pub csr: Option<String>,
}

/// Renew a certificate (same subject, SANs and usages; a new serial and validity), keeping its
/// key or, with `new_key`, rekeying it. The original stays valid until it expires or is revoked.
#[utoipa::path(post, path = "/certificates/{id}/renew", tag = "certificates",
    security(("session" = ["write:certificates"]), ("api_key" = ["write:certificates"])),
    params(("id" = i64, Path, description = "Certificate id")),
    request_body = RenewBody,
    responses((status = 201, description = "The new certificate", body = Envelope<CertificateView>),
              (status = 404, description = "No such certificate", body = ErrorBody),
              (status = 422, description = "It cannot be renewed as asked", body = ErrorBody)))]
async fn renew(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<RenewBody>,
) -> ApiResult<Response> {
    let key_given = body.key_algorithm.is_some() || body.key_size.is_some() || body.curve.is_some();
    let new_key = match &body.csr {
        Some(_) if key_given || body.new_key => {
            return Err(ApiError::invalid(
                "a rekey takes either csr or new_key/key_algorithm/key_size/curve, not both",
            ));
        }
        Some(pem) => Some(KeySource::Csr(Box::new(authority::parse_csr(
            pem.as_bytes(),
        )?))),
        None if key_given || body.new_key => Some(KeySource::Generate(Some(requested_key_type(
            body.key_algorithm.as_deref(),
            body.key_size,
            body.curve.as_deref(),
        )?))),
        None => None,
    };
    let issued = app
        .authority
        .renew(
            &principal,
            CertificateId(id),
            body.validity_days,
            body.ca_id.map(CaId),
            new_key,
        )
        .await?;
    Ok(created(
        CertificateView::new(issued.certificate, app.authority.now()),
        "Certificate renewed successfully",
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KeyRequest {
    /// Encrypt the key (PKCS#8, PBKDF2-SHA256 + AES-256-CBC) with this passphrase.
    pub passphrase: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// `PRIVATE KEY` or, with a passphrase, `ENCRYPTED PRIVATE KEY` PEM.
    pub private_key: String,
    pub encrypted: bool,
    pub key_type: String,
}

/// The private key certmint holds for a certificate; audited.
#[utoipa::path(post, path = "/certificates/{id}/key", tag = "certificates",
    security(("session" = ["export:keys"]), ("api_key" = ["export:keys"])),
    params(("id" = i64, Path, description = "Certificate id")),
    request_body = KeyRequest,
    responses((status = 200, description = "The key", body = Envelope<KeyView>),
              (status = 404, description = "No such certificate, or certmint does not hold its key", body = ErrorBody),
              (status = 422, description = "A passphrase shorter than 8 characters", body = ErrorBody)))]
async fn private_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<KeyRequest>,
) -> ApiResult<Response> {
    let passphrase = body.passphrase.filter(|p| !p.is_empty());
    if passphrase.as_ref().is_some_and(|p| p.chars().count() < 8) {
        return Err(ApiError::invalid(
            "the passphrase must have at least 8 characters",
        ));
    }
    let key = app
        .authority
        .certificate_key(&principal, CertificateId(id))
        .await?;
    let key_type = key.key_type().label();
    let encrypted = passphrase.is_some();
    let private_key = match passphrase {
        Some(p) => {
            app.authority
                .cpu()
                .run(move || Ok(key.to_encrypted_pem(&p)?))
                .await?
        }
        None => key.to_pkcs8_pem().to_string(),
    };
    Ok(ok(KeyView {
        private_key,
        encrypted,
        key_type,
    }))
}

/// Import certificates made elsewhere (PEM, DER, PKCS#7, PKCS#12), with their keys if given.
/// CA certificates in the file become CAs; each certificate is linked to its issuing CA.
#[utoipa::path(post, path = "/certificates/import", tag = "certificates",
    security(("session" = ["write:certificates"]), ("api_key" = ["write:certificates"])),
    request_body(content = ImportBody, description = "JSON, or multipart/form-data with `file`, `password`, `private_key`, `name`, `description`, `ca_id`, `import_key`"),
    responses((status = 201, description = "Imported: the certificate or CA when the file held one certificate, otherwise what was stored and skipped", body = Envelope<ImportAnswer>),
              (status = 409, description = "The file's one certificate is stored already", body = ErrorBody),
              (status = 403, description = "A CA certificate without write:cas", body = ErrorBody),
              (status = 422, description = "Unreadable file, wrong password, stray key, or not issued by ca_id", body = ErrorBody)))]
async fn import(
    State(app): State<App>,
    Caller(principal): Caller,
    upload: Upload<ImportBody>,
) -> ApiResult<Response> {
    super::import::run(&app, &principal, upload, false).await
}
