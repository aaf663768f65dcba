//! `/system/webhooks`: the endpoints events are posted to — each one's latest delivery, a
//! form to register one, and per endpoint its settings, a switch, a test event, a new secret,
//! removal and its delivery log with a requeue of dead deliveries. Everything goes through
//! the authority's webhook functions, which check `admin:system` as they do for the REST API.
//!
//! A secret is shown once, on the page that answers its making (registration or a new
//! secret); no other page has it, since the authority gives it to no other call.

use std::collections::BTreeMap;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::choices::{self, Cas, Choice, name_of};
use super::form::{Form, lines, number};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::webhooks::{DeliveryView, TestView, WebhookView};
use crate::error::{ApiError, ApiResult};
use authority::WebhookInput;

/// The list.
const LIST: &str = "/system/webhooks";
/// Deliveries an endpoint's page shows, newest first.
const LOG_LENGTH: i64 = 100;

/// What an endpoint's form holds: its repeated fields (`events`, `ca_filter`) as ticked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WebhookForm {
    name: String,
    url: String,
    events: Vec<String>,
    ca_filter: Vec<String>,
    /// One `Name: value` a line.
    headers: String,
    enabled: bool,
}

impl WebhookForm {
    /// A new endpoint's form: enabled, every event.
    fn blank() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }

    /// The form of `hook`, to edit it.
    fn of(hook: &WebhookView) -> Self {
        Self {
            name: hook.name.clone(),
            url: hook.url.clone(),
            events: hook.events.clone(),
            ca_filter: hook.ca_filter.iter().map(i64::to_string).collect(),
            headers: hook
                .custom_headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}"))
                .collect::<Vec<_>>()
                .join("\n"),
            enabled: hook.enabled,
        }
    }

    fn from_fields(fields: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (name, value) in fields {
            match name.as_str() {
                "name" => form.name = value,
                "url" => form.url = value,
                "events" => form.events.push(value),
                "ca_filter" => form.ca_filter.push(value),
                "headers" => form.headers = value,
                "enabled" => form.enabled = true,
                _ => {}
            }
        }
        form
    }

    /// Whether event type `name` is ticked.
    fn sends(&self, name: &str) -> bool {
        self.events.iter().any(|e| e == name)
    }

    /// Whether CA `id` is ticked.
    fn filters(&self, id: &i64) -> bool {
        self.ca_filter.iter().any(|c| c.trim() == id.to_string())
    }

    /// The endpoint the authority takes: every field set, the secret left to it.
    fn to_input(&self) -> ApiResult<WebhookInput> {
        let ca_filter = self
            .ca_filter
            .iter()
            .filter_map(|c| number("ca_filter", c).transpose())
            .collect::<ApiResult<Vec<i64>>>()?;
        let mut custom_headers = BTreeMap::new();
        for line in lines(&self.headers) {
            let (name, value) = line.split_once(':').ok_or_else(|| {
                ApiError::invalid(format!(
                    "custom headers: '{line}' is not a line of the form 'Name: value'"
                ))
            })?;
            custom_headers.insert(name.trim().to_owned(), value.trim().to_owned());
        }
        Ok(WebhookInput {
            name: Some(self.name.trim().to_owned()),
            url: Some(self.url.trim().to_owned()),
            secret: None,
            events: Some(self.events.clone()),
            ca_filter: Some(ca_filter),
            custom_headers: Some(custom_headers),
            enabled: Some(self.enabled),
        })
    }
}

/// The event types an endpoint may ask for, with what they announce.
type EventTypes = &'static [(&'static str, &'static str)];

/// An endpoint as a row of the list.
pub struct Row {
    hook: WebhookView,
    /// Its CA filter by name; empty for every CA.
    cas: Vec<String>,
    /// Its newest delivery.
    last: Option<DeliveryView>,
}

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct ListPage {
    head: Head,
    frame: Frame,
    rows: Vec<Row>,
    events: EventTypes,
    cas: Vec<Choice>,
    /// The new endpoint's form, as sent when it was refused.
    form: WebhookForm,
    error: Option<String>,
}

/// The CA filter of `hook`, by name.
fn ca_names(hook: &WebhookView, cas: &[Choice]) -> Vec<String> {
    hook.ca_filter
        .iter()
        .map(|id| name_of(cas, *id, "CA"))
        .collect()
}

