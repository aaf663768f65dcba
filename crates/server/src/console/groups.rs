//! `/groups`: groups of users, whose members hold the group's role and permissions on top of
//! their own role's. The list with a search and a form to make one; per group its grants,
//! their change, its members (added by username, as members or owners, and removed) and its
//! deletion. The authority decides as it does for the REST API: reading needs `read:users`,
//! changes `write:users`, deletion `delete:users`, and no one hands out through a group more
//! than they hold.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::{Form, blank_is_none};
use super::page::{self, Frame, Head, Pager, Visitor, filters};
use crate::App;
use crate::api::v2::groups::GroupView;
use crate::error::{ApiError, ApiResult};

/// The list.
const LIST: &str = "/groups";
/// Rows on a page of the list.
const PER_PAGE: u32 = 50;

/// What a group's form holds; its permissions are a repeated field.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GroupForm {
    name: String,
    description: String,
    /// A role name, or empty for none.
    role: String,
    permissions: Vec<String>,
}

impl GroupForm {
    /// The form of `group`, to change it.
    fn of(group: &GroupView) -> Self {
        Self {
            name: group.name.clone(),
            description: group.description.clone().unwrap_or_default(),
            role: group.role.clone().unwrap_or_default(),
            permissions: group.permissions.clone(),
        }
    }

    fn from_fields(fields: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (name, value) in fields {
            match name.as_str() {
                "name" => form.name = value,
                "description" => form.description = value,
                "role" => form.role = value,
                "permissions" => form.permissions.push(value),
                _ => {}
            }
        }
        form
    }

