//! `/system/security`: what is sealed under which master key, rotating the master key, and
//! the rotation's state.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(encryption_status))
        .routes(routes!(rotate_secrets))
        .routes(routes!(secrets_status))
}

/// How many blobs of a kind are sealed under one master-key version.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionCountView {
    /// Null for blobs in no format certmint knows (damaged).
    pub version: Option<u32>,
    pub count: i64,
}

/// The sealed blobs of one kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct SealedKindView {
    /// `ca_key`, `certificate_key`, `csr_key`, `other_key`, `webhook_secret`,
    /// `acme_eab_key`, `acme_nonce_key`, `totp_secret`, `smtp_password` or `https_listener_key`.
    pub kind: String,
    pub count: i64,
    /// By master-key version, oldest first.
    pub versions: Vec<VersionCountView>,
}

/// What is sealed, and under which master-key versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct EncryptionStatusView {
    /// Always true: every secret at rest is sealed.
    pub enabled: bool,
    /// The master-key version new secrets are sealed under.
    pub version: u32,
    /// The versions in the key file, oldest first (two while a rotation runs).
    pub key_versions: Vec<u32>,
    /// `file` (rotatable) or `environment` (CERTMINT_MASTER_KEY; not rotatable here).
    pub key_source: String,
    pub total: i64,
    /// Blobs not yet under `version`.
    pub under_older_keys: i64,
    pub sealed: Vec<SealedKindView>,
}

impl From<authority::master_key::EncryptionStatus> for EncryptionStatusView {
    fn from(s: authority::master_key::EncryptionStatus) -> Self {
        Self {
            enabled: s.enabled,
            version: s.version,
            key_versions: s.key_versions,
            key_source: s.key_source.to_owned(),
            total: s.total,
            under_older_keys: s.under_older_keys,
            sealed: s
                .sealed
                .into_iter()
                .map(|k| SealedKindView {
                    kind: k.kind,
                    count: k.count,
                    versions: k
                        .versions
                        .into_iter()
                        .map(|v| VersionCountView {
                            version: v.version,
                            count: v.count,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// The master-key rotation's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretsStatusView {
    /// `idle` or `in_progress`.
    pub state: String,
    pub current_version: u32,
    pub key_versions: Vec<u32>,
    /// `file` or `environment`.
    pub key_source: String,
    /// The versions the rotation under way (or the last one) went from and to.
    pub from_version: Option<u32>,
    pub to_version: Option<u32>,
    /// Sealed blobs under the current version, and in all.
    pub sealed_current: i64,
    pub sealed_total: i64,
    /// Blobs still to seal again.
    pub remaining: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When the last rotation finished.
    #[serde(with = "time::serde::rfc3339::option")]
    pub rotated_at: Option<OffsetDateTime>,
    /// Always null: rotation is started by people, never on a schedule.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_rotation: Option<OffsetDateTime>,
    /// Why the last run stopped, if it failed; rotating again resumes it.
    pub last_error: Option<String>,
}

impl From<authority::master_key::SecretsStatus> for SecretsStatusView {
    fn from(s: authority::master_key::SecretsStatus) -> Self {
        Self {
            state: s.state.to_owned(),
            current_version: s.current_version,
            key_versions: s.key_versions,
            key_source: s.key_source.to_owned(),
            from_version: s.from_version,
            to_version: s.to_version,
            sealed_current: s.sealed_current,
            sealed_total: s.sealed_total,
            remaining: s.remaining,
            started_at: s.started_at,
            rotated_at: s.rotated_at,
            next_rotation: s.next_rotation,
            last_error: s.last_error,
        }
    }
}

/// A rotation of the master key; `{}` for a fresh random key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// The new master key, 32 bytes as base64 or hex; a random one when absent. Refused
    /// while a rotation is under way (it already has its key).
    pub new_key: Option<String>,
}

impl std::fmt::Debug for RotateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RotateRequest(<redacted>)")
    }
}

/// What is sealed (CA keys, certificate keys, webhook, EAB and SMTP secrets, …), counted by
/// the master-key version each is sealed under.
#[utoipa::path(get, path = "/system/security/encryption-status", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Sealed secrets by kind and key version", body = Envelope<EncryptionStatusView>)))]
async fn encryption_status(
    State(app): State<App>,
    Caller(principal): Caller,
) -> ApiResult<Response> {
    Ok(ok(EncryptionStatusView::from(
        app.authority.encryption_status(&principal).await?,
    )))
}

/// Rotate the master key: a new key joins the key file, every sealed secret is sealed again
/// under it in the background, then the old key is retired. Asked again while a rotation
/// is stopped half-way (a crash), it resumes it.
#[utoipa::path(post, path = "/system/security/rotate-secrets", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = RotateRequest,
    responses((status = 202, description = "Under way", body = Envelope<SecretsStatusView>),
              (status = 409, description = "The key comes from the environment, or a rotation is running", body = ErrorBody),
              (status = 422, description = "A new_key that is not 32 bytes", body = ErrorBody)))]
async fn rotate_secrets(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(request): ApiJson<RotateRequest>,
) -> ApiResult<Response> {
    let status = app
        .authority
        .rotate_master_key_in_background(&principal, request.new_key.as_deref())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        ok_with(
            SecretsStatusView::from(status),
            "master key rotation under way",
        ),
    )
        .into_response())
}

/// The rotation's state: idle or under way, how many secrets are left, when the last one
/// finished.
#[utoipa::path(get, path = "/system/security/secrets-status", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Rotation state", body = Envelope<SecretsStatusView>)))]
async fn secrets_status(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(SecretsStatusView::from(
        app.authority.secrets_status(&principal).await?,
    )))
}
