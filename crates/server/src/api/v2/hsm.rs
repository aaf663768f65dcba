//! `/hsm`: PKCS#11 providers, the keys certmint keeps in their tokens, the provider types and
//! what installs them; `/system/hsm-status`. The reference's `POST /hsm/keys/{key_id}/sign`
//! is not served: a raw signature by a key that is, or may become, a CA's would sign outside
//! the issuance pipeline and its linter.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zeroize::Zeroizing;

use crate::App;
use crate::envelope::{Envelope, created, no_content, ok, ok_with};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id};
use authority::hsm::{Dependency, HsmKey, Provider, ProviderInput};
use authority::pki::{KeyType, pem};
use authority::{CaId, KeyId};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_providers, create_provider))
        .routes(routes!(get_provider, update_provider, delete_provider))
        .routes(routes!(test_provider))
        .routes(routes!(sync_provider))
        .routes(routes!(generate_key))
        .routes(routes!(import_ca_key))
        .routes(routes!(list_keys))
        .routes(routes!(get_key, delete_key))
        .routes(routes!(public_key))
        .routes(routes!(provider_types))
        .routes(routes!(dependencies))
        .routes(routes!(install_dependency))
        .routes(routes!(status))
}

/// A provider to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HsmProviderBody {
    pub name: String,
    /// `softhsm2`, `opensc`, `yubihsm2` or `pkcs11` (see `/hsm/provider-types`).
    #[serde(rename = "type")]
    pub provider_type: String,
    /// The PKCS#11 module; the type's installed module when omitted. Only the known paths of
    /// the type, and those in `[hsm] modules` of the settings file, are accepted.
    pub module_path: Option<String>,
    /// The token's label (`CKA_LABEL` of the token).
    pub token_label: Option<String>,
    /// Or its slot id.
    pub slot_id: Option<i64>,
    /// The user PIN, sealed by certmint and never shown again; on an update, omitted keeps
    /// the one set.
    pub pin: Option<String>,
    /// Or the environment variable holding it (named `CERTMINT_HSM_…`).
    pub pin_env: Option<String>,
    /// Sessions opened at most, which is how many signatures are in flight at once
    /// (default 4).
    pub max_sessions: Option<i64>,
    /// Let administrators move software CA keys into this token.
    #[serde(default)]
    pub allow_key_import: bool,
    /// On (default) or off.
    pub enabled: Option<bool>,
}

impl HsmProviderBody {
    fn into_input(self) -> ProviderInput {
        ProviderInput {
            name: self.name,
            provider_type: self.provider_type,
            module_path: self.module_path,
            token_label: self.token_label,
            slot_id: self.slot_id,
            pin: self.pin.map(Zeroizing::new),
            pin_env: self.pin_env,
            max_sessions: self.max_sessions,
            allow_key_import: self.allow_key_import,
            enabled: self.enabled,
        }
    }
}

