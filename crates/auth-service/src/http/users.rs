//! `/api/users`: administration of users (SPEC §2). Every route requires the `admin` role.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::Problem;
use super::extract::{path_id, AdminRole, Authorized, Json};
use super::schema::RoleName;
use super::views::UserView;
use crate::domain::{Login, NewAccount};
use crate::error::Error;
use crate::services::admin::patch::PatchForm;
use crate::services::admin::CreateUser;
use crate::services::RequestContext;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// An email address (stored lowercased). Its local part is at most 64 octets of UTF-8 after
    /// lowercasing (RFC 5321 §4.5.3.1.1), which a pattern cannot count for non-ASCII text: the
    /// pattern admits up to 64 ASCII characters, or up to 16 characters when any is not ASCII
    /// (16 always fit). A longer non-ASCII local part within 64 octets is accepted as well.
    #[schema(
        example = "bob@example.com",
        pattern = r#"^([!#-?A-~]{1,64}|[^\s"@\x00-\x1F\x7F-\x9F]{1,16})@([^\W_]|-)+(\.([^\W_]|-)+)+$"#,
        max_length = 254
    )]
    email: String,
    #[schema(example = "bob", pattern = r"^[A-Za-z0-9_.-]{3,50}$")]
    username: String,
    /// The password policy applies (see `POST /api/auth/signup`).
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    password: SecretString,
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x1F\x7F-\x9F]{0,100}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    display_name: Option<String>,
    /// Global roles, each an existing role; `["user"]` when absent.
    #[schema(inline, value_type = Option<Vec<RoleName>>)]
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
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
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
        (status = 401, description = "`unauthorized`: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many requests from this address", body = Problem, content_type = "application/problem+json"),
))]
pub async fn user_by_id(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(id): Path<String>,
) -> Result<axum::Json<UserView>, Error> {
    let user = state
        .services
        .admin
        .user(&caller, path_id(&id)?, &request)
        .await?;
    Ok(axum::Json(user.into()))
}

/// A user by username (case-insensitive).
///
/// The path segment is named `id` like the other `/api/users/{id}` routes (one router tree),
/// but here it is the username.
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "the username")),
    responses(
        (status = 200, body = UserView),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many requests from this address", body = Problem, content_type = "application/problem+json"),
))]
pub async fn user_by_username(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(username): Path<String>,
) -> Result<axum::Json<UserView>, Error> {
    let user = state
        .services
        .admin
        .find(&caller, &Login::Username(username), &request)
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
        (status = 401, description = "`unauthorized`: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many requests from this address", body = Problem, content_type = "application/problem+json"),
))]
pub async fn user_by_email(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(email): Path<String>,
) -> Result<axum::Json<UserView>, Error> {
    let user = state
        .services
        .admin
        .find(&caller, &Login::Email(email), &request)
        .await?;
    Ok(axum::Json(user.into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Matches email, username or display name, case-insensitively.
    q: Option<String>,
    /// 1–100, default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    users: Vec<UserView>,
    /// Absent on the last page.
    next_cursor: Option<String>,
}

/// Users, oldest first, a page at a time (keyset pagination).
#[utoipa::path(get, path = "/api/users", tag = "users", security(("bearer" = [])), params(ListQuery),
    responses(
        (status = 200, body = UserList),
        (status = 400, description = "`validation_failed`: limit outside 1–100 or a bad cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many requests from this address", body = Problem, content_type = "application/problem+json"),
))]
pub async fn list_users(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<UserList>, Error> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            "out_of_range",
            "must be between 1 and 100",
        ));
    }
    let page = state
        .services
        .admin
        .list_users(
            &caller,
            query.q.as_deref(),
            limit,
            query.cursor.as_deref(),
            &request,
        )
        .await?;
    Ok(axum::Json(UserList {
        users: page.users.into_iter().map(UserView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Any of the fields; absent fields stay, `null` clears the profile fields.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUserRequest {
    /// An email address (stored lowercased). Its local part is at most 64 octets of UTF-8 after
    /// lowercasing (RFC 5321 §4.5.3.1.1), which a pattern cannot count for non-ASCII text: the
    /// pattern admits up to 64 ASCII characters, or up to 16 characters when any is not ASCII
    /// (16 always fit). A longer non-ASCII local part within 64 octets is accepted as well.
    #[schema(
        pattern = r#"^([!#-?A-~]{1,64}|[^\s"@\x00-\x1F\x7F-\x9F]{1,16})@([^\W_]|-)+(\.([^\W_]|-)+)+$"#,
        max_length = 254
    )]
    email: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9_.-]{3,50}$")]
    username: Option<String>,
    #[serde(default, deserialize_with = "super::extract::nullable")]
    #[schema(value_type = Option<String>, pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x1F\x7F-\x9F]{0,100}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$")]
    display_name: Option<Option<String>>,
    /// An `http` or `https` URL of at most 2048 characters.
    #[serde(default, deserialize_with = "super::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = r"^([\t-\r ]*|https?://[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z][A-Za-z0-9-]*)*(:[0-9]{1,4})?(/[A-Za-z0-9._~/-]*)?)$")]
    avatar_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::extract::nullable")]
    #[schema(value_type = Option<String>, pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x1F\x7F-\x9F]{0,1000}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$")]
    bio: Option<Option<String>>,
    is_verified: Option<bool>,
    /// `false` ends the user's sessions at once.
    is_active: Option<bool>,
    /// Replaces the global roles; each an existing role.
    #[schema(inline, value_type = Option<Vec<RoleName>>)]
    roles: Option<Vec<String>>,
    /// A new password (the policy applies); ends the user's sessions. Not with `password_hash`.
    #[schema(value_type = Option<String>, format = Password, min_length = 8, max_length = 128)]
    password: Option<SecretString>,
    /// An existing bcrypt (cost 4–14) or argon2id hash, taken as is (imports); ends the user's
    /// sessions. Not with `password`.
    #[schema(
        pattern = r"^(\$2[aby]\$(0[4-9]|1[0-4])\$[./A-Za-z0-9]{53}|\$argon2id\$v=19\$m=[1-9][0-9]{3,4},t=[1-9],p=1\$[A-Za-z0-9+/]{21}[AQgw]\$[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048])$"
    )]
    password_hash: Option<String>,
}

/// Changes a user. Deactivating them or setting a password ends their sessions at once.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", security(("bearer" = [])), request_body = PatchUserRequest,
    params(("id" = Uuid, Path, description = "the user id")),
    responses(
        (status = 200, body = UserView),
        (status = 400, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken`, `username_taken`, or `last_admin` when no active administrator would remain", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn patch_user(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(id): Path<String>,
    Json(body): Json<PatchUserRequest>,
) -> Result<axum::Json<UserView>, Error> {
    let user = state
        .services
        .admin
        .update_user(&caller, path_id(&id)?, body.into(), &request)
        .await?;
    Ok(axum::Json(user.into()))
}

impl From<PatchUserRequest> for PatchForm {
    fn from(body: PatchUserRequest) -> Self {
        Self {
            email: body.email,
            username: body.username,
            display_name: body.display_name,
            avatar_url: body.avatar_url,
            bio: body.bio,
            is_verified: body.is_verified,
            is_active: body.is_active,
            roles: body.roles,
            password: body.password,
            password_hash: body.password_hash,
        }
    }
}

/// Soft-deletes a user: their email and username become free, their sessions end.
#[utoipa::path(delete, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the user id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "`validation_failed`: not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`last_admin`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = Problem, content_type = "application/problem+json"),
))]
pub async fn delete_user(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let id = path_id(&id)?;
    state
        .services
        .admin
        .delete_user(&caller, id, &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
