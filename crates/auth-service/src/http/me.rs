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
    #[serde(default, deserialize_with = "super::extract::nullable")]
    #[schema(value_type = Option<String>)]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::extract::nullable")]
    #[schema(value_type = Option<String>)]
    avatar_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::extract::nullable")]
    #[schema(value_type = Option<String>)]
    bio: Option<Option<String>>,
}

/// Changes the caller's profile; `null` clears a field.
#[utoipa::path(patch, path = "/api/auth/me", tag = "auth", security(("bearer" = [])), request_body = UpdateMeRequest,
    responses((status = 200, body = UserView),
        (status = 400, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
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