/// A provider; its PIN never.
#[derive(Debug, Serialize, ToSchema)]
pub struct HsmProviderView {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub provider_type: String,
    pub module_path: String,
    pub token_label: Option<String>,
    pub slot_id: Option<i64>,
    /// `env` (read from `pin_env`), `sealed` (kept by certmint) or `none`.
    pub pin_source: String,
    pub pin_env: Option<String>,
    pub max_sessions: i64,
    pub allow_key_import: bool,
    pub enabled: bool,
    /// Keys certmint records in its token.
    pub key_count: usize,
    /// The token on this node, once used.
    pub state: Option<HsmTokenStateView>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A token as this node sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HsmTokenStateView {
    /// Whether its last operation worked.
    pub available: bool,
    /// Why not.
    pub last_error: Option<String>,
    pub sessions_open: usize,
    pub sessions_idle: usize,
    pub max_sessions: usize,
    /// Signatures made since start.
    pub signatures: u64,
    /// Operations that failed since start.
    pub failures: u64,
    /// Times it came back after failing.
    pub recoveries: u64,
}

pub(crate) fn provider_view(p: Provider) -> HsmProviderView {
    HsmProviderView {
        id: p.id,
        name: p.name,
        provider_type: p.provider_type,
        module_path: p.module_path,
        token_label: p.token_label,
        slot_id: p.slot_id,
        pin_source: p.pin_source.into(),
        pin_env: p.pin_env,
        max_sessions: p.max_sessions,
        allow_key_import: p.allow_key_import,
        enabled: p.enabled,
        key_count: p.key_count,
        state: p.state.map(|s| HsmTokenStateView {
            available: s.available,
            last_error: s.last_error,
            sessions_open: s.sessions_open,
            sessions_idle: s.sessions_idle,
            max_sessions: s.max_sessions,
            signatures: s.counters.signatures,
            failures: s.counters.failures,
            recoveries: s.counters.recoveries,
        }),
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

/// A key in a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct HsmKeyView {
    /// The key's id: a CA's `key_id`, and `hsm_key_id` when creating one.
    pub id: i64,
    pub provider_id: i64,
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`, hex.
    pub object_id: String,
    /// `RSA 2048`, `EC P-256`, …
    pub key_type: String,
    /// The CA it signs for.
    pub ca_id: Option<i64>,
    pub ca_name: Option<String>,
    /// SHA-256 of the DER public key, hex.
    pub public_key_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// What the token says of the private key, when it was asked (one key at a time).
    pub protection: Option<HsmProtectionView>,
}

/// A private key's flags in its token.
#[derive(Debug, Serialize, ToSchema)]
pub struct HsmProtectionView {
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_ALWAYS_SENSITIVE`.
    pub always_sensitive: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// `CKA_LOCAL`: made in the token.
    pub local: bool,
}

pub(crate) fn key_view(k: HsmKey) -> HsmKeyView {
    HsmKeyView {
        id: k.id,
        provider_id: k.provider_id,
        label: k.label,
        object_id: k.object_id,
        key_type: k.key_type,
        ca_id: k.ca_id,
        ca_name: k.ca_name,
        public_key_sha256: k.public_key_sha256,
        created_at: k.created_at,
        protection: k.protection.map(|p| HsmProtectionView {
            sensitive: p.sensitive,
            extractable: p.extractable,
            always_sensitive: p.always_sensitive,
            never_extractable: p.never_extractable,
            local: p.local,
        }),
    }
}

/// What a sync found.
#[derive(Debug, Serialize, ToSchema)]
pub struct HsmSyncView {
    /// Signing keys in the token.
    pub found: usize,
    /// Of those, newly recorded.
    pub added: Vec<HsmKeyView>,
    /// Recorded keys the token no longer holds.
    pub missing: Vec<HsmKeyView>,
}

/// What a token says about itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct HsmTokenView {
    pub label: String,
    pub manufacturer: String,
    pub model: String,
    pub serial_number: String,
    pub slot_id: u64,
    /// The key types it makes and signs with, of those certmint uses.
    pub key_types: Vec<String>,
}

/// A provider type.
#[derive(Debug, Serialize, ToSchema)]
pub struct HsmTypeView {
    /// The provider's `type`.
    pub name: String,
    pub title: String,
    /// Where its module usually is.
    pub modules: Vec<String>,
    /// The Debian package with the module.
    pub package: Option<String>,
    pub notes: String,
}

/// Whether a type's module is here, and what installs it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HsmDependencyView {
    #[serde(rename = "type")]
    pub provider_type: String,
    /// The module found.
    pub installed_module: Option<String>,
    /// What the operator runs to install it.
    pub install: Option<String>,
    pub notes: String,
}

fn dependency_view(d: Dependency) -> HsmDependencyView {
    HsmDependencyView {
        provider_type: d.provider_type.into(),
        installed_module: d.installed_module.map(Into::into),
        install: d.install,
        notes: d.notes.into(),
    }
}

/// The providers, by name; never their PINs.
#[utoipa::path(get, path = "/hsm/providers", tag = "hsm",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    responses((status = 200, description = "Providers", body = Envelope<Vec<HsmProviderView>>)))]
async fn list_providers(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let providers = app.authority.hsm_providers(&principal).await?;
    Ok(ok(providers
        .into_iter()
        .map(provider_view)
        .collect::<Vec<_>>()))
}

/// Create a provider. Its module is loaded into the server, so this needs `admin:system` and
/// a module the settings file allows.
#[utoipa::path(post, path = "/hsm/providers", tag = "hsm",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = HsmProviderBody,
    responses((status = 201, description = "Created", body = Envelope<HsmProviderView>),
              (status = 409, description = "Name taken", body = ErrorBody),
              (status = 422, description = "A field breaks a rule", body = ErrorBody)))]
