//! `/acme/accounts`: the accounts clients registered.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json_text;
use crate::App;
use crate::envelope::{Envelope, Pagination, ok, ok_with, page};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Caller, Id};
use authority::{AcmeAccountRow, AcmeFilter};

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(accounts))
        .routes(routes!(account))
        .routes(routes!(deactivate_account))
}

/// An ACME account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: i64,
    /// The identifier in its URL (`/acme/{profile}/acct/{refid}`, its `kid`).
    pub refid: String,
    pub profile_id: i64,
    /// valid, deactivated or revoked.
    pub status: String,
    /// Contact URLs.
    pub contact: Vec<String>,
    pub terms_of_service_agreed: bool,
    /// The external account binding key it registered with.
    pub eab_key_id: Option<i64>,
    /// The client address it registered from.
    pub origin_ip: Option<String>,
    /// RFC 7638 thumbprint of its key.
    pub thumbprint: String,
    /// Its public key, a JWK.
    #[schema(value_type = Object)]
    pub jwk: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<AcmeAccountRow> for AccountView {
    fn from(a: AcmeAccountRow) -> Self {
        Self {
            id: a.id,
            jwk: json_text(&a.jwk),
            refid: a.refid,
            profile_id: a.profile_id,
            status: a.status.to_string(),
            contact: a.contact,
            terms_of_service_agreed: a.tos_agreed,
            eab_key_id: a.eab_key_id,
            origin_ip: a.origin_ip,
            thumbprint: a.thumbprint,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// Only this profile's accounts.
    pub profile_id: Option<i64>,
    /// valid, deactivated or revoked.
    pub status: Option<String>,
}

/// ACME accounts, newest first.
#[utoipa::path(get, path = "/acme/accounts", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    params(AccountQuery, Pagination),
    responses((status = 200, description = "Accounts", body = Envelope<Vec<AccountView>>),
              (status = 400, description = "Unknown status", body = ErrorBody)))]
async fn accounts(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<AccountQuery>,
    ApiQuery(p): ApiQuery<Pagination>,
) -> ApiResult<Response> {
    let request = p.request()?;
    let filter = AcmeFilter {
        profile_id: q.profile_id,
        account_id: None,
        status: q.status.filter(|s| !s.is_empty()),
    };
    let found = app
        .authority
        .acme_accounts(&principal, &filter, request)
        .await?;
    let items = found.items.into_iter().map(AccountView::from).collect();
    Ok(page(items, request, found.total))
}

/// One ACME account.
#[utoipa::path(get, path = "/acme/accounts/{id}", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, description = "Account", body = Envelope<AccountView>),
              (status = 404, description = "No such account", body = ErrorBody)))]
async fn account(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let account = app.authority.acme_account_details(&principal, id).await?;
    Ok(ok(AccountView::from(account)))
}

/// Deactivate an ACME account: it can make no more requests (RFC 8555 §7.3.6); its
/// certificates stay valid.
#[utoipa::path(post, path = "/acme/accounts/{id}/deactivate", tag = "acme-admin",
    security(("session" = ["write:acme"]), ("api_key" = ["write:acme"])),
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, description = "Deactivated", body = Envelope<AccountView>),
              (status = 404, description = "No such account", body = ErrorBody),
              (status = 409, description = "Already deactivated or revoked", body = ErrorBody)))]
async fn deactivate_account(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let account = app
        .authority
        .deactivate_acme_account(&principal, id)
        .await?;
    Ok(ok_with(
        AccountView::from(account),
        "ACME account deactivated",
    ))
}
