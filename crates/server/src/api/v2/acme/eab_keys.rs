//! `/acme/profiles/{id}/eab-keys`: a profile's external account binding keys.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, created, no_content, ok};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller, Id, parse_id};
use authority::AcmeEabKeyRow;
use authority::acme::IssuedEabKey;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(eab_keys, create_eab_key))
        .routes(routes!(revoke_eab_key))
}

/// An external account binding key (never its HMAC key).
#[derive(Debug, Serialize, ToSchema)]
pub struct EabKeyView {
    pub id: i64,
    /// The key identifier clients send (`--eab-kid`).
    pub key_id: String,
    pub profile_id: i64,
    pub description: String,
    /// unused, used or revoked.
    pub status: String,
    /// The account it registered.
    pub account_id: Option<i64>,
    /// The user who made it.
    pub created_by: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<AcmeEabKeyRow> for EabKeyView {
    fn from(k: AcmeEabKeyRow) -> Self {
        let status = if k.revoked_at.is_some() {
            "revoked"
        } else if k.used_at.is_some() {
            "used"
        } else {
            "unused"
        };
        Self {
            id: k.id,
            key_id: k.key_id,
            profile_id: k.profile_id,
            description: k.description,
            status: status.to_owned(),
            account_id: k.account_id,
            created_by: k.created_by,
            created_at: k.created_at,
            used_at: k.used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key with its HMAC key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewEabKeyView {
    #[serde(flatten)]
    pub key: EabKeyView,
    /// The HMAC key, base64url (`--eab-hmac-key`). It is not shown again.
    pub hmac_key: String,
}

impl From<IssuedEabKey> for NewEabKeyView {
    fn from(k: IssuedEabKey) -> Self {
        Self {
            hmac_key: k.hmac_key.as_str().to_owned(),
            key: EabKeyView::from(k.key),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EabKeyCreate {
    /// Who or what the key is for.
    #[serde(default)]
    pub description: String,
}

/// A profile's external account binding keys, newest first (never their HMAC keys).
#[utoipa::path(get, path = "/acme/profiles/{id}/eab-keys", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    params(("id" = i64, Path, description = "Profile id")),
    responses((status = 200, description = "Keys", body = Envelope<Vec<EabKeyView>>),
              (status = 404, description = "No such profile", body = ErrorBody)))]
async fn eab_keys(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let keys = app.authority.acme_eab_keys(&principal, id).await?;
    Ok(ok(keys
        .into_iter()
        .map(EabKeyView::from)
        .collect::<Vec<_>>()))
}

/// Make an external account binding key for a profile. The HMAC key is in this answer only.
#[utoipa::path(post, path = "/acme/profiles/{id}/eab-keys", tag = "acme-admin",
    security(("session" = ["write:acme"]), ("api_key" = ["write:acme"])),
    params(("id" = i64, Path, description = "Profile id")),
    request_body = EabKeyCreate,
    responses((status = 201, description = "Created, with the HMAC key", body = Envelope<NewEabKeyView>),
              (status = 404, description = "No such profile", body = ErrorBody),
              (status = 422, description = "The description is too long", body = ErrorBody)))]
async fn create_eab_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<EabKeyCreate>,
) -> ApiResult<Response> {
    let key = app
        .authority
        .create_acme_eab_key(&principal, id, &body.description)
        .await?;
    Ok(created(
        NewEabKeyView::from(key),
        "External account binding key created; store the HMAC key now, it is not shown again",
    ))
}

/// Revoke an external account binding key, by its id or its key id: no account can register
/// with it any more. It stays listed, as revoked.
#[utoipa::path(delete, path = "/acme/profiles/{id}/eab-keys/{key_id}", tag = "acme-admin",
    security(("session" = ["write:acme"]), ("api_key" = ["write:acme"])),
    params(("id" = i64, Path, description = "Profile id"),
           ("key_id" = String, Path, description = "The key's id, or its key id (kid)")),
    responses((status = 204, description = "Revoked"),
              (status = 404, description = "No such profile or key", body = ErrorBody),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
async fn revoke_eab_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    app.authority
        .revoke_acme_eab_key(&principal, id, &key)
        .await?;
    Ok(no_content())
}
