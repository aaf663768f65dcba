//! `/login` and `/logout`: the same login as `POST /api/v2/auth/login/password` (same rate
//! limit, lockout and session cookie), from a form.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::page::{self, Head, Visitor};
use crate::App;
use crate::access;
use crate::error::ApiError;
use crate::listen::Conn;

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage<'a> {
    head: Head,
    next: &'a str,
    username: &'a str,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// GET `/login`.
pub async fn form(Query(q): Query<NextQuery>) -> Response {
    page::render(
        StatusCode::OK,
        &LoginPage {
            head: Head::new(),
            next: page::local_path(&q.next),
            username: "",
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// POST `/login`: on success, the session cookie and a redirect to the page asked for; on
/// failure, the form again with the reason (wrong credentials, locked, too many attempts).
pub async fn submit(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let conn = conn.map(|Extension(c)| c);
    let next = page::local_path(&form.next);
    let refused = |e: ApiError| {
        page::render(
            e.status(),
            &LoginPage {
                head: Head::new(),
                next,
                username: &form.username,
                error: Some(e.message().to_owned()),
            },
        )
    };
    if let Some(c) = &conn
        && let Err(retry_after) = app.limits.check_login(&app.authority, c.client).await
    {
        return refused(ApiError::rate_limited(retry_after));
    }
    let origin = access::origin(conn.as_ref(), &headers);
    let outcome = match app
        .authority
        .login(&form.username, &form.password, &origin)
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => return refused(e.into()),
    };
    let max_age = (outcome.expires_at - app.authority.now())
        .whole_seconds()
        .max(0);
    let mut response = Redirect::to(next).into_response();
    if let Some(cookie) =
        access::session_cookie(&outcome.token, max_age, conn.is_some_and(|c| c.tls))
    {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// POST `/logout`: ends the session (the gate has checked the form's CSRF token) and clears
/// the cookie.
pub async fn logout(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    let conn = conn.map(|Extension(c)| c);
    if let Err(e) = app.authority.logout(&visitor.principal).await {
        let e = ApiError::from(e);
        return (e.status(), e.message().to_owned()).into_response();
    }
    let mut response = Redirect::to("/login").into_response();
    if let Some(cookie) = access::session_cookie("", 0, conn.is_some_and(|c| c.tls)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
