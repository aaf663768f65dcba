//! `/forgot-password` and `/reset-password`: the password reset of
//! `POST /api/v2/auth/forgot-password` and `/reset-password` (same rate limit, same answers),
//! from forms. The mailed link opens `/reset-password?token=…`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::page::{self, Head};
use crate::App;
use crate::access;
use crate::error::ApiError;
use crate::listen::Conn;

#[derive(Template)]
#[template(path = "console/forgot_password.html")]
struct ForgotPage {
    head: Head,
    message: Option<String>,
    error: bool,
}

#[derive(Template)]
#[template(path = "console/reset_password.html")]
struct ResetPage<'a> {
    head: Head,
    token: &'a str,
    error: Option<String>,
}

/// GET `/forgot-password`.
pub async fn forgot_form() -> Response {
    page::render(
        StatusCode::OK,
        &ForgotPage {
            head: Head::new(),
            message: None,
            error: false,
        },
    )
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: String,
}

/// Checks the login rate limit for the connection's client.
async fn rate_limited(app: &App, conn: Option<&Conn>) -> Result<(), ApiError> {
    match conn {
        Some(c) => app
            .limits
            .check_login(&app.authority, c.client)
            .await
            .map_err(ApiError::rate_limited),
        None => Ok(()),
    }
}

/// POST `/forgot-password`: the same answer whatever the address.
pub async fn forgot_submit(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    Form(form): Form<ForgotForm>,
) -> Response {
    let conn = conn.map(|Extension(c)| c);
    let outcome = match rate_limited(&app, conn.as_ref()).await {
        Ok(()) => {
            let origin = access::origin(conn.as_ref(), &headers);
            app.authority
                .request_password_reset(&form.email, &app.public_base(), &origin)
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    let (status, message, error) = match outcome {
        Ok(()) => (
            StatusCode::OK,
            "If an account has this address, a link is on its way. It works once, for 30 minutes."
                .to_owned(),
            false,
        ),
        Err(e) => (e.status(), e.message().to_owned(), true),
    };
    page::render(
        status,
        &ForgotPage {
            head: Head::new(),
            message: Some(message),
            error,
        },
    )
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// GET `/reset-password?token=…`: the form for the new password.
pub async fn reset_form(Query(q): Query<TokenQuery>) -> Response {
    page::render(
        StatusCode::OK,
        &ResetPage {
            head: Head::new(),
            token: &q.token,
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    password: String,
}

/// POST `/reset-password`: sets the password and goes to the login page.
pub async fn reset_submit(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Response {
    let conn = conn.map(|Extension(c)| c);
    let done = match rate_limited(&app, conn.as_ref()).await {
        Ok(()) => {
            let origin = access::origin(conn.as_ref(), &headers);
            app.authority
                .reset_forgotten_password(&form.token, &form.password, &origin)
                .await
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => Redirect::to("/login").into_response(),
        Err(e) => page::render(
            e.status(),
            &ResetPage {
                head: Head::new(),
                token: &form.token,
                error: Some(e.message().to_owned()),
            },
        ),
    }
}
