//! `/api/auth/session`, `/api/auth/sessions*`, `/api/auth/activity`: the caller's sessions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::Problem;
use super::extract::path_id;
use super::views::SessionView;
use crate::error::Error;
use crate::services::sessions::CurrentSession;
use crate::services::RequestContext;
use crate::state::AppState;

/// The session the bearer token belongs to.
#[utoipa::path(get, path = "/api/auth/session", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = SessionView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_session(
    State(state): State<AppState>,
    current: CurrentSession,
) -> Result<axum::Json<SessionView>, Error> {
    let session = state.services.sessions.current(&current).await?;
    Ok(axum::Json(SessionView::new(session, current.session_id())))
}

/// The caller's active sessions, newest first.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = SessionList),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn list_sessions(
    State(state): State<AppState>,
    current: CurrentSession,
) -> Result<axum::Json<SessionList>, Error> {
    let sessions = state.services.sessions.list(&current).await?;
    let sessions = sessions
        .into_iter()
        .map(|s| SessionView::new(s, current.session_id()))
        .collect();
    Ok(axum::Json(SessionList { sessions }))
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionView>,
}

#[derive(Serialize, ToSchema)]
pub struct Terminated {
    /// How many sessions ended.
    terminated: u64,
}

/// Ends one of the caller's sessions.
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the session id")),
    responses((status = 204, description = "the session has ended"),
        (status = 400, description = "`validation_failed`: not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`session_not_found`, also for another user's session", body = Problem, content_type = "application/problem+json"),
))]
pub async fn delete_session(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let id = path_id(&id)?;
    state
        .services
        .sessions
        .end_own(&current, id, &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the caller except the current one.
#[utoipa::path(delete, path = "/api/auth/sessions/all", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = Terminated),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn delete_other_sessions(
    State(state): State<AppState>,
    current: CurrentSession,
) -> Result<axum::Json<Terminated>, Error> {
    let terminated = state.services.sessions.end_all_others(&current).await?;
    Ok(axum::Json(Terminated { terminated }))
}

/// Marks the session active, pushing its idle expiry forward.
#[utoipa::path(post, path = "/api/auth/activity", tag = "sessions", security(("bearer" = [])),
    responses((status = 204, description = "recorded"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn record_activity(
    State(state): State<AppState>,
    current: CurrentSession,
) -> Result<StatusCode, Error> {
    state.services.sessions.record_activity(&current).await?;
    Ok(StatusCode::NO_CONTENT)
}