/// The list, with the new endpoint's `form` and a refusal of it.
async fn list_page(
    app: &App,
    visitor: &Visitor,
    form: WebhookForm,
    error: Option<ApiError>,
) -> Response {
    let frame = visitor.frame(LIST);
    let principal = &visitor.principal;
    let read = async {
        let events = app.authority.webhook_event_types(principal)?;
        let cas = choices::cas(app, &frame, Cas::All).await?;
        let mut rows = Vec::new();
        for hook in app.authority.webhooks(principal).await? {
            let last = app
                .authority
                .webhook_deliveries(principal, hook.id, 1)
                .await?
                .into_iter()
                .next()
                .map(DeliveryView::from);
            let hook = WebhookView::from(hook);
            rows.push(Row {
                cas: ca_names(&hook, &cas),
                hook,
                last,
            });
        }
        Ok::<_, ApiError>((events, cas, rows))
    };
    match read.await {
        Ok((events, cas, rows)) => page::render(
            error.as_ref().map_or(StatusCode::OK, ApiError::status),
            &ListPage {
                head: Head::new(),
                frame: visitor.frame(LIST),
                rows,
                events,
                cas,
                form,
                error: error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/system/webhooks`.
pub async fn list(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    list_page(&app, &visitor, WebhookForm::blank(), None).await
}

/// POST `/system/webhooks`: registers an endpoint and shows its page with the secret, once.
pub async fn create(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let form = WebhookForm::from_fields(fields);
    let made = async {
        Ok::<_, ApiError>(
            app.authority
                .create_webhook(&visitor.principal, form.to_input()?)
                .await?,
        )
    };
    match made.await {
        Ok(made) => {
            let shown = Shown {
                secret: Some(made.secret),
                ..Shown::default()
            };
            hook_page(&app, &visitor, made.webhook.id, StatusCode::CREATED, shown).await
        }
        Err(e) => list_page(&app, &visitor, form, Some(e)).await,
    }
}

/// What an endpoint's page shows once, as the answer to an action.
#[derive(Default)]
struct Shown {
    /// A secret just made.
    secret: Option<String>,
    /// A test event's outcome.
    test: Option<TestView>,
    /// The edit form as sent, when it was refused.
    form: Option<WebhookForm>,
    error: Option<ApiError>,
}

#[derive(Template)]
#[template(path = "console/webhook.html")]
struct HookPage {
    head: Head,
    frame: Frame,
    hook: WebhookView,
    /// Its CA filter by name.
    ca_names: Vec<String>,
    form: WebhookForm,
    events: EventTypes,
    cas: Vec<Choice>,
    deliveries: Vec<DeliveryView>,
    secret: Option<String>,
    test: Option<TestView>,
    error: Option<String>,
}

/// Endpoint `id`'s page, with `shown`; `status` when nothing was refused.
async fn hook_page(
    app: &App,
    visitor: &Visitor,
    id: i64,
    status: StatusCode,
    shown: Shown,
) -> Response {
    let frame = visitor.frame(LIST);
    let principal = &visitor.principal;
    let read = async {
        let hook = WebhookView::from(app.authority.webhook(principal, id).await?);
        let events = app.authority.webhook_event_types(principal)?;
        let cas = choices::cas(app, &frame, Cas::All).await?;
        let deliveries = app
            .authority
            .webhook_deliveries(principal, id, LOG_LENGTH)
            .await?
            .into_iter()
            .map(DeliveryView::from)
            .collect();
        Ok::<_, ApiError>((hook, events, cas, deliveries))
    };
    match read.await {
        Ok((hook, events, cas, deliveries)) => page::render(
            shown.error.as_ref().map_or(status, ApiError::status),
            &HookPage {
                head: Head::new(),
                frame: visitor.frame(LIST),
                ca_names: ca_names(&hook, &cas),
                form: shown.form.unwrap_or_else(|| WebhookForm::of(&hook)),
                hook,
                events,
                cas,
                deliveries,
                secret: shown.secret,
                test: shown.test,
                error: shown.error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// The path of endpoint `id`'s page, at `anchor`.
fn hook_path(id: i64, anchor: &str) -> String {
    format!("{LIST}/{id}{anchor}")
}

/// Back to endpoint `id`'s page at `anchor` once `done` succeeded; the page with the refusal
/// otherwise.
async fn then_back(
    app: &App,
    visitor: &Visitor,
    id: i64,
    done: impl Future<Output = ApiResult<()>>,
    anchor: &str,
) -> Response {
    match done.await {
        Ok(()) => Redirect::to(&hook_path(id, anchor)).into_response(),
        Err(e) => {
            let shown = Shown {
                error: Some(e),
                ..Shown::default()
            };
            hook_page(app, visitor, id, StatusCode::OK, shown).await
        }
    }
}

/// GET `/system/webhooks/{id}`.
pub async fn show(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    hook_page(&app, &visitor, id, StatusCode::OK, Shown::default()).await
}

/// POST `/system/webhooks/{id}`: its settings, as the form holds them.
pub async fn update(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let form = WebhookForm::from_fields(fields);
    let done = async {
        app.authority
            .update_webhook(&visitor.principal, id, form.to_input()?)
            .await?;
        Ok::<_, ApiError>(())
    };
    match done.await {
        Ok(()) => Redirect::to(&hook_path(id, "")).into_response(),
        Err(e) => {
            let shown = Shown {
                form: Some(form),
                error: Some(e),
                ..Shown::default()
            };
            hook_page(&app, &visitor, id, StatusCode::OK, shown).await
        }
    }
}

/// POST `/system/webhooks/{id}/toggle`: on when it was off, off when it was on.
pub async fn toggle(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    let done = async {
        app.authority
            .toggle_webhook(&visitor.principal, id, None)
            .await?;
        Ok(())
    };
    then_back(&app, &visitor, id, done, "").await
}

/// POST `/system/webhooks/{id}/delete`: the endpoint and its delivery log go.
pub async fn delete(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    match app.authority.delete_webhook(&visitor.principal, id).await {
        Ok(()) => Redirect::to(LIST).into_response(),
        Err(e) => {
            let shown = Shown {
                error: Some(e.into()),
                ..Shown::default()
            };
            hook_page(&app, &visitor, id, StatusCode::OK, shown).await
        }
    }
}

/// POST `/system/webhooks/{id}/test`: a test event now; the page says how it was received.
pub async fn test(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    let shown = match app.authority.test_webhook(&visitor.principal, id).await {
        Ok(test) => Shown {
            test: Some(test.into()),
            ..Shown::default()
        },
        Err(e) => Shown {
            error: Some(e.into()),
            ..Shown::default()
        },
    };
    hook_page(&app, &visitor, id, StatusCode::OK, shown).await
}

/// POST `/system/webhooks/{id}/secret`: a new secret, shown on the page this once.
pub async fn regenerate_secret(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    let shown = match app
        .authority
        .regenerate_webhook_secret(&visitor.principal, id)
        .await
    {
        Ok(made) => Shown {
            secret: Some(made.secret),
            ..Shown::default()
        },
        Err(e) => Shown {
            error: Some(e.into()),
            ..Shown::default()
        },
    };
    hook_page(&app, &visitor, id, StatusCode::OK, shown).await
}

/// POST `/system/webhooks/{id}/deliveries/{delivery}/requeue`: a dead delivery is sent again
/// by the delivery job's next run.
pub async fn requeue(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path((id, delivery)): Path<(i64, i64)>,
) -> Response {
    let done = async {
        app.authority
            .requeue_webhook_delivery(&visitor.principal, id, delivery)
            .await?;
        Ok(())
    };
    then_back(&app, &visitor, id, done, &format!("#delivery-{delivery}")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_form_becomes_the_endpoint_the_authority_takes() -> ApiResult<()> {
        let form = WebhookForm::from_fields(fields(&[
            ("csrf_token", "t"),
            ("name", " ops "),
            ("url", " https://hooks.example.com/x "),
            ("events", "certificate_issued"),
            ("events", "ca_created"),
            ("ca_filter", "3"),
            ("ca_filter", "4"),
            (
                "headers",
                "X-Team: pki\r\n\r\n Authorization :Bearer a:b \n",
            ),
        ]));
        assert!(form.sends("ca_created") && !form.sends("crl_published"));
        assert!(form.filters(&4) && !form.filters(&5));
        let input = form.to_input()?;
        assert_eq!(input.name.as_deref(), Some("ops"));
        assert_eq!(input.url.as_deref(), Some("https://hooks.example.com/x"));
        assert_eq!(
            input.events,
            Some(vec!["certificate_issued".into(), "ca_created".into()])
        );
        assert_eq!(input.ca_filter, Some(vec![3, 4]));
        let headers = input.custom_headers.unwrap_or_default();
        assert_eq!(headers.get("X-Team").map(String::as_str), Some("pki"));
        assert_eq!(
            headers.get("Authorization").map(String::as_str),
            Some("Bearer a:b"),
            "split at the first colon"
        );
        assert_eq!(input.enabled, Some(false), "an unticked box turns it off");
        assert_eq!(input.secret, None, "the secret is the authority's to make");

        let none = WebhookForm::from_fields(fields(&[("enabled", "1")])).to_input()?;
        assert_eq!(none.events, Some(vec![]), "nothing ticked: every event");
        assert_eq!(none.ca_filter, Some(vec![]));
        assert_eq!(none.enabled, Some(true));
        assert!(
            WebhookForm::from_fields(fields(&[("headers", "no colon here")]))
                .to_input()
                .is_err()
        );
        assert!(
            WebhookForm::from_fields(fields(&[("ca_filter", "three")]))
                .to_input()
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn an_endpoint_fills_its_form_as_it_would_send_it() -> ApiResult<()> {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let hook = WebhookView {
            id: 1,
            name: "ops".into(),
            url: "https://hooks.example.com/x".into(),
            events: vec!["crl_published".into()],
            ca_filter: vec![2],
            custom_headers: BTreeMap::from([
                ("X-A".into(), "1".into()),
                ("X-B".into(), "2".into()),
            ]),
            enabled: true,
            created_at: now,
            updated_at: now,
        };
        let form = WebhookForm::of(&hook);
        assert_eq!(form.headers, "X-A: 1\nX-B: 2");
        let input = form.to_input()?;
        assert_eq!(input.events, Some(hook.events.clone()));
        assert_eq!(input.ca_filter, Some(hook.ca_filter.clone()));
        assert_eq!(input.custom_headers, Some(hook.custom_headers.clone()));
        assert_eq!(input.enabled, Some(true));
        Ok(())
    }
}
