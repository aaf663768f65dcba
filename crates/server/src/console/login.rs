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
    /// Whether to offer a password reset by mail.
    email_configured: bool,
    /// The passkey script, when passkeys can be used here.
    passkey_script: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// GET `/login`.
pub async fn form(State(app): State<App>, Query(q): Query<NextQuery>) -> Response {
    page::render(
        StatusCode::OK,
        &LoginPage {
            head: Head::new(),
            next: page::local_path(&q.next),
            username: "",
            error: None,
            email_configured: email_configured(&app).await,
            passkey_script: super::passkeys::login_script(&app),
        },
    )
}

/// Whether mail is set up, for the reset link; a database that cannot say hides it.
async fn email_configured(app: &App) -> bool {
    app.authority.email_configured().await.unwrap_or(false)
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
    let email_configured = email_configured(&app).await;
    let refused = |e: ApiError| {
        page::render(
            e.status(),
            &LoginPage {
                head: Head::new(),
                next,
                username: &form.username,
                error: Some(e.message().to_owned()),
                email_configured,
                passkey_script: super::passkeys::login_script(&app),
            },
        )
    };
    if let Some(c) = &conn
        && let Err(retry_after) = app.limits.check_login(&app.authority, c.client).await
    {
        return refused(ApiError::rate_limited(retry_after));
    }
    let origin = access::origin(conn.as_ref(), &headers);
    let tls = conn.is_some_and(|c| c.tls);
    match app
        .authority
        .login(&form.username, &form.password, &origin)
        .await
    {
        Ok(authority::LoginStep::Done(outcome)) => signed_in(&app, &outcome, next, tls),
        Ok(authority::LoginStep::SecondFactor(pending)) => {
            let enrollment = if pending.setup {
                match app
                    .authority
                    .login_totp_setup(&pending.token, &origin)
                    .await
                {
                    Ok(enrollment) => Some(enrollment),
                    Err(e) => return refused(e.into()),
                }
            } else {
                None
            };
            page::render(
                StatusCode::OK,
                &SecondFactorPage {
                    head: Head::new(),
                    next,
                    pending_token: &pending.token,
                    setup: pending.setup,
                    enrollment,
                    error: None,
                },
            )
        }
        Err(e) => refused(e.into()),
    }
}

/// A redirect to `next` with the session cookie of `outcome`.
fn signed_in(app: &App, outcome: &authority::LoginOutcome, next: &str, tls: bool) -> Response {
    let mut response = Redirect::to(next).into_response();
    with_cookie(app, &mut response, outcome, tls);
    response
}

fn with_cookie(app: &App, response: &mut Response, outcome: &authority::LoginOutcome, tls: bool) {
    let max_age = (outcome.expires_at - app.authority.now())
        .whole_seconds()
        .max(0);
    if let Some(cookie) = access::session_cookie(&outcome.token, max_age, tls) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
}

#[derive(Template)]
#[template(path = "console/login_2fa.html")]
struct SecondFactorPage<'a> {
    head: Head,
    next: &'a str,
    pending_token: &'a str,
    setup: bool,
    enrollment: Option<authority::TotpEnrollment>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/recovery_codes.html")]
struct RecoveryCodesPage<'a> {
    head: Head,
    next: &'a str,
    codes: &'a [String],
}

#[derive(Deserialize)]
pub struct SecondFactorForm {
    pending_token: String,
    code: String,
    #[serde(default)]
    setup: bool,
    #[serde(default)]
    next: String,
}

/// POST `/login/2fa`: the second step of a login, the same as `POST /api/v2/auth/login/2fa`
/// (same rate limit and counting). A login that set up an authenticator shows its recovery
/// codes once before going on.
pub async fn submit_second_factor(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    Form(form): Form<SecondFactorForm>,
) -> Response {
    let conn = conn.map(|Extension(c)| c);
    let next = page::local_path(&form.next);
    let again = |e: ApiError| {
        page::render(
            e.status(),
            &SecondFactorPage {
                head: Head::new(),
                next,
                pending_token: &form.pending_token,
                setup: form.setup,
                enrollment: None,
                error: Some(e.message().to_owned()),
            },
        )
    };
    if let Some(c) = &conn
        && let Err(retry_after) = app.limits.check_login(&app.authority, c.client).await
    {
        return again(ApiError::rate_limited(retry_after));
    }
    let origin = access::origin(conn.as_ref(), &headers);
    let tls = conn.is_some_and(|c| c.tls);
    let outcome = match app
        .authority
        .login_second_factor(&form.pending_token, &form.code, &origin)
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => return again(e.into()),
    };
    if outcome.recovery_codes.is_empty() {
        return signed_in(&app, &outcome, next, tls);
    }
    let mut response = page::render(
        StatusCode::OK,
        &RecoveryCodesPage {
            head: Head::new(),
            next,
            codes: &outcome.recovery_codes,
        },
    );
    with_cookie(&app, &mut response, &outcome, tls);
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
