//! `/login` and `/logout`: the same logins as `POST /api/v2/auth/login/password`,
//! `/auth/login/mtls` and `/sso/ldap/login` (same rate limit, lockout and session cookie),
//! from forms.

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
    /// Whether to offer certificate login.
    certificate_login: bool,
    /// The enabled single sign-on providers.
    providers: Vec<authority::sso::AvailableProvider>,
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
            certificate_login: certificate_login(&app).await,
            providers: providers(&app).await,
        },
    )
}

/// The enabled SSO providers; a database that cannot say shows none.
async fn providers(app: &App) -> Vec<authority::sso::AvailableProvider> {
    app.authority.sso_available().await.unwrap_or_default()
}

/// Whether mail is set up, for the reset link; a database that cannot say hides it.
async fn email_configured(app: &App) -> bool {
    app.authority.email_configured().await.unwrap_or(false)
}

/// Whether certificate login is on; a database that cannot say hides it.
async fn certificate_login(app: &App) -> bool {
    app.authority
        .mtls_settings()
        .await
        .is_ok_and(|settings| settings.enabled)
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
    let again = login_page(&app, next, &form.username).await;
    let origin = match admitted(&app, conn.as_ref(), &headers).await {
        Ok(origin) => origin,
        Err(e) => return again(e),
    };
    let step = app
        .authority
        .login(&form.username, &form.password, &origin)
        .await;
    first_step_done(
        &app,
        step,
        next,
        &origin,
        conn.is_some_and(|c| c.tls),
        Landing::Redirect,
        again,
    )
    .await
}

#[derive(Deserialize)]
pub struct CertificateForm {
    #[serde(default)]
    next: String,
}

/// POST `/login/certificate`: logs in with the TLS client certificate of this connection, as
/// `POST /api/v2/auth/login/mtls` does; the browser asks the user which certificate to present
/// when it connects.
pub async fn submit_certificate(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    Form(form): Form<CertificateForm>,
) -> Response {
    let conn = conn.map(|Extension(c)| c);
    let next = page::local_path(&form.next);
    let again = login_page(&app, next, "").await;
    let origin = match admitted(&app, conn.as_ref(), &headers).await {
        Ok(origin) => origin,
        Err(e) => return again(e),
    };
    let certificate = conn
        .as_ref()
        .and_then(|c| c.client_chain.as_ref())
        .and_then(|chain| chain.first())
        .map(|c| c.as_ref());
    let step = app
        .authority
        .login_with_certificate(certificate, &origin)
        .await;
    first_step_done(
        &app,
        step,
        next,
        &origin,
        conn.is_some_and(|c| c.tls),
        Landing::Redirect,
        again,
    )
    .await
}

#[derive(Deserialize)]
pub struct LdapForm {
    provider_id: i64,
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// POST `/login/ldap`: logs in with a directory's username and password at the LDAP
/// provider of the form, as `POST /api/v2/sso/ldap/login` does (same rate limit).
pub async fn submit_ldap(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    headers: HeaderMap,
    Form(form): Form<LdapForm>,
) -> Response {
    let conn = conn.map(|Extension(c)| c);
    let next = page::local_path(&form.next);
    let password = zeroize::Zeroizing::new(form.password);
    let again = login_page(&app, next, "").await;
    let origin = match admitted(&app, conn.as_ref(), &headers).await {
        Ok(origin) => origin,
        Err(e) => return again(e),
    };
    let step = app
        .authority
        .ldap_login(Some(form.provider_id), &form.username, &password, &origin)
        .await;
    first_step_done(
        &app,
        step,
        next,
        &origin,
        conn.is_some_and(|c| c.tls),
        Landing::Redirect,
        again,
    )
    .await
}

/// Where a login form's request came from, once the login rate limit every login door shares
/// has let it in.
async fn admitted(
    app: &App,
    conn: Option<&Conn>,
    headers: &HeaderMap,
) -> Result<authority::Origin, ApiError> {
    if let Some(c) = conn
        && let Err(retry_after) = app.limits.check_login(&app.authority, c.client).await
    {
        return Err(ApiError::rate_limited(retry_after));
    }
    Ok(access::origin(conn, headers))
}

/// The login page again with the reason a login was refused.
async fn login_page<'a>(
    app: &App,
    next: &'a str,
    username: &'a str,
) -> impl Fn(ApiError) -> Response + 'a {
    let email_configured = email_configured(app).await;
    let certificate_login = certificate_login(app).await;
    let passkey_script = super::passkeys::login_script(app);
    let providers = providers(app).await;
    move |e: ApiError| {
        page::render(
            e.status(),
            &LoginPage {
                head: Head::new(),
                next,
                username,
                error: Some(e.message().to_owned()),
                email_configured,
                passkey_script: passkey_script.clone(),
                certificate_login,
                providers: providers.clone(),
            },
        )
    }
}

/// The login page with the reason a login door refused, for the doors outside this module
/// (the OIDC redirect and callback).
pub(crate) async fn refused(app: &App, next: &str, e: ApiError) -> Response {
    (login_page(app, next, "").await)(e)
}

/// Where a single sign-on login's first step leads: as [`first_step_done`], except that a
/// finished login goes on through a page rather than a redirect. The browser arrives from the
/// provider's site, and a redirect would stay part of that cross-site navigation, which the
/// SameSite=Strict session cookie is not sent on; the page's own navigation is same-site.
pub(crate) async fn single_sign_on_done(
    app: &App,
    step: authority::Result<authority::LoginStep>,
    next: &str,
    origin: &authority::Origin,
    tls: bool,
) -> Response {
    let again = login_page(app, next, "").await;
    first_step_done(app, step, next, origin, tls, Landing::Page, again).await
}

/// How a finished login takes the browser on.
#[derive(Clone, Copy)]
enum Landing {
    /// A redirect: the login came from one of certmint's own pages.
    Redirect,
    /// A page that moves on by itself: the login came from another site.
    Page,
}

#[derive(Template)]
#[template(path = "console/signed_in.html")]
struct SignedInPage<'a> {
    head: Head,
    next: &'a str,
}

/// Where a login's first step leads, whichever door it came through: signed in, on to the
/// second factor (set up first when the role requires one and none is), or back with the
/// reason.
async fn first_step_done(
    app: &App,
    step: authority::Result<authority::LoginStep>,
    next: &str,
    origin: &authority::Origin,
    tls: bool,
    landing: Landing,
    refused: impl Fn(ApiError) -> Response,
) -> Response {
    match step {
        Ok(authority::LoginStep::Done(outcome)) => signed_in(app, &outcome, next, tls, landing),
        Ok(authority::LoginStep::SecondFactor(pending)) => {
            let enrollment = if pending.setup {
                match app.authority.login_totp_setup(&pending.token, origin).await {
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

/// On to `next` with the session cookie of `outcome`.
fn signed_in(
    app: &App,
    outcome: &authority::LoginOutcome,
    next: &str,
    tls: bool,
    landing: Landing,
) -> Response {
    let mut response = match landing {
        Landing::Redirect => Redirect::to(next).into_response(),
        Landing::Page => page::render(
            StatusCode::OK,
            &SignedInPage {
                head: Head::new(),
                next,
            },
        ),
    };
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
    let origin = match admitted(&app, conn.as_ref(), &headers).await {
        Ok(origin) => origin,
        Err(e) => return again(e),
    };
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
        return signed_in(&app, &outcome, next, tls, Landing::Redirect);
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
