//! `/account`: one's own profile, password, API keys and sessions, for any signed-in visitor.
//! Each handler calls what the REST `/api/v2/account` handler calls; the password form is
//! rate-limited per address like `POST /api/v2/account/password` and the login form.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::{Form, Refusal, blank_is_none, number};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::account::{
    self as rest, ApiKeyCreate, ApiKeyView, IssuedKeyView, PasswordChange, SessionView,
};
use crate::api::v2::views::UserView;
use crate::error::{ApiError, ApiResult};
use crate::listen::Conn;

/// A form's fields, with the words a refusal uses for each, most specific first.
type Fields = &'static [(&'static str, &'static [&'static str])];

/// The fields of each form.
const FIELDS: &[(&str, Fields)] = &[
    (
        "profile",
        &[
            ("email", &["e-mail", "email"]),
            ("full_name", &["full_name", "full name"]),
        ],
    ),
    (
        "password",
        &[
            ("current_password", &["current password"]),
            ("new_password", &["password"]),
        ],
    ),
    (
        "key",
        &[
            ("expires_days", &["expires_days", "lifetime", "expir"]),
            ("permissions", &["permission"]),
            ("name", &["name"]),
        ],
    ),
];

/// A refusal of one of the page's forms, beside the field it names if it names one.
pub struct Notice {
    form: &'static str,
    refusal: Refusal,
}

impl Notice {
    fn new(form: &'static str, e: &ApiError) -> Self {
        let fields = FIELDS
            .iter()
            .find(|(f, _)| *f == form)
            .map_or(&[][..], |(_, fields)| *fields);
        Self {
            form,
            refusal: Refusal::of(e, fields),
        }
    }
}

/// The profile form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProfileForm {
    email: String,
    full_name: String,
}

/// The API key form, as sent: its permissions are a repeated field.
#[derive(Debug, Default)]
pub struct KeyForm {
    name: String,
    expires_days: String,
    permissions: Vec<String>,
}

impl KeyForm {
    fn from_fields(fields: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (name, value) in fields {
            match name.as_str() {
                "name" => form.name = value,
                "expires_days" => form.expires_days = value,
                "permissions" => form.permissions.push(value),
                _ => {}
            }
        }
        form
    }

    fn to_rest(&self) -> ApiResult<ApiKeyCreate> {
        Ok(ApiKeyCreate {
            name: self.name.trim().to_owned(),
            expires_days: number("expires_days", &self.expires_days)?,
            permissions: self.permissions.clone(),
        })
    }
}

/// An API key as a row of the list.
pub struct KeyRow {
    key: ApiKeyView,
    expires: Option<time::OffsetDateTime>,
    last_used: Option<time::OffsetDateTime>,
}

/// A session as a row of the list.
pub struct SessionRow {
    session: SessionView,
    created: time::OffsetDateTime,
    last_seen: time::OffsetDateTime,
}

#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountPage {
    head: Head,
    frame: Frame,
    user: UserView,
    profile: ProfileForm,
    keys: Vec<KeyRow>,
    sessions: Vec<SessionRow>,
    /// The permissions the visitor may put in a key: name and description.
    grantable: Vec<(&'static str, &'static str)>,
    key_form: KeyForm,
    /// A key just created, with its secret: shown on this answer only.
    issued: Option<IssuedKeyView>,
    notice: Option<Notice>,
    /// What a successful password change did.
    done: Option<String>,
    /// Where the visitor's second factor stands.
    second_factor: authority::SecondFactorStatus,
    /// An authenticator just set up, to scan: shown on this answer only.
    enrollment: Option<authority::TotpEnrollment>,
    /// Recovery codes just made: shown on this answer only.
    recovery_codes: Vec<String>,
    passkeys: super::passkeys::Section,
    /// Whether certificate login is on.
    certificate_login: bool,
    /// One's login certificates.
    login_certificates: Vec<authority::UserCertificateRow>,
    /// A login certificate just made, with its key: shown on this answer only.
    new_certificate: Option<NewCertificate>,
}

/// A login certificate just made: PEM of the certificate and of the key certmint generated.
pub struct NewCertificate {
    pub name: String,
    pub certificate_pem: String,
    pub private_key_pem: String,
}

