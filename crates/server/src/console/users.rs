//! `/users`: the users with their roles and status, creating one from a form, and on a user's
//! page changing its details and role, activating or deactivating it, setting its password and
//! deleting it. Each handler translates its form into the request the REST handler builds and
//! calls the same function, so the authority's rules (no one disables or deletes themselves,
//! the last admin stays) hold here too.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::{Form, Refusal, blank_is_none};
use super::page::{self, Frame, Head, Pager, Visitor, filters};
use crate::App;
use crate::api::v2::users::{self as rest, UserCreate, UserQuery, UserUpdate};
use crate::api::v2::views::UserView;
use crate::error::{ApiError, ApiResult};

/// Rows on a page of the list.
const PER_PAGE: u32 = 50;

/// The roles a user may be given, in the order the forms offer them.
fn roles() -> Vec<&'static str> {
    authority::Role::ALL.iter().map(|r| r.as_str()).collect()
}

/// The list's filters, as the query string carries them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    role: String,
    active: String,
    search: String,
    page: Option<u32>,
}

impl ListQuery {
    /// The filters, as the query string names them.
    fn filters(&self) -> [(&'static str, &str); 3] {
        [
            ("role", &self.role),
            ("active", &self.active),
            ("search", &self.search),
        ]
    }

    fn to_rest(&self) -> ApiResult<UserQuery> {
        let active = match blank_is_none(&self.active) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "active must be true or false, not '{other}'"
                )));
            }
        };
        Ok(UserQuery {
            role: blank_is_none(&self.role).map(str::to_owned),
            active,
            search: blank_is_none(&self.search).map(str::to_owned),
        })
    }
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct ListPage {
    head: Head,
    frame: Frame,
    query: ListQuery,
    roles: Vec<&'static str>,
    rows: Vec<UserView>,
    pager: Pager,
    error: Option<String>,
}

/// GET `/users`.
pub async fn list(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<ListQuery>,
) -> Response {
    let page = query.page.unwrap_or(1).max(1);
    let read = async {
        let request = authority::PageRequest {
            page,
            per_page: PER_PAGE,
            after: None,
        };
        rest::users_page(&app, query.to_rest()?, request).await
    };
    let (rows, total, error, status) = match read.await {
        Ok((rows, total)) => (rows, total, None, StatusCode::OK),
        Err(e) => (Vec::new(), 0, Some(e.message().to_owned()), e.status()),
    };
    page::render(
        status,
        &ListPage {
            head: Head::new(),
            frame: visitor.frame("/users"),
            pager: Pager::new("/users", &query.filters(), page, PER_PAGE, total),
            query,
            roles: roles(),
            rows,
            error,
        },
    )
}

/// The fields of the user forms, with the words a refusal uses for each.
const USER_FIELDS: &[(&str, &[&str])] = &[
    ("username", &["username"]),
    ("email", &["e-mail", "email"]),
    ("full_name", &["full_name", "full name"]),
    ("password", &["password"]),
    ("role", &["role", "admin"]),
];

/// What the creation form holds, kept to fill it again after a refusal (the password is not
/// sent back).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateForm {
    username: String,
    email: String,
    full_name: String,
    role: String,
    password: String,
}

impl CreateForm {
    fn to_rest(&self) -> UserCreate {
        let owned = |text: &str| blank_is_none(text).map(str::to_owned);
        UserCreate {
            username: self.username.trim().to_owned(),
            email: owned(&self.email),
            // A password is taken as typed: spaces may be part of it.
            password: Some(self.password.clone()).filter(|p| !p.is_empty()),
            role: self.role.trim().to_owned(),
            full_name: owned(&self.full_name),
        }
    }
}

#[derive(Template)]
#[template(path = "console/user_new.html")]
struct CreatePage {
    head: Head,
    frame: Frame,
    form: CreateForm,
    roles: Vec<&'static str>,
    refusal: Option<Refusal>,
}

impl CreatePage {
    /// The refusal, when it names `field`.
    fn error_for(&self, field: &str) -> Option<&str> {
        self.refusal.as_ref().and_then(|r| r.about(field))
    }

    /// The refusal, when it names no field of the form.
    fn general_error(&self) -> Option<&str> {
        self.refusal.as_ref().and_then(Refusal::general)
    }