    /// Whether `permission` is ticked.
    fn grants(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// The group the authority takes: an empty description or role is none.
    fn to_input(&self) -> authority::GroupInput {
        authority::GroupInput {
            name: self.name.trim().to_owned(),
            description: blank_is_none(&self.description).map(str::to_owned),
            role: blank_is_none(&self.role).map(str::to_owned),
            permissions: self.permissions.clone(),
        }
    }
}

/// The permissions a group's form offers `visitor`: those it holds, then any `form` holds
/// beyond them (a wildcard given through the API), so that a change keeps them.
fn choices(visitor: &Visitor, form: &GroupForm) -> Vec<(String, &'static str)> {
    let held: Vec<(String, &'static str)> = authority::Permission::ALL
        .iter()
        .filter(|p| visitor.principal.can(**p))
        .map(|p| (p.as_str().to_owned(), p.description()))
        .collect();
    let beyond: Vec<(String, &'static str)> = form
        .permissions
        .iter()
        .filter(|p| !held.iter().any(|(h, _)| h == *p))
        .map(|p| (p.clone(), "given through the API"))
        .collect();
    held.into_iter().chain(beyond).collect()
}

/// The roles a group may give, in the order the forms offer them.
fn roles() -> Vec<&'static str> {
    authority::Role::ALL.iter().map(|r| r.as_str()).collect()
}

/// The list's search, as the query string carries it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    search: String,
    page: Option<u32>,
}

#[derive(Template)]
#[template(path = "console/groups.html")]
struct ListPage {
    head: Head,
    frame: Frame,
    search: String,
    rows: Vec<GroupView>,
    pager: Pager,
    /// The new group's form, as sent when it was refused.
    form: GroupForm,
    permissions: Vec<(String, &'static str)>,
    roles: Vec<&'static str>,
    error: Option<String>,
}

/// The list for `query`, with the new group's `form` and a refusal of it.
async fn list_page(
    app: &App,
    visitor: &Visitor,
    query: ListQuery,
    form: GroupForm,
    error: Option<ApiError>,
) -> Response {
    let frame = visitor.frame(LIST);
    let page = query.page.unwrap_or(1).max(1);
    let request = authority::PageRequest {
        page,
        per_page: PER_PAGE,
        after: None,
    };
    let found = app
        .authority
        .groups(&visitor.principal, blank_is_none(&query.search), request)
        .await;
    match found {
        Ok(found) => page::render(
            error.as_ref().map_or(StatusCode::OK, ApiError::status),
            &ListPage {
                head: Head::new(),
                pager: Pager::new(
                    LIST,
                    &[("search", &query.search)],
                    page,
                    PER_PAGE,
                    found.total,
                ),
                frame,
                search: query.search,
                rows: found.items.into_iter().map(GroupView::from).collect(),
                permissions: choices(visitor, &form),
                form,
                roles: roles(),
                error: error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e.into()),
    }
}

/// GET `/groups`.
pub async fn list(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<ListQuery>,
) -> Response {
    list_page(&app, &visitor, query, GroupForm::default(), None).await
}

/// POST `/groups`: makes the group and shows it; on a refusal, the list with the form as sent.
pub async fn create(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let form = GroupForm::from_fields(fields);
    match app
        .authority
        .create_group(&visitor.principal, form.to_input())
        .await
    {
        Ok(group) => Redirect::to(&group_path(group.id)).into_response(),
        Err(e) => {
            let query = ListQuery::default();
            list_page(&app, &visitor, query, form, Some(e.into())).await
        }
    }
}

/// What a group's page shows once, as the answer to an action.
#[derive(Default)]
struct Shown {
    /// The edit form as sent, when it was refused.
    form: Option<GroupForm>,
    /// The member form's username as sent, when it was refused.
    username: Option<String>,
    error: Option<ApiError>,
}

#[derive(Template)]
#[template(path = "console/group.html")]
struct GroupPage {
    head: Head,
    frame: Frame,
    group: GroupView,
    members: Vec<authority::GroupMemberRow>,
    form: GroupForm,
    permissions: Vec<(String, &'static str)>,
    roles: Vec<&'static str>,
    member_roles: [&'static str; 2],
    username: String,
    error: Option<String>,
}

/// Group `id`'s page with `shown`, in the status of its refusal or 200.
async fn group_page(app: &App, visitor: &Visitor, id: i64, shown: Shown) -> Response {
    let frame = visitor.frame(LIST);
    let read = async {
        let group = app.authority.group(&visitor.principal, id).await?;
        let members = app.authority.group_members(&visitor.principal, id).await?;
        Ok::<_, authority::Error>((GroupView::from(group), members))
    };
    let (group, members) = match read.await {
        Ok(read) => read,
        Err(e) => return page::refused(frame, &e.into()),
    };
    let form = shown.form.unwrap_or_else(|| GroupForm::of(&group));
    page::render(
        shown
            .error
            .as_ref()
            .map_or(StatusCode::OK, ApiError::status),
        &GroupPage {
            head: Head::new(),
            frame,
            group,
            members,
            permissions: choices(visitor, &form),
            form,
            roles: roles(),
            member_roles: authority::MEMBER_ROLES,
            username: shown.username.unwrap_or_default(),
            error: shown.error.map(|e| e.message().to_owned()),
        },
    )
}

fn group_path(id: i64) -> String {
    format!("{LIST}/{id}")
}

/// Back to group `id`'s page at `anchor` once `done` succeeded; the page with `shown` and the
/// refusal otherwise.
async fn then_back(
    app: &App,
    visitor: &Visitor,
    id: i64,
    done: impl Future<Output = ApiResult<()>>,
    anchor: &str,
    shown: Shown,
) -> Response {
    match done.await {
        Ok(()) => Redirect::to(&format!("{}{anchor}", group_path(id))).into_response(),
        Err(e) => {
            let shown = Shown {
                error: Some(e),
                ..shown
            };
            group_page(app, visitor, id, shown).await
        }
    }
}

/// GET `/groups/{id}`.
pub async fn show(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    group_page(&app, &visitor, id, Shown::default()).await
}

/// POST `/groups/{id}/edit`: its name, description, role and permissions as the form holds
/// them.
pub async fn update(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let form = GroupForm::from_fields(fields);
    let done = async {
        app.authority
            .update_group(&visitor.principal, id, form.to_input())
            .await?;
        Ok(())
    };
    let shown = Shown {
        form: Some(form.clone()),
        ..Shown::default()
    };
    then_back(&app, &visitor, id, done, "", shown).await
}

/// The member form: who, and their place in the group.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MemberForm {
    username: String,
    role: String,
}

/// POST `/groups/{id}/members`: adds the user of that name (or changes their place).
pub async fn add_member(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<MemberForm>,
) -> Response {
    let username = form.username.trim().to_owned();
    let done = async {
        let user = match app.authority.user_by_name(&username).await {
            Ok(user) => user,
            Err(authority::Error::NotFound(_)) => {
                return Err(ApiError::invalid(format!("there is no user '{username}'")));
            }
            Err(e) => return Err(e.into()),
        };
        let role = blank_is_none(&form.role).unwrap_or("member");
        app.authority
            .add_group_member(&visitor.principal, id, user.id, role)
            .await?;
        Ok(())
    };
    let shown = Shown {
        username: Some(username.clone()),
        ..Shown::default()
    };
    then_back(&app, &visitor, id, done, "#members", shown).await
}

/// POST `/groups/{id}/members/{user}/remove`.
pub async fn remove_member(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path((id, user)): Path<(i64, i64)>,
) -> Response {
    let done = async {
        app.authority
            .remove_group_member(&visitor.principal, id, user)
            .await?;
        Ok(())
    };
    then_back(&app, &visitor, id, done, "#members", Shown::default()).await
}

/// The deletion form: its box must be ticked.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    confirm: String,
}

/// POST `/groups/{id}/delete`: with the box ticked, the group goes and its members lose its
/// grants.
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
        Ok(app.authority.delete_group(&visitor.principal, id).await?)
    };
    match deleted.await {
        Ok(()) => Redirect::to(LIST).into_response(),
        Err(e) => {
            let shown = Shown {
                error: Some(e),
                ..Shown::default()
            };
            group_page(&app, &visitor, id, shown).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_group_the_authority_takes() {
        let form = GroupForm::from_fields(
            [
                ("csrf_token", "t"),
                ("name", " pki team "),
                ("description", " "),
                ("role", ""),
                ("permissions", "read:certificates"),
                ("permissions", "write:certificates"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        );
        assert!(form.grants("write:certificates") && !form.grants("read:cas"));
        let input = form.to_input();
        assert_eq!(input.name, "pki team");
        assert_eq!(input.description, None);
        assert_eq!(input.role, None, "no role chosen: none");
        assert_eq!(
            input.permissions,
            ["read:certificates", "write:certificates"]
        );
        let input = GroupForm {
            role: "auditor".into(),
            ..GroupForm::default()
        }
        .to_input();
        assert_eq!(input.role.as_deref(), Some("auditor"));
        assert!(input.permissions.is_empty());
    }
}