async fn create_provider(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<HsmProviderBody>,
) -> ApiResult<Response> {
    let provider = app
        .authority
        .create_hsm_provider(&principal, body.into_input())
        .await?;
    Ok(created(provider_view(provider), "HSM provider created"))
}

/// One provider, with its token's state on this node once used.
#[utoipa::path(get, path = "/hsm/providers/{provider_id}", tag = "hsm",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    params(("provider_id" = i64, Path)),
    responses((status = 200, description = "Provider", body = Envelope<HsmProviderView>),
              (status = 404, description = "No such provider", body = ErrorBody)))]
async fn get_provider(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    Ok(ok(provider_view(
        app.authority.hsm_provider(&principal, id).await?,
    )))
}

/// Replace a provider's fields; an omitted PIN is kept. While keys are recorded in its
/// token, its module and token cannot change.
#[utoipa::path(put, path = "/hsm/providers/{provider_id}", tag = "hsm",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("provider_id" = i64, Path)),
    request_body = HsmProviderBody,
    responses((status = 200, description = "Updated", body = Envelope<HsmProviderView>),
              (status = 404, description = "No such provider", body = ErrorBody),
              (status = 409, description = "Name taken, or a provider with keys moved",
               body = ErrorBody),
              (status = 422, description = "A field breaks a rule", body = ErrorBody)))]
async fn update_provider(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<HsmProviderBody>,
) -> ApiResult<Response> {
    let provider = app
        .authority
        .update_hsm_provider(&principal, id, body.into_input())
        .await?;
    Ok(ok_with(provider_view(provider), "HSM provider updated"))
}

/// Delete a provider whose token holds no key certmint records.
#[utoipa::path(delete, path = "/hsm/providers/{provider_id}", tag = "hsm",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("provider_id" = i64, Path)),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such provider", body = ErrorBody),
              (status = 409, description = "Keys are recorded in its token", body = ErrorBody)))]
async fn delete_provider(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.delete_hsm_provider(&principal, id).await?;
    Ok(no_content())
}

/// Log in to the provider's token and say what it is and which key types it makes.
#[utoipa::path(post, path = "/hsm/providers/{provider_id}/test", tag = "hsm",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("provider_id" = i64, Path)),
    responses((status = 200, description = "The token", body = Envelope<HsmTokenView>),
              (status = 404, description = "No such provider", body = ErrorBody),
              (status = 422, description = "The token refused (a wrong PIN)", body = ErrorBody),
              (status = 503, description = "The module or token cannot be reached",
               body = ErrorBody)))]
async fn test_provider(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let t = app.authority.test_hsm_provider(&principal, id).await?;
    Ok(ok(HsmTokenView {
        label: t.label,
        manufacturer: t.manufacturer,
        model: t.model,
        serial_number: t.serial_number,
        slot_id: t.slot_id,
        key_types: t.key_types,
    }))
}

/// Record the signing keys in the token that certmint does not know yet, and list the
/// recorded keys the token no longer holds.
#[utoipa::path(post, path = "/hsm/providers/{provider_id}/sync", tag = "hsm",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("provider_id" = i64, Path)),
    responses((status = 200, description = "What the sync found", body = Envelope<HsmSyncView>),
              (status = 404, description = "No such provider", body = ErrorBody),
              (status = 503, description = "The token cannot be reached", body = ErrorBody)))]
async fn sync_provider(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let report = app.authority.sync_hsm_provider(&principal, id).await?;
    Ok(ok(HsmSyncView {
        found: report.found,
        added: report.added.into_iter().map(key_view).collect(),
        missing: report.missing.into_iter().map(key_view).collect(),
    }))
}

/// A key to generate in a token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HsmKeyBody {
    /// `CKA_LABEL`.
    pub label: String,
    /// `RSA-2048`, `RSA-3072`, `RSA-4096`, `EC-P256`, `EC-P384` or `Ed25519`.
    pub algorithm: String,
    /// `signing`, the only purpose certmint makes keys for.
    pub purpose: Option<String>,
    /// Must be false (or omitted): certmint makes only keys that never leave the token.
    #[serde(default)]
    pub extractable: bool,
}

