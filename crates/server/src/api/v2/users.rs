//! `/users`: user administration.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::{UserView, nullable};
use crate::App;
use crate::envelope::{Envelope, Pagination, created, keyset_page, no_content, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(create))
        .routes(routes!(get))
        .routes(routes!(update))
        .routes(routes!(delete))
        .routes(routes!(toggle))
        .routes(routes!(reset_password))
        .routes(routes!(import))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only this role.
    pub role: Option<String>,
    /// Only active (true) or inactive (false) users.
    pub active: Option<bool>,
    /// Text in username, e-mail or full name.
    pub search: Option<String>,
}

/// Users, by id.
#[utoipa::path(get, path = "/users", tag = "users",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    params(UserQuery, Pagination),
    responses((status = 200, description = "Users", body = Envelope<Vec<UserView>>)))]
async fn list(
    State(app): State<App>,
    ApiQuery(q): ApiQuery<UserQuery>,
    ApiQuery(p): ApiQuery<Pagination>,
) -> ApiResult<Response> {
    let request = p.keyset_request()?;
    let (items, total) = users_page(&app, q, request).await?;
    Ok(keyset_page(items, request, total, |u| u.id))
}

/// One page of the users a query selects, and how many it selects; the console's list reads
/// them the same way.
pub async fn users_page(
    app: &App,
    q: UserQuery,
    request: authority::PageRequest,
) -> ApiResult<(Vec<UserView>, i64)> {
    if let Some(role) = &q.role {
        authority::Role::parse(role)?;
    }
    let filter = authority::UserFilter {
        role: q.role,
        enabled: q.active,
        search: q.search.filter(|s| !s.is_empty()),
    };
    let result = app.authority.users(&filter, request).await?;
    let now = app.authority.now();
    let items = result
        .items
        .into_iter()
        .map(|u| UserView::new(u, now))
        .collect();
    Ok((items, result.total))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub username: String,
    pub email: Option<String>,
    /// Omit to have one generated and returned once.
    pub password: Option<String>,
    /// admin, operator, auditor or viewer.
    pub role: String,
    pub full_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: UserView,
    /// The generated password, when none was given: shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_password: Option<String>,
}

fn input(u: UserCreate) -> authority::NewUserInput {
    authority::NewUserInput {
        username: u.username,
        email: u.email,
        full_name: u.full_name,
        role: u.role,
        password: u.password,
    }
}

/// Create a user.
#[utoipa::path(post, path = "/users", tag = "users",
    security(("session" = ["write:users"]), ("api_key" = ["write:users"])),
    request_body = UserCreate,
    responses((status = 201, description = "Created", body = Envelope<CreatedUser>),
              (status = 409, description = "Username taken", body = ErrorBody),
              (status = 422, description = "A field breaks a rule", body = ErrorBody)))]
async fn create(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<UserCreate>,
) -> ApiResult<Response> {
    Ok(created(
        create_user(&app, &principal, body).await?,
        "User created",
    ))
}

/// Creates the user `body` describes, with the password generated for it when it names none;
/// the console's form creates users the same way.
pub async fn create_user(
    app: &App,
    principal: &authority::Principal,
    body: UserCreate,
) -> ApiResult<CreatedUser> {
    let (user, generated) = app.authority.create_user(principal, input(body)).await?;
    Ok(CreatedUser {
        user: UserView::new(user, app.authority.now()),
        generated_password: generated.map(|p| p.to_string()),
    })
}

/// One user.
#[utoipa::path(get, path = "/users/{user_id}", tag = "users",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    params(("user_id" = i64, Path)),
    responses((status = 200, description = "User", body = Envelope<UserView>),
              (status = 404, description = "No such user", body = ErrorBody)))]
async fn get(State(app): State<App>, Id(id): Id) -> ApiResult<Response> {
    let user = app.authority.user(id).await?;
    Ok(ok(UserView::new(user, app.authority.now())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default, deserialize_with = "nullable")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub full_name: Option<Option<String>>,
    pub role: Option<String>,
}

/// Change a user's e-mail, display name or role. The last active admin keeps its role.
#[utoipa::path(put, path = "/users/{user_id}", tag = "users",
    security(("session" = ["write:users"]), ("api_key" = ["write:users"])),
    params(("user_id" = i64, Path)),
    request_body = UserUpdate,
    responses((status = 200, description = "Updated", body = Envelope<UserView>),
              (status = 404, description = "No such user", body = ErrorBody),
              (status = 409, description = "Would leave no active admin", body = ErrorBody)))]
