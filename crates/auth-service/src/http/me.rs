//! `/api/auth/me`: the caller's own user and profile.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::Problem;
use super::extract::Json;
use super::views::UserView;
use crate::domain::ProfilePatch;
use crate::error::Error;
use crate::services::sessions::CurrentSession;
use crate::state::AppState;

/// The caller's user.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_me(current: CurrentSession) -> axum::Json<UserView> {
    // The user was read with the session, in the bearer check's one query.
    axum::Json(current.user.into())
}

/// Absent fields stay as they are; `null` clears one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// At most 100 characters, no control characters.
    #[serde(default, deserialize_with = "super::extract::nullable")]
    #[schema(value_type = Option<String>, pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x1F\x7F-\x9F]{0,100}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$")]
    display_name: Option<Option<String>>,
    /// An `http` or `https` URL of at most 2048 characters.
    #[serde(default, deserialize_with = "super::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = r"^([\t-\r ]*|https?://[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z][A-Za-z0-9-]*)*(:[0-9]{1,4})?(/[A-Za-z0-9._~/-]*)?)$")]
    avatar_url: Option<Option<String>>,
    /// At most 1000 characters, no control characters.
    #[serde(default, deserialize_with = "super::extract::nullable")]
    #[schema(value_type = Option<String>, pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x1F\x7F-\x9F]{0,1000}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$")]
    bio: Option<Option<String>>,
}

/// Changes the caller's profile; `null` clears a field.
#[utoipa::path(patch, path = "/api/auth/me", tag = "auth", security(("bearer" = [])), request_body = UpdateMeRequest,
    responses((status = 200, body = UserView),
        (status = 400, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn update_me(
    State(state): State<AppState>,
    current: CurrentSession,
    Json(body): Json<UpdateMeRequest>,
) -> Result<axum::Json<UserView>, Error> {
    let patch = ProfilePatch::parse(body.display_name, body.avatar_url, body.bio)?;
    Ok(axum::Json(
        state
            .services
            .accounts
            .update_me(current.user_id(), patch)
            .await?
            .into(),
    ))
}