/// Reads the reference's algorithm names (`RSA-2048`, `EC-P256`, `ECDSA-P384`, `Ed25519`)
/// and certmint's labels (`RSA 2048`, `EC P-256`).
pub(crate) fn key_type(algorithm: &str) -> ApiResult<KeyType> {
    let squashed = algorithm.replace(['-', ' ', '_'], "").to_ascii_uppercase();
    let label = match squashed.as_str() {
        "RSA2048" => "RSA 2048",
        "RSA3072" => "RSA 3072",
        "RSA4096" => "RSA 4096",
        "ECP256" | "ECDSAP256" | "P256" => "EC P-256",
        "ECP384" | "ECDSAP384" | "P384" => "EC P-384",
        "ED25519" => "Ed25519",
        _ => {
            return Err(ApiError::invalid(format!(
                "algorithm '{algorithm}' is not supported; use RSA-2048, RSA-3072, RSA-4096, \
                 EC-P256, EC-P384 or Ed25519"
            )));
        }
    };
    KeyType::from_label(label).map_err(|e| ApiError::invalid(e.to_string()))
}

/// Generate a key in the provider's token: sensitive, never extractable, for signing only.
#[utoipa::path(post, path = "/hsm/providers/{provider_id}/keys", tag = "hsm",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("provider_id" = i64, Path)),
    request_body = HsmKeyBody,
    responses((status = 201, description = "Generated", body = Envelope<HsmKeyView>),
              (status = 404, description = "No such provider", body = ErrorBody),
              (status = 422, description = "A field breaks a rule, or the token refused",
               body = ErrorBody),
              (status = 503, description = "The token cannot be reached", body = ErrorBody)))]
async fn generate_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<HsmKeyBody>,
) -> ApiResult<Response> {
    if body.extractable {
        return Err(ApiError::invalid(
            "certmint makes only keys that never leave the token; extractable must be false",
        ));
    }
    if body.purpose.as_deref().is_some_and(|p| p != "signing") {
        return Err(ApiError::invalid(
            "certmint makes token keys for signing only; purpose must be signing",
        ));
    }
    let key_type = key_type(&body.algorithm)?;
    let key = app
        .authority
        .generate_hsm_key(&principal, id, key_type, &body.label)
        .await?;
    Ok(created(key_view(key), "HSM key generated"))
}

/// A CA whose software key moves into the token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HsmImportBody {
    /// The CA.
    pub ca_id: i64,
    /// The key's label in the token; the CA's name when omitted.
    pub label: Option<String>,
}

/// Move a CA's software key into the provider's token, when the provider allows imports:
/// imported sensitive and not extractable, checked with a signature, then the sealed copy in
/// the database is erased (backups made before still hold it). The CA signs with the token
/// from then on.
#[utoipa::path(post, path = "/hsm/providers/{provider_id}/import", tag = "hsm",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("provider_id" = i64, Path)),
    request_body = HsmImportBody,
    responses((status = 200, description = "The key, now in the token", body = Envelope<HsmKeyView>),
              (status = 404, description = "No such provider or CA", body = ErrorBody),
              (status = 409, description = "The key is in a token already", body = ErrorBody),
              (status = 422, description = "The provider takes no imports, or the CA has no \
                key here", body = ErrorBody),
              (status = 503, description = "The token cannot be reached", body = ErrorBody)))]
async fn import_ca_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<HsmImportBody>,
) -> ApiResult<Response> {
    let key = app
        .authority
        .move_ca_key_to_hsm(&principal, id, CaId(body.ca_id), body.label)
        .await?;
    Ok(ok_with(key_view(key), "CA key moved into the HSM"))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HsmKeysQuery {
    /// Only this provider's keys.
    pub provider_id: Option<i64>,
}

/// The keys certmint records in tokens, with the CA each signs for.
#[utoipa::path(get, path = "/hsm/keys", tag = "hsm",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    params(HsmKeysQuery),
    responses((status = 200, description = "Keys", body = Envelope<Vec<HsmKeyView>>)))]
async fn list_keys(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<HsmKeysQuery>,
) -> ApiResult<Response> {
    let keys = app.authority.hsm_keys(&principal, q.provider_id).await?;
    Ok(ok(keys.into_iter().map(key_view).collect::<Vec<_>>()))
}

/// One key, with the protection flags its token reports (when it can be reached).
#[utoipa::path(get, path = "/hsm/keys/{key_id}", tag = "hsm",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    params(("key_id" = i64, Path)),
    responses((status = 200, description = "Key", body = Envelope<HsmKeyView>),
              (status = 404, description = "No such key", body = ErrorBody)))]
async fn get_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    Ok(ok(key_view(
        app.authority.hsm_key(&principal, KeyId(id)).await?,
    )))
}

