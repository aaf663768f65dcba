//! `/webhooks` (also at `/settings/webhooks`): the endpoints events are posted to, their
//! delivery log, a test event now, and a new secret. A secret is shown only when it is made.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, created, no_content, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id, parse_id};
use authority::{DeliveryRow, TestDelivery, Webhook, WebhookInput, WebhookWithSecret};

/// The routes, at `/webhooks` and at `/settings/webhooks` (the reference's alias).
pub fn routes() -> OpenApiRouter<App> {
    super::aliased(&["", "/settings"], endpoints)
}

fn endpoints() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(events))
        .routes(routes!(get_webhook, update, delete))
        .routes(routes!(toggle))
        .routes(routes!(test))
        .routes(routes!(regenerate_secret))
        .routes(routes!(deliveries))
        .routes(routes!(requeue))
}

/// A webhook endpoint. Its secret is never shown here.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: i64,
    pub name: String,
    pub url: String,
    /// The event types sent; empty sends every one.
    pub events: Vec<String>,
    /// The CAs whose events are sent; empty sends every CA's.
    pub ca_filter: Vec<i64>,
    /// Headers added to each request.
    pub custom_headers: BTreeMap<String, String>,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        Self {
            id: w.id,
            name: w.name,
            url: w.url,
            events: w.events,
            ca_filter: w.ca_filter,
            custom_headers: w.custom_headers,
            enabled: w.enabled,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A webhook endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSecretView {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The key of `X-Certmint-Signature`'s HMAC-SHA256. Not shown again.
    pub secret: String,
}

impl From<WebhookWithSecret> for WebhookSecretView {
    fn from(w: WebhookWithSecret) -> Self {
        Self {
            webhook: w.webhook.into(),
            secret: w.secret,
        }
    }
}

/// A webhook endpoint to create, or what to change in one (absent fields stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// 1 to 100 characters; required at creation.
    pub name: Option<String>,
    /// `http://` or `https://`; required at creation. Loopback, private and link-local
    /// targets are refused unless `[webhooks] allow_private_targets` is set.
    pub url: Option<String>,
    /// 16 to 256 characters; generated when absent at creation.
    pub secret: Option<String>,
    /// Event types (`GET /webhooks/events`); empty or absent: every one.
    pub events: Option<Vec<String>>,
    /// CA ids; empty or absent: every CA.
    pub ca_filter: Option<Vec<i64>>,
    /// At most 10 headers added to each request; certmint's own may not be replaced.
    pub custom_headers: Option<BTreeMap<String, String>>,
    pub enabled: Option<bool>,
}

impl From<WebhookBody> for WebhookInput {
    fn from(b: WebhookBody) -> Self {
        Self {
            name: b.name,
            url: b.url,
            secret: b.secret,
            events: b.events,
            ca_filter: b.ca_filter,
            custom_headers: b.custom_headers,
            enabled: b.enabled,
        }
    }
}

/// An event type.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    pub name: String,
    pub description: String,
}

/// One event's delivery to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub webhook_id: i64,
    /// The event's id, sent as `id` and `Idempotency-Key`.
    pub event_id: i64,
    pub event_type: String,
    /// `pending`, `failed` (to be tried again), `delivered` or `dead`.
    pub status: String,
    pub attempts: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    pub last_status_code: Option<i64>,
    pub latency_ms: Option<i64>,
    /// The first 512 bytes of the last answer.
    pub response_excerpt: Option<String>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        Self {
            id: d.id,
            webhook_id: d.endpoint_id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            latency_ms: d.latency_ms,
            response_excerpt: d.response_excerpt,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// How a test event was received.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestView {
    /// Whether the receiver answered 2xx.
    pub delivered: bool,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

impl From<TestDelivery> for TestView {
    fn from(t: TestDelivery) -> Self {
        Self {
            delivered: t.delivered,
            status_code: t.status_code,
            latency_ms: t.latency_ms,
            response_excerpt: t.response_excerpt,
            error: t.error,
        }
    }
}

/// `POST /{id}/toggle`: the state wanted, or the other one when absent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToggleBody {
    pub enabled: Option<bool>,
}

/// `?limit=`: how many deliveries, newest first (1 to 500, default 100).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    pub limit: Option<i64>,
}

/// The webhook endpoints, without their secrets.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Endpoints", body = Envelope<Vec<WebhookView>>)))]
async fn list(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let hooks = app.authority.webhooks(&principal).await?;
    Ok(ok(hooks
        .into_iter()
        .map(WebhookView::from)
        .collect::<Vec<_>>()))
}

/// Register an endpoint. The answer holds its secret, which is not shown again.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    request_body = WebhookBody,
    responses((status = 201, description = "Created", body = Envelope<WebhookSecretView>),
              (status = 422, description = "A bad name, URL, target, event or header", body = ErrorBody)))]
async fn create(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<WebhookBody>,
) -> ApiResult<Response> {
    let made = app
        .authority
        .create_webhook(&principal, body.into())
        .await?;
    Ok(created(
        WebhookSecretView::from(made),
        "webhook created; keep its secret, it is not shown again",
    ))
}

