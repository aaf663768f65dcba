//! `/acme/orders`: the orders clients placed.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json_text;
use crate::App;
use crate::envelope::{Envelope, Pagination, ok, page};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Caller};
use authority::acme::AcmeOrderDetails;
use authority::{AcmeFilter, AcmeOrderRow};

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(orders))
        .routes(routes!(order))
}

/// An ACME order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: i64,
    /// The identifier in its URL (`/acme/{profile}/order/{refid}`); `/acme/orders/{refid}`
    /// shows it here.
    pub refid: String,
    pub account_id: i64,
    /// pending, ready, processing, valid or invalid.
    pub status: String,
    /// The identifiers asked for: `[{"type", "value"}]`.
    #[schema(value_type = Object)]
    pub identifiers: Value,
    /// The authorizations with their challenges (in one order's view, not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub authorizations: Option<Value>,
    /// Why it became invalid: an RFC 7807 problem.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    /// The certificate issued for it.
    pub certificate_id: Option<i64>,
    /// The ARI identifier of the certificate it replaces (RFC 9773).
    pub replaces: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The account's profile (in one order's view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<i64>,
    /// The account's URL identifier (in one order's view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_refid: Option<String>,
}

impl OrderView {
    /// `o` as the API shows it; `detailed` adds its authorizations.
    pub fn new(o: AcmeOrderRow, detailed: bool) -> Self {
        Self {
            id: o.id,
            identifiers: json_text(&o.identifiers),
            authorizations: detailed.then(|| json_text(&o.authorizations)),
            error: o.error.as_deref().map(json_text),
            refid: o.refid,
            account_id: o.account_id,
            status: o.status.to_string(),
            certificate_id: o.certificate_id.map(i64::from),
            replaces: o.replaces,
            not_before: o.not_before,
            not_after: o.not_after,
            expires_at: o.expires_at,
            created_at: o.created_at,
            updated_at: o.updated_at,
            profile_id: None,
            account_refid: None,
        }
    }
}

impl From<AcmeOrderDetails> for OrderView {
    fn from(d: AcmeOrderDetails) -> Self {
        let (profile_id, account_refid) = match d.account {
            Some(a) => (Some(a.profile_id), Some(a.refid)),
            None => (None, None),
        };
        Self {
            profile_id,
            account_refid,
            ..Self::new(d.order, true)
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// Only orders of this profile's accounts.
    pub profile_id: Option<i64>,
    /// Only this account's orders.
    pub account_id: Option<i64>,
    /// pending, ready, processing, valid or invalid.
    pub status: Option<String>,
}

/// ACME orders, newest first.
#[utoipa::path(get, path = "/acme/orders", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    params(OrderQuery, Pagination),
    responses((status = 200, description = "Orders", body = Envelope<Vec<OrderView>>),
              (status = 400, description = "Unknown status", body = ErrorBody)))]
async fn orders(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<OrderQuery>,
    ApiQuery(p): ApiQuery<Pagination>,
) -> ApiResult<Response> {
    let request = p.request()?;
    let filter = AcmeFilter {
        profile_id: q.profile_id,
        account_id: q.account_id,
        status: q.status.filter(|s| !s.is_empty()),
    };
    let found = app
        .authority
        .acme_orders(&principal, &filter, request)
        .await?;
    let items = found
        .items
        .into_iter()
        .map(|o| OrderView::new(o, false))
        .collect();
    Ok(page(items, request, found.total))
}

/// One ACME order, with its authorizations, by the identifier in its URL (`refid`).
#[utoipa::path(get, path = "/acme/orders/{id}", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    params(("id" = String, Path, description = "The order's refid, as in its ACME URL")),
    responses((status = 200, description = "Order", body = Envelope<OrderView>),
              (status = 404, description = "No such order", body = ErrorBody)))]
async fn order(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(refid): Path<String>,
) -> ApiResult<Response> {
    let details = app.authority.acme_order_details(&principal, &refid).await?;
    Ok(ok(OrderView::from(details)))
}