/// Destroy a key in its token, unless a CA uses it.
#[utoipa::path(delete, path = "/hsm/keys/{key_id}", tag = "hsm",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("key_id" = i64, Path)),
    responses((status = 204, description = "Destroyed"),
              (status = 404, description = "No such key", body = ErrorBody),
              (status = 409, description = "A CA uses it", body = ErrorBody),
              (status = 503, description = "The token cannot be reached", body = ErrorBody)))]
async fn delete_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.delete_hsm_key(&principal, KeyId(id)).await?;
    Ok(no_content())
}

/// The key's public key.
#[derive(Debug, Serialize, ToSchema)]
pub struct HsmPublicKeyView {
    pub key_id: i64,
    /// PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub public_key_pem: String,
}

/// The key's public key, as JSON or, with `Accept: application/x-pem-file`, as a PEM file.
#[utoipa::path(get, path = "/hsm/keys/{key_id}/public", tag = "hsm",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    params(("key_id" = i64, Path)),
    responses((status = 200, description = "Public key", body = Envelope<HsmPublicKeyView>),
              (status = 404, description = "No such key", body = ErrorBody)))]
async fn public_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let der = app.authority.hsm_public_key(&principal, KeyId(id)).await?;
    let public_key_pem = pem::encode("PUBLIC KEY", &der);
    let wants_pem = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-pem-file"));
    if wants_pem {
        return Ok((
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            public_key_pem,
        )
            .into_response());
    }
    Ok(ok(HsmPublicKeyView {
        key_id: id,
        public_key_pem,
    }))
}

/// The provider types certmint knows, with their modules' usual paths.
#[utoipa::path(get, path = "/hsm/provider-types", tag = "hsm",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    responses((status = 200, description = "Types", body = Envelope<Vec<HsmTypeView>>)))]
async fn provider_types(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    principal.require(authority::Permission::ReadCas, "reading HSM provider types")?;
    let types: Vec<HsmTypeView> = app
        .authority
        .hsm_provider_types()
        .iter()
        .map(|t| HsmTypeView {
            name: t.name.into(),
            title: t.title.into(),
            modules: t.modules.iter().map(|m| (*m).into()).collect(),
            package: t.package.map(Into::into),
            notes: t.notes.into(),
        })
        .collect();
    Ok(ok(types))
}

/// Whether each type's module is on this machine, and what installs it.
#[utoipa::path(get, path = "/hsm/dependencies", tag = "hsm",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    responses((status = 200, description = "Dependencies", body = Envelope<Vec<HsmDependencyView>>)))]
async fn dependencies(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let dependencies = app.authority.hsm_dependencies(&principal)?;
    Ok(ok(dependencies
        .into_iter()
        .map(dependency_view)
        .collect::<Vec<_>>()))
}

/// Which provider type to install.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HsmInstallBody {
    /// A provider type (`softhsm2`, `opensc`, …).
    pub provider: String,
}

/// What the operator installs for a provider type. certmint installs nothing itself: it
/// does not run as root, and a package is the operator's choice.
#[utoipa::path(post, path = "/hsm/dependencies/install", tag = "hsm",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = HsmInstallBody,
    responses((status = 200, description = "What to install", body = Envelope<HsmDependencyView>),
              (status = 422, description = "No such type", body = ErrorBody)))]
async fn install_dependency(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<HsmInstallBody>,
) -> ApiResult<Response> {
    let dependency = app.authority.hsm_dependency(&principal, &body.provider)?;
    let message = match (&dependency.installed_module, &dependency.install) {
        (Some(module), _) => format!("the module is installed at {module}"),
        (None, Some(install)) => format!("certmint installs nothing itself; run: {install}"),
        (None, None) => "certmint installs nothing itself; install the vendor's module and add \
                         its path to [hsm] modules in the settings file"
            .to_owned(),
    };
    Ok(ok_with(dependency_view(dependency), &message))
}

/// The providers' tokens as this node sees them: available or not, why, sessions and
/// signatures.
#[utoipa::path(get, path = "/system/hsm-status", tag = "hsm",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    responses((status = 200, description = "Providers and their tokens", body = Envelope<Vec<HsmProviderView>>)))]
async fn status(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let providers = app.authority.hsm_status(&principal).await?;
    Ok(ok(providers
        .into_iter()
        .map(provider_view)
        .collect::<Vec<_>>()))
}
