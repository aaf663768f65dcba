//! `/rbac`: the roles and the permission strings.

use axum::extract::Path;
use axum::response::Response;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok};
use crate::error::{ApiResult, ErrorBody};
use authority::Role;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(roles))
        .routes(routes!(role))
        .routes(routes!(permissions))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RolesData {
    pub roles: Vec<&'static str>,
    pub role_permissions: BTreeMap<&'static str, Vec<&'static str>>,
}

/// The four roles and what each may do.
#[utoipa::path(get, path = "/rbac/roles", tag = "rbac",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    responses((status = 200, description = "Roles", body = Envelope<RolesData>)))]
async fn roles() -> Response {
    ok(RolesData {
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        role_permissions: Role::ALL
            .iter()
            .map(|r| (r.as_str(), r.permissions().to_vec()))
            .collect(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleData {
    pub role: &'static str,
    pub description: &'static str,
    pub permissions: Vec<&'static str>,
}

/// One role.
#[utoipa::path(get, path = "/rbac/roles/{role}", tag = "rbac",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    params(("role" = String, Path, description = "admin, operator, auditor or viewer")),
    responses((status = 200, description = "Role", body = Envelope<RoleData>),
              (status = 404, description = "No such role", body = ErrorBody)))]
async fn role(Path(name): Path<String>) -> ApiResult<Response> {
    let role = Role::parse(&name)
        .map_err(|_| crate::error::ApiError::not_found(format!("no role '{name}'")))?;
    Ok(ok(RoleData {
        role: role.as_str(),
        description: role.description(),
        permissions: role.permissions().to_vec(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionData {
    pub permission: &'static str,
    pub description: &'static str,
}

/// Every permission string.
#[utoipa::path(get, path = "/rbac/permissions", tag = "rbac",
    security(("session" = ["read:users"]), ("api_key" = ["read:users"])),
    responses((status = 200, description = "Permissions", body = Envelope<Vec<PermissionData>>)))]
async fn permissions() -> Response {
    ok(authority::rbac::grantable()
        .map(|(permission, description)| PermissionData {
            permission,
            description,
        })
        .collect::<Vec<_>>())
}
