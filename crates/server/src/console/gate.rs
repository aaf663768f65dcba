//! Who may open which page. Every console route but the login page and the static files is
//! registered through [`page`] with what it needs, as every REST route declares its access:
//! the gate finds the session, refuses a visitor without the permission, checks the CSRF token
//! of every state-changing request, and hands the handler its [`Visitor`].

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::MethodRouter;

use super::page::{self, Visitor};
use crate::App;
use crate::access;
use crate::error::ApiError;
use crate::listen::Conn;

/// What a page needs beyond a live session.
pub type Needs = Option<authority::Permission>;

/// `route`, behind the gate.
pub fn page(app: &App, needs: Needs, route: MethodRouter<App>) -> MethodRouter<App> {
    route.route_layer(from_fn_with_state((app.clone(), needs), gate))
}

async fn gate(State((app, needs)): State<(App, Needs)>, req: Request, next: Next) -> Response {
    let conn = req.extensions().get::<Conn>().cloned();
    let Some(visitor) = page::visitor(&app, conn, req.headers()).await else {
        // A form posted from an ended session cannot be replayed after login: back to the
        // page it came from is the most that can be done.
        return if req.method() == Method::GET || req.method() == Method::HEAD {
            page::to_login(req.uri().path_and_query().map_or("/", |p| p.as_str()))
        } else {
            Redirect::to("/login").into_response()
        };
    };
    if let Some(permission) = needs
        && !visitor.principal.can(permission)
    {
        return page::refused(
            visitor.frame(""),
            &ApiError::forbidden(format!("this needs the permission '{permission}'")),
        );
    }
    let mut req = if req.method().is_safe() {
        req
    } else {
        match csrf_checked(&app, &visitor, req).await {
            Ok(req) => req,
            Err(e) => return page::refused(visitor.frame(""), &e),
        }
    };
    req.extensions_mut().insert(visitor);
    next.run(req).await
}

/// `req` with its body read back in, when it carries the session's CSRF token: in the
/// `X-CSRF-Token` header (htmx) or the form's `csrf_token` field. An upload
/// (`multipart/form-data`) carries it in the query string instead: a form without script
/// cannot set a header, and the upload, larger than any form, is streamed to disk by its page
/// rather than read here.
async fn csrf_checked(app: &App, visitor: &Visitor, req: Request) -> Result<Request, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("multipart/form-data") {
        let sent = csrf_field(req.uri().query().unwrap_or_default().as_bytes());
        return matching(visitor, sent.as_deref()).map(|()| req);
    }
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, app.settings.max_body_bytes)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"))?;
    let header = parts
        .headers
        .get(access::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let sent = header.or_else(|| is_form.then(|| csrf_field(&bytes)).flatten());
    matching(visitor, sent.as_deref())?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The `csrf_token` field of urlencoded `fields`.
fn csrf_field(fields: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(fields)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v)
}

fn matching(visitor: &Visitor, sent: Option<&str>) -> Result<(), ApiError> {
    if access::csrf_matches(&visitor.principal, sent.unwrap_or_default()) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this form is stale or was not sent from this console; reload the page",
        ))
    }
}