impl AccountPage {
    /// The refusal of form `form`, when it names no field.
    fn error_of(&self, form: &str) -> Option<&str> {
        self.notice
            .as_ref()
            .filter(|n| n.form == form)
            .and_then(|n| n.refusal.general())
    }

    /// The refusal of form `form`, when it names `field`.
    fn error_for(&self, form: &str, field: &str) -> Option<&str> {
        self.notice
            .as_ref()
            .filter(|n| n.form == form)
            .and_then(|n| n.refusal.about(field))
    }

    /// Whether the key form asks for `permission`.
    fn asked(&self, permission: &str) -> bool {
        self.key_form.permissions.iter().any(|p| p == permission)
    }
}

/// What the page shows besides the account.
#[derive(Default)]
pub(super) struct Outcome {
    profile: Option<ProfileForm>,
    key_form: Option<KeyForm>,
    issued: Option<IssuedKeyView>,
    notice: Option<Notice>,
    done: Option<String>,
    enrollment: Option<authority::TotpEnrollment>,
    recovery_codes: Vec<String>,
    new_certificate: Option<NewCertificate>,
}

impl Outcome {
    /// The page showing a login certificate just made, with its key.
    pub(super) fn made(new_certificate: NewCertificate) -> Self {
        Self {
            new_certificate: Some(new_certificate),
            ..Self::default()
        }
    }
}

/// The account page with `outcome`, in `status` (unless reading it fails).
pub(super) async fn account_page(
    app: &App,
    visitor: &Visitor,
    status: StatusCode,
    outcome: Outcome,
) -> Response {
    let frame = visitor.frame("/account");
    let principal = &visitor.principal;
    let read = async {
        let user = UserView::new(principal.account()?.clone(), app.authority.now());
        let keys = rest::key_views(app, principal).await?;
        let sessions = rest::session_views(app, principal).await?;
        let second_factor = app.authority.second_factor_status(principal).await?;
        let passkeys = super::passkeys::Section::read(app, principal).await?;
        let certificate_login = app.authority.mtls_settings().await?.enabled;
        let login_certificates = app
            .authority
            .login_certificates(
                principal,
                authority::Reach::Own,
                None,
                authority::PageRequest {
                    page: 1,
                    per_page: 100,
                    after: None,
                },
            )
            .await?
            .items;
        Ok::<_, ApiError>((
            user,
            keys,
            sessions,
            second_factor,
            certificate_login,
            login_certificates,
            passkeys,
        ))
    };
    let (user, keys, sessions, second_factor, certificate_login, login_certificates, passkeys) =
        match read.await {
            Ok(read) => read,
            Err(e) => return page::refused(frame, &e),
        };
    let profile = outcome.profile.unwrap_or_else(|| ProfileForm {
        email: user.email.clone().unwrap_or_default(),
        full_name: user.full_name.clone().unwrap_or_default(),
    });
    page::render(
        status,
        &AccountPage {
            head: Head::new(),
            frame,
            user,
            profile,
            keys: keys
                .into_iter()
                .map(|key| KeyRow {
                    expires: key.expires_at,
                    last_used: key.last_used_at,
                    key,
                })
                .collect(),
            sessions: sessions
                .into_iter()
                .map(|session| SessionRow {
                    created: session.created_at,
                    last_seen: session.last_seen_at,
                    session,
                })
                .collect(),
            grantable: authority::Permission::ALL
                .iter()
                .filter(|p| principal.can(**p))
                .map(|p| (p.as_str(), p.description()))
                .collect(),
            key_form: outcome.key_form.unwrap_or_default(),
            issued: outcome.issued,
            notice: outcome.notice,
            done: outcome.done,
            second_factor,
            enrollment: outcome.enrollment,
            recovery_codes: outcome.recovery_codes,
            passkeys,
            certificate_login,
            login_certificates,
            new_certificate: outcome.new_certificate,
        },
    )
}

/// The page again with the refusal `e` of form `form`, in the refusal's status.
pub(super) async fn refused(
    app: &App,
    visitor: &Visitor,
    form: &'static str,
    e: &ApiError,
    outcome: Outcome,
) -> Response {
    let outcome = Outcome {
        notice: Some(Notice::new(form, e)),
        ..outcome
    };
    let mut response = account_page(app, visitor, StatusCode::OK, outcome).await;
    if response.status() == StatusCode::OK {
        *response.status_mut() = e.status();
    }
    response
}

