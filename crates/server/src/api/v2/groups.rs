//! `/groups`: groups of users, whose members hold the group's permissions (and its role's)
//! on top of their own role's.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, Pagination, created, no_content, ok, ok_with, page};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id, parse_id};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_groups))
        .routes(routes!(create_group))
        .routes(routes!(group_stats))
        .routes(routes!(get_group))
        .routes(routes!(update_group))
        .routes(routes!(delete_group))
        .routes(routes!(list_members))
        .routes(routes!(add_member))
        .routes(routes!(remove_member))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// A role whose permissions members hold, if any.
    pub role: Option<String>,
    /// Permission strings members hold.
    pub permissions: Vec<String>,
    pub member_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<authority::GroupRow> for GroupView {
    fn from(g: authority::GroupRow) -> Self {
        Self {
            id: g.id,
            name: g.name,
            description: g.description,
            role: g.role,
            permissions: g.permissions,
            member_count: g.members,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: i64,
    pub username: String,
    pub email: Option<String>,
    /// The user's own role.
    pub user_role: String,
    /// Their place in the group: `member` or `owner`.
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct GroupQuery {
    /// Text in the name or description.
    pub search: Option<String>,
}

/// Groups, by name.
#[utoipa::path(get, path = "/groups", tag = "groups",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    params(GroupQuery, Pagination),
    responses((status = 200, description = "Groups", body = Envelope<Vec<GroupView>>)))]
async fn list_groups(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<GroupQuery>,
    ApiQuery(p): ApiQuery<Pagination>,
) -> ApiResult<Response> {
    let request = p.request()?;
    let search = q.search.filter(|s| !s.is_empty());
    let found = app
        .authority
        .groups(&principal, search.as_deref(), request)
        .await?;
    let items: Vec<GroupView> = found.items.into_iter().map(GroupView::from).collect();
    Ok(page(items, request, found.total))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    pub name: String,
    pub description: Option<String>,
    /// admin, operator, auditor or viewer: members hold its permissions too.
    pub role: Option<String>,
    /// Permission strings (`read:certificates`, `read:*`…) members hold; none beyond the
    /// caller's own.
    #[serde(default)]
    pub permissions: Vec<String>,
}

impl From<GroupInput> for authority::GroupInput {
    fn from(g: GroupInput) -> Self {
        Self {
            name: g.name,
            description: g.description,
            role: g.role,
            permissions: g.permissions,
        }
    }
}

/// Create a group. Its grants (role and permissions) may not exceed the caller's.
#[utoipa::path(post, path = "/groups", tag = "groups",
    security(("session" = ["write:users"]), ("api_key" = ["write:users"])),
    request_body = GroupInput,
    responses((status = 201, description = "Created", body = Envelope<GroupView>),
              (status = 403, description = "Grants beyond the caller's", body = ErrorBody),
              (status = 409, description = "Name taken", body = ErrorBody),
              (status = 422, description = "A field breaks a rule", body = ErrorBody)))]
async fn create_group(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<GroupInput>,
) -> ApiResult<Response> {
    let group = app.authority.create_group(&principal, body.into()).await?;
    Ok(created(GroupView::from(group), "Group created"))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupStats {
    pub total_groups: i64,
    pub total_memberships: i64,
    /// Users who belong to at least one group.
    pub users_in_groups: i64,
}

/// How many groups, memberships and grouped users there are.
#[utoipa::path(get, path = "/groups/stats", tag = "groups",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    responses((status = 200, description = "Counts", body = Envelope<GroupStats>)))]
async fn group_stats(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let (groups, memberships, users) = app.authority.group_stats(&principal).await?;
    Ok(ok(GroupStats {
        total_groups: groups,
        total_memberships: memberships,
        users_in_groups: users,
    }))
}

/// One group.
#[utoipa::path(get, path = "/groups/{group_id}", tag = "groups",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    params(("group_id" = i64, Path)),
    responses((status = 200, description = "Group", body = Envelope<GroupView>),
              (status = 404, description = "No such group", body = ErrorBody)))]
