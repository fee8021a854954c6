//! `/api/users`: administration of users (SPEC §2). Every route requires the `admin` role.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::Problem;
use super::extract::{limit_by_ip, AdminRole, Authorized, Json};
use super::views::UserView;
use crate::app::AppState;
use crate::domain::{Login, NewAccount};
use crate::error::Error;
use crate::limits::Scope;
use crate::services::admin::CreateUser;
use crate::services::RequestContext;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(example = "bob@example.com")]
    email: String,
    #[schema(example = "bob")]
    username: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    display_name: Option<String>,
    /// Global roles; `["user"]` when absent.
    roles: Option<Vec<String>>,
    #[serde(default)]
    is_verified: bool,
}

/// Creates a user. The password follows the password policy; the answer never carries a hash.
#[utoipa::path(post, path = "/api/users", tag = "users", security(("bearer" = [])), request_body = CreateUserRequest,
    responses(
        (status = 201, body = UserView),
        (status = 400, description = "`validation_failed`, including `unknown_role`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken` or `username_taken`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn create_user(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Json(body): Json<CreateUserRequest>,
) -> Result<(StatusCode, axum::Json<UserView>), Error> {
    let account = NewAccount::parse(
        &body.email,
        &body.username,
        &body.password,
        body.display_name,
        &state.config.password.policy(),
    )?;
    let input = CreateUser {
        account,
        roles: body.roles,
        is_verified: body.is_verified,
    };
    let user = state
        .services
        .admin
        .create_user(&caller, input, &request)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(user.into())))
}

/// A user by id.
#[utoipa::path(get, path = "/api/users/id/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the user id")),
    responses(
        (status = 200, body = UserView),
        (status = 400, description = "`validation_failed`: not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn user_by_id(
    State(state): State<AppState>,
    _: Authorized<AdminRole>,
    request: RequestContext,
    Path(id): Path<String>,
) -> Result<axum::Json<UserView>, Error> {
    limit_by_ip(&state, Scope::LookupIp, &request).await?;
    let id = Uuid::parse_str(&id).map_err(|_| Error::invalid("id", "invalid", "must be a UUID"))?;
    Ok(axum::Json(state.services.admin.user(id).await?.into()))
}

/// A user by username (case-insensitive).
#[utoipa::path(get, path = "/api/users/{username}", tag = "users", security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 200, body = UserView),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn user_by_username(
    State(state): State<AppState>,
    _: Authorized<AdminRole>,
    request: RequestContext,
    Path(username): Path<String>,
) -> Result<axum::Json<UserView>, Error> {
    limit_by_ip(&state, Scope::LookupIp, &request).await?;
    let user = state
        .services
        .admin
        .find(&Login::Username(username))
        .await?;
    Ok(axum::Json(user.into()))
}

/// A user by email (case-insensitive).
#[utoipa::path(get, path = "/api/users/email/{email}", tag = "users", security(("bearer" = [])),
    params(("email" = String, Path)),
    responses(
        (status = 200, body = UserView),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn user_by_email(
    State(state): State<AppState>,
    _: Authorized<AdminRole>,
    request: RequestContext,
    Path(email): Path<String>,
) -> Result<axum::Json<UserView>, Error> {
    limit_by_ip(&state, Scope::LookupIp, &request).await?;
    let user = state.services.admin.find(&Login::Email(email)).await?;
    Ok(axum::Json(user.into()))
}