/// GET `/account`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    account_page(&app, &visitor, StatusCode::OK, Outcome::default()).await
}

/// POST `/account/profile`: changes one's e-mail and full name (an empty field clears it).
pub async fn profile(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<ProfileForm>,
) -> Response {
    let owned = |text: &str| Some(blank_is_none(text).map(str::to_owned));
    match app
        .authority
        .update_profile(
            &visitor.principal,
            owned(&form.email),
            owned(&form.full_name),
        )
        .await
    {
        Ok(_) => Redirect::to("/account").into_response(),
        Err(e) => {
            let outcome = Outcome {
                profile: Some(form),
                ..Outcome::default()
            };
            refused(&app, &visitor, "profile", &e.into(), outcome).await
        }
    }
}

/// The password form. Neither password is ever sent back.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
}

/// POST `/account/password`: changes one's password and says what that did to one's other
/// sessions and API keys. Wrong current passwords count towards the lockout.
pub async fn password(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let changed = async {
        // The same per-address limit as the REST path and the login form: this form checks a
        // password too.
        if let Some(Extension(c)) = conn
            && let Err(retry_after) = app.limits.check_login(&app.authority, c.client).await
        {
            return Err(ApiError::rate_limited(retry_after));
        }
        let body = PasswordChange {
            current_password: form.current_password,
            new_password: form.new_password,
        };
        rest::password_change(&app, &visitor.principal, body).await
    };
    match changed.await {
        Ok((_, message)) => {
            let outcome = Outcome {
                done: Some(message),
                ..Outcome::default()
            };
            account_page(&app, &visitor, StatusCode::OK, outcome).await
        }
        Err(e) => refused(&app, &visitor, "password", &e, Outcome::default()).await,
    }
}

/// POST `/account/keys`: creates an API key and shows its secret on this answer only (201, not
/// a redirect: the secret is never kept to show later).
pub async fn create_key(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let form = KeyForm::from_fields(fields);
    let issued = async {
        let body = form.to_rest()?;
        rest::create_api_key(&app, &visitor.principal, body).await
    };
    match issued.await {
        Ok(issued) => {
            let outcome = Outcome {
                issued: Some(issued),
                ..Outcome::default()
            };
            account_page(&app, &visitor, StatusCode::CREATED, outcome).await
        }
        Err(e) => {
            let outcome = Outcome {
                key_form: Some(form),
                ..Outcome::default()
            };
            refused(&app, &visitor, "key", &e, outcome).await
        }
    }
}

/// POST `/account/keys/{id}/delete`: deletes one of one's API keys.
pub async fn delete_key(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    match app.authority.delete_api_key(&visitor.principal, id).await {
        Ok(()) => Redirect::to("/account").into_response(),
        Err(e) => refused(&app, &visitor, "keys", &e.into(), Outcome::default()).await,
    }
}

/// POST `/account/sessions/{id}/revoke`: ends one of one's sessions (the current one signs
/// the visitor out).
pub async fn revoke_session(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    match app.authority.revoke_session(&visitor.principal, id).await {
        Ok(()) => Redirect::to("/account").into_response(),
        Err(e) => refused(&app, &visitor, "sessions", &e.into(), Outcome::default()).await,
    }
}

/// POST `/account/2fa/enable`: sets up an authenticator and shows its QR code and secret on
/// this answer only; the code form below confirms it.
pub async fn enable_second_factor(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    match app.authority.totp_enable(&visitor.principal).await {
        Ok(enrollment) => {
            let outcome = Outcome {
                enrollment: Some(enrollment),
                ..Outcome::default()
            };
            account_page(&app, &visitor, StatusCode::OK, outcome).await
        }
        Err(e) => refused(&app, &visitor, "2fa", &e.into(), Outcome::default()).await,
    }
}

/// The code form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    code: String,
    password: String,
}

/// POST `/account/2fa/confirm`: confirms the new authenticator with its first code and shows
/// the recovery codes once.
pub async fn confirm_second_factor(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<CodeForm>,
) -> Response {
    let made = app
        .authority
        .totp_confirm(&visitor.principal, &form.code)
        .await;
    recovery_codes_shown(&app, &visitor, made).await
}