    /// The text fields of the form: name, label, type, value.
    fn text_fields(&self) -> [(&'static str, &'static str, &'static str, &str); 3] {
        [
            ("username", "Username", "text", &self.form.username),
            ("full_name", "Full name", "text", &self.form.full_name),
            ("email", "E-mail", "email", &self.form.email),
        ]
    }
}

fn create_page(visitor: &Visitor, form: CreateForm, error: Option<ApiError>) -> Response {
    let status = error.as_ref().map_or(StatusCode::OK, ApiError::status);
    page::render(
        status,
        &CreatePage {
            head: Head::new(),
            frame: visitor.frame("/users"),
            form: CreateForm {
                password: String::new(),
                ..form
            },
            roles: roles(),
            refusal: error.as_ref().map(|e| Refusal::of(e, USER_FIELDS)),
        },
    )
}

/// GET `/users/new`.
pub async fn new(Extension(visitor): Extension<Visitor>) -> Response {
    let form = CreateForm {
        role: authority::Role::Viewer.as_str().to_owned(),
        ..CreateForm::default()
    };
    create_page(&visitor, form, None)
}

/// POST `/users/new`: creates the user and shows it; a password generated for it (when the
/// form left it empty) is shown on that answer only. On a refusal, the form again with the
/// reason beside the field it names.
pub async fn create(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<CreateForm>,
) -> Response {
    match rest::create_user(&app, &visitor.principal, form.to_rest()).await {
        Ok(created) => match created.generated_password {
            Some(secret) => {
                let mut response = detail(
                    &app,
                    &visitor,
                    created.user.id,
                    Shown::Secret("Initial password", secret),
                )
                .await;
                if response.status() == StatusCode::OK {
                    *response.status_mut() = StatusCode::CREATED;
                }
                response
            }
            None => Redirect::to(&format!("/users/{}", created.user.id)).into_response(),
        },
        Err(e) => create_page(&visitor, form, Some(e)),
    }
}

/// The edit form's fields.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EditForm {
    email: String,
    full_name: String,
    role: String,
}

impl EditForm {
    fn of(user: &UserView) -> Self {
        Self {
            email: user.email.clone().unwrap_or_default(),
            full_name: user.full_name.clone().unwrap_or_default(),
            role: user.role.clone(),
        }
    }

    /// The REST update: an empty e-mail or name clears it, as `null` does there.
    fn to_rest(&self) -> UserUpdate {
        let owned = |text: &str| blank_is_none(text).map(str::to_owned);
        UserUpdate {
            email: Some(owned(&self.email)),
            full_name: Some(owned(&self.full_name)),
            role: owned(&self.role),
        }
    }
}