/// The event types an endpoint can ask for.
#[utoipa::path(get, path = "/webhooks/events", tag = "webhooks",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Event types", body = Envelope<Vec<EventTypeView>>)))]
async fn events(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(app
        .authority
        .webhook_event_types(&principal)?
        .iter()
        .map(|(name, description)| EventTypeView {
            name: (*name).to_owned(),
            description: (*description).to_owned(),
        })
        .collect::<Vec<_>>()))
}

/// One endpoint, without its secret.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("id" = i64, Path, description = "Endpoint id")),
    responses((status = 200, description = "Endpoint", body = Envelope<WebhookView>),
              (status = 404, description = "No such endpoint", body = ErrorBody)))]
async fn get_webhook(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    Ok(ok(WebhookView::from(
        app.authority.webhook(&principal, id).await?,
    )))
}

/// Change an endpoint; absent fields stay.
#[utoipa::path(put, path = "/webhooks/{id}", tag = "webhooks",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("id" = i64, Path, description = "Endpoint id")),
    request_body = WebhookBody,
    responses((status = 200, description = "Updated", body = Envelope<WebhookView>),
              (status = 404, description = "No such endpoint", body = ErrorBody),
              (status = 422, description = "A bad name, URL, target, event or header", body = ErrorBody)))]
async fn update(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<WebhookBody>,
) -> ApiResult<Response> {
    let hook = app
        .authority
        .update_webhook(&principal, id, body.into())
        .await?;
    Ok(ok_with(WebhookView::from(hook), "webhook updated"))
}

/// Remove an endpoint with its delivery log.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("id" = i64, Path, description = "Endpoint id")),
    responses((status = 204, description = "Removed"),
              (status = 404, description = "No such endpoint", body = ErrorBody)))]
async fn delete(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.delete_webhook(&principal, id).await?;
    Ok(no_content())
}

/// Turn an endpoint on or off (`{"enabled": …}`, or the other state without a body).
#[utoipa::path(post, path = "/webhooks/{id}/toggle", tag = "webhooks",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("id" = i64, Path, description = "Endpoint id")),
    request_body(content = Option<ToggleBody>),
    responses((status = 200, description = "Switched", body = Envelope<WebhookView>),
              (status = 404, description = "No such endpoint", body = ErrorBody)))]
async fn toggle(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let enabled = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<ToggleBody>(&body)
            .map_err(|e| crate::error::ApiError::bad_request(format!("bad JSON body: {e}")))?
            .enabled
    };
    let hook = app
        .authority
        .toggle_webhook(&principal, id, enabled)
        .await?;
    let state = if hook.enabled { "enabled" } else { "disabled" };
    Ok(ok_with(WebhookView::from(hook), format!("webhook {state}")))
}

/// Send a `test` event now and report how the receiver answered (not logged as a delivery).
#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "webhooks",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("id" = i64, Path, description = "Endpoint id")),
    responses((status = 200, description = "Sent; see delivered and status_code", body = Envelope<TestView>),
              (status = 404, description = "No such endpoint", body = ErrorBody)))]
async fn test(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let sent = app.authority.test_webhook(&principal, id).await?;
    Ok(ok(TestView::from(sent)))
}

/// Give an endpoint a new secret; the answer holds it, and it is not shown again.
#[utoipa::path(post, path = "/webhooks/{id}/regenerate-secret", tag = "webhooks",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("id" = i64, Path, description = "Endpoint id")),
    responses((status = 200, description = "New secret", body = Envelope<WebhookSecretView>),
              (status = 404, description = "No such endpoint", body = ErrorBody)))]
async fn regenerate_secret(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let made = app
        .authority
        .regenerate_webhook_secret(&principal, id)
        .await?;
    Ok(ok_with(
        WebhookSecretView::from(made),
        "new secret made; keep it, it is not shown again",
    ))
}

/// An endpoint's delivery log, newest first.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("id" = i64, Path, description = "Endpoint id"), DeliveriesQuery),
    responses((status = 200, description = "Deliveries", body = Envelope<Vec<DeliveryView>>),
              (status = 404, description = "No such endpoint", body = ErrorBody)))]
async fn deliveries(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Response> {
    let rows = app
        .authority
        .webhook_deliveries(&principal, id, query.limit.unwrap_or(100))
        .await?;
    Ok(ok(rows
        .into_iter()
        .map(DeliveryView::from)
        .collect::<Vec<_>>()))
}

/// Send a dead delivery again, at the delivery job's next run.
#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{delivery_id}/requeue", tag = "webhooks",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    params(("id" = i64, Path, description = "Endpoint id"),
           ("delivery_id" = i64, Path, description = "Delivery id")),
    responses((status = 200, description = "Queued", body = Envelope<DeliveryView>),
              (status = 404, description = "No such endpoint or delivery", body = ErrorBody),
              (status = 409, description = "The delivery is not dead", body = ErrorBody)))]
async fn requeue(
    State(app): State<App>,
    Caller(principal): Caller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (id, delivery_id) = (parse_id(&id)?, parse_id(&delivery_id)?);
    let row = app
        .authority
        .requeue_webhook_delivery(&principal, id, delivery_id)
        .await?;
    Ok(ok_with(DeliveryView::from(row), "delivery queued again"))
}