/// The page showing recovery codes just made, once; or the second-factor form's refusal.
async fn recovery_codes_shown(
    app: &App,
    visitor: &Visitor,
    made: authority::Result<Vec<String>>,
) -> Response {
    match made {
        Ok(recovery_codes) => {
            let outcome = Outcome {
                recovery_codes,
                ..Outcome::default()
            };
            account_page(app, visitor, StatusCode::OK, outcome).await
        }
        Err(e) => refused(app, visitor, "2fa", &e.into(), Outcome::default()).await,
    }
}

/// POST `/account/2fa/disable`: turns the second factor off, given a code or the password.
/// Rate-limited like the password form: it checks one.
pub async fn disable_second_factor(
    State(app): State<App>,
    conn: Option<Extension<Conn>>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<CodeForm>,
) -> Response {
    let done = async {
        if let Some(Extension(c)) = conn
            && let Err(retry_after) = app.limits.check_login(&app.authority, c.client).await
        {
            return Err(ApiError::rate_limited(retry_after));
        }
        app.authority
            .totp_disable(
                &visitor.principal,
                blank_is_none(&form.code),
                blank_is_none(&form.password),
            )
            .await
            .map_err(ApiError::from)
    };
    match done.await {
        Ok(()) => Redirect::to("/account").into_response(),
        Err(e) => refused(&app, &visitor, "2fa", &e, Outcome::default()).await,
    }
}

/// POST `/account/2fa/recovery-codes`: replaces the recovery codes and shows the new ones once.
pub async fn regenerate_recovery_codes(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    let made = app
        .authority
        .regenerate_recovery_codes(&visitor.principal)
        .await;
    recovery_codes_shown(&app, &visitor, made).await
}

/// POST `/account/sessions/revoke-others`: ends all of one's sessions but this one.
pub async fn revoke_other_sessions(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    match app
        .authority
        .revoke_other_sessions(&visitor.principal)
        .await
    {
        Ok(_) => Redirect::to("/account").into_response(),
        Err(e) => refused(&app, &visitor, "sessions", &e.into(), Outcome::default()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_shown_beside_the_field_it_names() {
        for (form, message, field) in [
            (
                "profile",
                "'x' is not a valid e-mail address",
                Some("email"),
            ),
            (
                "profile",
                "full_name must be 0 to 200 characters long",
                Some("full_name"),
            ),
            (
                "password",
                "the current password is wrong",
                Some("current_password"),
            ),
            (
                "password",
                "password must be at least 12 characters long",
                Some("new_password"),
            ),
            (
                "password",
                "the new password must differ from the current one",
                Some("new_password"),
            ),
            (
                "password",
                "too many requests; retry after 30 seconds",
                None,
            ),
            ("key", "name must be 1 to 100 characters long", Some("name")),
            (
                "key",
                "permissions must name at least one permission",
                Some("permissions"),
            ),
            (
                "key",
                "you cannot grant the permission 'write:users', which you do not hold",
                Some("permissions"),
            ),
            (
                "key",
                "expires_days must be between 1 and 3650",
                Some("expires_days"),
            ),
            ("sessions", "no active session 9", None),
        ] {
            let e = ApiError::invalid(message);
            assert_eq!(
                Notice::new(form, &e).refusal.field(),
                field,
                "{form}: {message}"
            );
        }
    }

    #[test]
    fn the_key_form_becomes_the_rest_request() -> ApiResult<()> {
        let form = KeyForm::from_fields(vec![
            ("csrf_token".into(), "t".into()),
            ("name".into(), " deploy ".into()),
            ("permissions".into(), "read:certificates".into()),
            ("permissions".into(), "read:audit".into()),
            ("expires_days".into(), "30".into()),
        ]);
        let body = form.to_rest()?;
        assert_eq!(body.name, "deploy");
        assert_eq!(body.permissions, ["read:certificates", "read:audit"]);
        assert_eq!(body.expires_days, Some(30));
        let forever = KeyForm::from_fields(vec![("name".into(), "k".into())]).to_rest()?;
        assert_eq!(forever.expires_days, None);
        let bad = KeyForm::from_fields(vec![("expires_days".into(), "soon".into())]);
        assert!(bad.to_rest().is_err());
        Ok(())
    }
}