/// What the user's page shows besides the user.
enum Shown {
    Nothing,
    /// A password just generated, with what it is: shown on this answer only.
    Secret(&'static str, String),
    /// The edit form as sent, and why it was refused.
    Edit(EditForm, Refusal),
    /// Why the form `0` (toggle, password or delete) was refused.
    Refused(&'static str, String),
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct DetailPage {
    head: Head,
    frame: Frame,
    user: UserView,
    last_login: Option<time::OffsetDateTime>,
    created: time::OffsetDateTime,
    edit: EditForm,
    roles: Vec<&'static str>,
    /// A generated password and what it is.
    secret: Option<(&'static str, String)>,
    /// The form a refusal belongs to, the field it names, and the refusal.
    refusal: Option<(&'static str, Refusal)>,
    /// Whether this is the visitor's own account (which it may not disable or delete).
    own: bool,
}

impl DetailPage {
    /// The refusal of form `form`, when it names no field.
    fn error_of(&self, form: &str) -> Option<&str> {
        self.refusal
            .as_ref()
            .filter(|(f, _)| *f == form)
            .and_then(|(_, r)| r.general())
    }

    /// The refusal of the edit form, when it names `field`.
    fn error_for(&self, field: &str) -> Option<&str> {
        self.refusal
            .as_ref()
            .filter(|(f, _)| *f == "edit")
            .and_then(|(_, r)| r.about(field))
    }
}

/// The page of user `id`, with `shown`.
async fn detail(app: &App, visitor: &Visitor, id: i64, shown: Shown) -> Response {
    let frame = visitor.frame("/users");
    let user = match app.authority.user(id).await {
        Ok(user) => UserView::new(user, app.authority.now()),
        Err(e) => return page::refused(frame, &e.into()),
    };
    let (edit, secret, refusal) = match shown {
        Shown::Nothing => (EditForm::of(&user), None, None),
        Shown::Secret(what, secret) => (EditForm::of(&user), Some((what, secret)), None),
        Shown::Edit(form, refusal) => (form, None, Some(("edit", refusal))),
        Shown::Refused(form, message) => (
            EditForm::of(&user),
            None,
            Some((form, Refusal::plain(message))),
        ),
    };
    page::render(
        StatusCode::OK,
        &DetailPage {
            head: Head::new(),
            frame,
            last_login: user.last_login,
            created: user.created_at,
            own: visitor.principal.account().is_ok_and(|u| u.id == id),
            user,
            edit,
            roles: roles(),
            secret,
            refusal,
        },
    )
}

/// GET `/users/{id}`.
pub async fn show(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    detail(&app, &visitor, id, Shown::Nothing).await
}

/// The user's page again with `shown`, in the status of the refusal `e` (unless the user is
/// gone, which is its own 404).
async fn failed(app: &App, visitor: &Visitor, id: i64, shown: Shown, e: &ApiError) -> Response {
    let mut response = detail(app, visitor, id, shown).await;
    if response.status() == StatusCode::OK {
        *response.status_mut() = e.status();
    }
    response
}

/// POST `/users/{id}/edit`: changes the e-mail, full name and role, then shows the user.
pub async fn edit(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<EditForm>,
) -> Response {
    match rest::update_user(&app, &visitor.principal, id, form.to_rest()).await {
        Ok(_) => Redirect::to(&format!("/users/{id}")).into_response(),
        Err(e) => {
            let refusal = Refusal::of(&e, USER_FIELDS);
            failed(&app, &visitor, id, Shown::Edit(form, refusal), &e).await
        }
    }
}

/// POST `/users/{id}/toggle`: activates an inactive user or deactivates an active one.
pub async fn toggle(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    match app.authority.toggle_user(&visitor.principal, id).await {
        Ok(_) => Redirect::to(&format!("/users/{id}")).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            let shown = Shown::Refused("toggle", e.message().to_owned());
            failed(&app, &visitor, id, shown, &e).await
        }
    }
}

/// The password form: empty to have one generated.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    new_password: String,
}

/// POST `/users/{id}/password`: sets the user's password (generated, and shown on this answer
/// only, when the form leaves it empty), clears its lockout and ends its sessions.
pub async fn password(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let given = Some(form.new_password.as_str()).filter(|p| !p.is_empty());
    match app
        .authority
        .reset_password(&visitor.principal, id, given)
        .await
    {
        Ok(Some(secret)) => {
            let shown = Shown::Secret("New password", secret.to_string());
            detail(&app, &visitor, id, shown).await
        }
        Ok(None) => Redirect::to(&format!("/users/{id}")).into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            let shown = Shown::Refused("password", e.message().to_owned());
            failed(&app, &visitor, id, shown, &e).await
        }
    }
}

/// The deletion form: its box must be ticked.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    confirm: String,
}

/// POST `/users/{id}/delete`: with the box ticked, deletes the user with its sessions and API
/// keys, then shows the list.
pub async fn delete(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let deleted = async {
        if form.confirm.is_empty() {
            return Err(ApiError::invalid("tick the box to confirm the deletion"));
        }
        Ok(app.authority.delete_user(&visitor.principal, id).await?)
    };
    match deleted.await {
        Ok(()) => Redirect::to("/users").into_response(),
        Err(e) => {
            let shown = Shown::Refused("delete", e.message().to_owned());
            failed(&app, &visitor, id, shown, &e).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_shown_beside_the_field_it_names() {
        for (message, field) in [
            (
                "username must be 1 to 64 characters of letters, digits, '.', '_', '-' or '@'",
                Some("username"),
            ),
            ("username 'vera' is taken", Some("username")),
            ("'x' is not a valid e-mail address", Some("email")),
            (
                "full_name must be 0 to 200 characters long",
                Some("full_name"),
            ),
            (
                "password must be at least 12 characters long",
                Some("password"),
            ),
            (
                "unknown role 'root'; expected one of admin, operator, auditor, viewer",
                Some("role"),
            ),
            (
                "this is the last enabled admin; make another admin first",
                Some("role"),
            ),
            ("something else", None),
        ] {
            let e = ApiError::invalid(message);
            assert_eq!(Refusal::of(&e, USER_FIELDS).field(), field, "{message}");
        }
    }

    #[test]
    fn forms_become_the_rest_requests() {
        let form = CreateForm {
            username: " vera ".into(),
            email: String::new(),
            full_name: "Vera V".into(),
            role: "viewer".into(),
            password: " spaced secret ".into(),
        };
        let body = form.to_rest();
        assert_eq!(body.username, "vera");
        assert_eq!(body.email, None);
        assert_eq!(body.password.as_deref(), Some(" spaced secret "));
        assert_eq!(
            CreateForm::default().to_rest().password,
            None,
            "an empty password is generated"
        );
        let edit = EditForm {
            email: " ".into(),
            full_name: "V".into(),
            role: "auditor".into(),
        }
        .to_rest();
        assert_eq!(edit.email, Some(None), "an empty e-mail clears it");
        assert_eq!(edit.full_name, Some(Some("V".into())));
        assert_eq!(edit.role.as_deref(), Some("auditor"));
    }

    #[test]
    fn the_active_filter_is_true_or_false() {
        let q = ListQuery {
            role: "viewer".into(),
            active: "false".into(),
            ..ListQuery::default()
        };
        assert!(q.to_rest().is_ok());
        assert!(
            ListQuery {
                active: "x".into(),
                ..ListQuery::default()
            }
            .to_rest()
            .is_err()
        );
    }
}