async fn update(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<UserUpdate>,
) -> ApiResult<Response> {
    Ok(ok_with(
        update_user(&app, &principal, id, body).await?,
        "User updated",
    ))
}

/// Applies `body` to user `id`; the console's edit form changes users the same way.
pub async fn update_user(
    app: &App,
    principal: &authority::Principal,
    id: i64,
    body: UserUpdate,
) -> ApiResult<UserView> {
    let input = authority::UserUpdateInput {
        email: body.email,
        full_name: body.full_name,
        role: body.role,
    };
    let user = app.authority.update_user(principal, id, input).await?;
    Ok(UserView::new(user, app.authority.now()))
}

/// Delete a user with its sessions and API keys.
#[utoipa::path(delete, path = "/users/{user_id}", tag = "users",
    security(("session" = ["delete:users"]), ("api_key" = ["delete:users"])),
    params(("user_id" = i64, Path)),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such user", body = ErrorBody),
              (status = 409, description = "Oneself or the last active admin", body = ErrorBody)))]
async fn delete(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.delete_user(&principal, id).await?;
    Ok(no_content())
}

/// Activate an inactive user or deactivate an active one.
#[utoipa::path(patch, path = "/users/{user_id}/toggle", tag = "users",
    security(("session" = ["write:users"]), ("api_key" = ["write:users"])),
    params(("user_id" = i64, Path)),
    responses((status = 200, description = "Toggled", body = Envelope<UserView>),
              (status = 409, description = "Oneself or the last active admin", body = ErrorBody)))]
async fn toggle(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let user = app.authority.toggle_user(&principal, id).await?;
    let message = if user.enabled {
        "User activated"
    } else {
        "User deactivated"
    };
    Ok(ok_with(UserView::new(user, app.authority.now()), message))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// Omit to have one generated and returned once.
    pub new_password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResetResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_password: Option<String>,
}

/// Set a user's password, clear any lockout and end the user's sessions.
#[utoipa::path(post, path = "/users/{user_id}/reset-password", tag = "users",
    security(("session" = ["write:users"]), ("api_key" = ["write:users"])),
    params(("user_id" = i64, Path)),
    request_body = PasswordReset,
    responses((status = 200, description = "Reset", body = Envelope<ResetResult>),
              (status = 422, description = "Password breaks the policy", body = ErrorBody)))]
async fn reset_password(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<PasswordReset>,
) -> ApiResult<Response> {
    let generated = app
        .authority
        .reset_password(&principal, id, body.new_password.as_deref())
        .await?;
    Ok(ok_with(
        ResetResult {
            generated_password: generated.map(|p| p.to_string()),
        },
        "Password reset",
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserImport {
    pub users: Vec<UserCreate>,
    /// certmint does not mail invitations; generated passwords are returned instead.
    #[serde(default)]
    pub send_invites: bool,
}

/// Create several users at once: all of them, or none if any is refused.
#[utoipa::path(post, path = "/users/import", tag = "users",
    security(("session" = ["write:users"]), ("api_key" = ["write:users"])),
    request_body = UserImport,
    responses((status = 201, description = "Imported", body = Envelope<Vec<CreatedUser>>),
              (status = 409, description = "A username is taken", body = ErrorBody),
              (status = 422, description = "An entry breaks a rule", body = ErrorBody)))]
async fn import(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<UserImport>,
) -> ApiResult<Response> {
    let body_invites = body.send_invites;
    let inputs = body.users.into_iter().map(input).collect();
    let created_users = app.authority.create_users(&principal, inputs).await?;
    let now = app.authority.now();
    let n = created_users.len();
    let data: Vec<CreatedUser> = created_users
        .into_iter()
        .map(|(user, generated)| CreatedUser {
            user: UserView::new(user, now),
            generated_password: generated.map(|p| p.to_string()),
        })
        .collect();
    let note = if body_invites {
        "; invitations are not mailed: hand each user the generated password shown here"
    } else {
        ""
    };
    Ok(created(data, format!("{n} users imported{note}")))
}