async fn get_group(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    Ok(ok(GroupView::from(
        app.authority.group(&principal, id).await?,
    )))
}

/// Replace a group's name, description, role and permissions; members hold the new grants
/// from their next request.
#[utoipa::path(put, path = "/groups/{group_id}", tag = "groups",
    security(("session" = ["write:users"]), ("api_key" = ["write:users"])),
    params(("group_id" = i64, Path)),
    request_body = GroupInput,
    responses((status = 200, description = "Updated", body = Envelope<GroupView>),
              (status = 403, description = "Grants beyond the caller's", body = ErrorBody),
              (status = 404, description = "No such group", body = ErrorBody),
              (status = 409, description = "Name taken", body = ErrorBody)))]
async fn update_group(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<GroupInput>,
) -> ApiResult<Response> {
    let group = app
        .authority
        .update_group(&principal, id, body.into())
        .await?;
    Ok(ok_with(GroupView::from(group), "Group updated"))
}

/// Delete a group; its members lose its grants.
#[utoipa::path(delete, path = "/groups/{group_id}", tag = "groups",
    security(("session" = ["delete:users"]), ("api_key" = ["delete:users"])),
    params(("group_id" = i64, Path)),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such group", body = ErrorBody)))]
async fn delete_group(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.delete_group(&principal, id).await?;
    Ok(no_content())
}

/// A group's members, by username.
#[utoipa::path(get, path = "/groups/{group_id}/members", tag = "groups",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    params(("group_id" = i64, Path)),
    responses((status = 200, description = "Members", body = Envelope<Vec<MemberView>>),
              (status = 404, description = "No such group", body = ErrorBody)))]
async fn list_members(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let members: Vec<MemberView> = app
        .authority
        .group_members(&principal, id)
        .await?
        .into_iter()
        .map(|m| MemberView {
            user_id: m.user_id,
            username: m.username,
            email: m.email,
            user_role: m.user_role,
            role: m.member_role,
            added_at: m.added_at,
        })
        .collect();
    Ok(ok(members))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    pub user_id: i64,
    /// `member` (the default) or `owner`.
    pub role: Option<String>,
}

/// Add a user to a group, or change their place in it. Refused when the group grants more than
/// the caller holds.
#[utoipa::path(post, path = "/groups/{group_id}/members", tag = "groups",
    security(("session" = ["write:users"]), ("api_key" = ["write:users"])),
    params(("group_id" = i64, Path)),
    request_body = MemberInput,
    responses((status = 201, description = "Added"),
              (status = 403, description = "The group grants more than the caller holds", body = ErrorBody),
              (status = 404, description = "No such group or user", body = ErrorBody),
              (status = 422, description = "A role other than member or owner", body = ErrorBody)))]
async fn add_member(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<MemberInput>,
) -> ApiResult<Response> {
    app.authority
        .add_group_member(
            &principal,
            id,
            body.user_id,
            body.role.as_deref().unwrap_or("member"),
        )
        .await?;
    Ok(created(
        serde_json::json!({"group_id": id, "user_id": body.user_id}),
        "Member added",
    ))
}

/// Remove a user from a group.
#[utoipa::path(delete, path = "/groups/{group_id}/members/{user_id}", tag = "groups",
    security(("session" = ["write:users"]), ("api_key" = ["write:users"])),
    params(("group_id" = i64, Path), ("user_id" = i64, Path)),
    responses((status = 204, description = "Removed"),
              (status = 404, description = "Not a member", body = ErrorBody)))]
async fn remove_member(
    State(app): State<App>,
    Caller(principal): Caller,
    Path((group_id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    app.authority
        .remove_group_member(&principal, parse_id(&group_id)?, parse_id(&user_id)?)
        .await?;
    Ok(no_content())
}
