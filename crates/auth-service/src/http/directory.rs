//! `/api/roles` and `/api/territories`: roles, territories, memberships and territory roles
//! (SPEC §2). Every route requires the `admin` role.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::Problem;
use super::extract::{path_id, AdminRole, Authorized, Json};
use super::schema::{Permission, RoleName};
use crate::error::Error;
use crate::services::directory::roles::NewRole;
use crate::services::directory::territories::{territory_patch, NewTerritory};
use crate::services::directory::{Role, Territory};
use crate::services::RequestContext;
use crate::state::AppState;

/// A role as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Role)]
pub struct RoleView {
    #[schema(example = "editor")]
    name: String,
    description: Option<String>,
    permissions: Vec<String>,
    created_at: DateTime<Utc>,
}

impl From<Role> for RoleView {
    fn from(role: Role) -> Self {
        Self {
            name: role.name,
            description: role.description,
            permissions: role.permissions,
            created_at: role.created_at,
        }
    }
}

/// A territory as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Territory)]
pub struct TerritoryView {
    #[schema(example = "dk")]
    code: String,
    #[schema(example = "Denmark")]
    name: String,
    description: Option<String>,
    is_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Territory> for TerritoryView {
    fn from(territory: Territory) -> Self {
        Self {
            code: territory.code,
            name: territory.name,
            description: territory.description,
            is_active: territory.is_active,
            created_at: territory.created_at,
            updated_at: territory.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RoleList {
    roles: Vec<RoleView>,
}

#[derive(Serialize, ToSchema)]
pub struct TerritoryList {
    territories: Vec<TerritoryView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleRequest {
    /// 2–50 lowercase letters, digits, `_` or `-`.
    #[schema(example = "editor", pattern = r"^[a-z0-9_-]{2,50}$")]
    name: String,
    #[schema(max_length = 500)]
    description: Option<String>,
    /// Each 1–100 characters, not blank.
    #[schema(inline, value_type = Option<Vec<Permission>>)]
    permissions: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTerritoryRequest {
    /// 2–10 lowercase letters, digits or `-`.
    #[schema(example = "dk", pattern = r"^[a-z0-9-]{2,10}$")]
    code: String,
    /// 1–100 characters, not blank.
    #[schema(
        example = "Denmark",
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]{0,98}[^\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    name: String,
    #[schema(max_length = 500)]
    description: Option<String>,
    /// `true` when absent.
    is_active: Option<bool>,
}

/// Absent fields stay as they are; `description: null` clears it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTerritoryRequest {
    /// 1–100 characters, not blank.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]{0,98}[^\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 500)]
    description: Option<Option<String>>,
    is_active: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TerritoryRolesRequest {
    /// Every role the user is to hold in the territory; `[]` removes them all.
    #[schema(example = json!(["moderator"]), inline, value_type = Vec<RoleName>)]
    roles: Vec<String>,
}

/// The roles a user holds in one territory.
#[derive(Serialize, ToSchema)]
pub struct TerritoryRoles {
    #[schema(example = "dk")]
    territory: String,
    roles: Vec<String>,
}

/// Every role, by name.
#[utoipa::path(get, path = "/api/roles", tag = "directory", security(("bearer" = [])),
    responses(
        (status = 200, body = RoleList),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin", body = Problem, content_type = "application/problem+json"),
))]
pub async fn list_roles(
    State(state): State<AppState>,
    _: Authorized<AdminRole>,
) -> Result<axum::Json<RoleList>, Error> {
    let roles = state.services.directory.roles().await?;
    Ok(axum::Json(RoleList {
        roles: roles.into_iter().map(RoleView::from).collect(),
    }))
}

/// Creates a role.
#[utoipa::path(post, path = "/api/roles", tag = "directory", security(("bearer" = [])), request_body = CreateRoleRequest,
    responses(
        (status = 201, body = RoleView),
        (status = 400, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`role_exists`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn create_role(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Json(body): Json<CreateRoleRequest>,
) -> Result<(StatusCode, axum::Json<RoleView>), Error> {
    let input = NewRole::parse(body.name, body.description, body.permissions)?;
    let directory = &state.services.directory;
    let role = directory.create_role(&caller, input, &request).await?;
    Ok((StatusCode::CREATED, axum::Json(role.into())))
}

/// Deletes a role and every grant of it. The built-in `admin`, `moderator` and `user` stay.
#[utoipa::path(delete, path = "/api/roles/{name}", tag = "directory", security(("bearer" = [])),
    params(("name" = String, Path, description = "the role name", pattern = r"^[a-z0-9_-]{2,50}$")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`role_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`built_in_role`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn delete_role(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(name): Path<String>,
) -> Result<StatusCode, Error> {
    let directory = &state.services.directory;
    directory.delete_role(&caller, &name, &request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every territory, by code.
#[utoipa::path(get, path = "/api/territories", tag = "directory", security(("bearer" = [])),
    responses(
        (status = 200, body = TerritoryList),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin", body = Problem, content_type = "application/problem+json"),
))]
pub async fn list_territories(
    State(state): State<AppState>,
    _: Authorized<AdminRole>,
) -> Result<axum::Json<TerritoryList>, Error> {
    let territories = state.services.directory.territories().await?;
    Ok(axum::Json(TerritoryList {
        territories: territories.into_iter().map(TerritoryView::from).collect(),
    }))
}

/// Creates a territory.
#[utoipa::path(post, path = "/api/territories", tag = "directory", security(("bearer" = [])), request_body = CreateTerritoryRequest,
    responses(
        (status = 201, body = TerritoryView),
        (status = 400, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`territory_exists`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn create_territory(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Json(body): Json<CreateTerritoryRequest>,
) -> Result<(StatusCode, axum::Json<TerritoryView>), Error> {
    let input = NewTerritory::parse(body.code, &body.name, body.description, body.is_active)?;
    let directory = &state.services.directory;
    let territory = directory.create_territory(&caller, input, &request).await?;
    Ok((StatusCode::CREATED, axum::Json(territory.into())))
}

/// Changes a territory's name, description or `is_active`.
#[utoipa::path(patch, path = "/api/territories/{code}", tag = "directory", security(("bearer" = [])), request_body = UpdateTerritoryRequest,
    params(("code" = String, Path, description = "the territory code", pattern = r"^[a-z0-9-]{2,10}$")),
    responses(
        (status = 200, body = TerritoryView),
        (status = 400, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`territory_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn update_territory(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(code): Path<String>,
    Json(body): Json<UpdateTerritoryRequest>,
) -> Result<axum::Json<TerritoryView>, Error> {
    let patch = territory_patch(body.name, body.description, body.is_active)?;
    let directory = &state.services.directory;
    let territory = directory
        .update_territory(&caller, &code, &patch, &request)
        .await?;
    Ok(axum::Json(territory.into()))
}

/// Makes a user a member of a territory. Idempotent: a member stays one, and 204 again.
#[utoipa::path(put, path = "/api/users/{id}/territories/{code}", tag = "directory", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the user id"), ("code" = String, Path, description = "the territory code", pattern = r"^[a-z0-9-]{2,10}$")),
    responses(
        (status = 204, description = "the user is a member"),
        (status = 400, description = "`validation_failed`: not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found` or `territory_not_found`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn add_member(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path((id, code)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let directory = &state.services.directory;
    directory
        .add_member(&caller, path_id(&id)?, &code, &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends a membership and the roles the user held in that territory. Idempotent: 204 also
/// when the user was not a member; 404 only when the user or the territory does not exist.
#[utoipa::path(delete, path = "/api/users/{id}/territories/{code}", tag = "directory", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the user id"), ("code" = String, Path, description = "the territory code", pattern = r"^[a-z0-9-]{2,10}$")),
    responses(
        (status = 204, description = "the user is not a member"),
        (status = 400, description = "`validation_failed`: not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found` or `territory_not_found`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn remove_member(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path((id, code)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let directory = &state.services.directory;
    directory
        .remove_member(&caller, path_id(&id)?, &code, &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the roles a user holds in a territory, in one transaction. A user who is not a
/// member yet becomes one. Answers the roles now held there.
#[utoipa::path(put, path = "/api/users/{id}/territories/{code}/roles", tag = "directory", security(("bearer" = [])), request_body = TerritoryRolesRequest,
    params(("id" = Uuid, Path, description = "the user id"), ("code" = String, Path, description = "the territory code", pattern = r"^[a-z0-9-]{2,10}$")),
    responses(
        (status = 200, body = TerritoryRoles),
        (status = 400, description = "`validation_failed`: not a UUID, or `unknown_role` on `roles`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found` or `territory_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn set_territory_roles(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path((id, code)): Path<(String, String)>,
    Json(body): Json<TerritoryRolesRequest>,
) -> Result<axum::Json<TerritoryRoles>, Error> {
    let directory = &state.services.directory;
    let roles = directory
        .set_territory_roles(&caller, path_id(&id)?, &code, body.roles, &request)
        .await?;
    Ok(axum::Json(TerritoryRoles {
        territory: code,
        roles,
    }))
}
