//! `/api/auth/*`: signup, login, refresh, logout, the caller's profile and sessions.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::extract::{is_json, parse_json, Json, MaybeSession};
use super::views::{
    no_store, refresh_cookie, SessionView, TokenResponse, UserView, REFRESH_COOKIE,
};
use crate::app::AppState;
use crate::domain::{Login, NewAccount, ProfilePatch};
use crate::error::Error;
use crate::services::accounts::Signup;
use crate::services::sessions::CurrentSession;
use crate::services::RequestContext;

#[derive(Serialize)]
pub struct AuthConfigView {
    access_token_ttl_seconds: u64,
    refresh_token_ttl_seconds: u64,
    session_idle_timeout_seconds: u64,
    session_lifetime_seconds: u64,
    max_sessions_per_user: u32,
    password_min_length: usize,
    password_max_length: usize,
}

pub async fn get_config(State(state): State<AppState>) -> axum::Json<AuthConfigView> {
    let (auth, password) = (&state.config.auth, &state.config.password);
    axum::Json(AuthConfigView {
        access_token_ttl_seconds: auth.access_token_ttl.as_secs(),
        refresh_token_ttl_seconds: auth.refresh_token_ttl.as_secs(),
        session_idle_timeout_seconds: auth.session_idle_timeout.as_secs(),
        session_lifetime_seconds: auth.session_lifetime.as_secs(),
        max_sessions_per_user: auth.max_sessions_per_user,
        password_min_length: password.min_length,
        password_max_length: password.max_length,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    email: String,
    username: String,
    password: SecretString,
    display_name: Option<String>,
}

pub async fn signup(
    State(state): State<AppState>,
    request: RequestContext,
    Json(body): Json<SignupRequest>,
) -> Result<Response, Error> {
    let limits = (
        state.config.password.min_length,
        state.config.password.max_length,
    );
    let account = NewAccount::parse(
        &body.email,
        &body.username,
        &body.password,
        body.display_name,
        limits,
    )?;
    Ok(
        match state.services.accounts.signup(account, &request).await? {
            Signup::SignedIn(pair) => token_response(&state, StatusCode::CREATED, *pair),
            Signup::VerificationRequired(user) => (
                StatusCode::CREATED,
                axum::Json(json!({ "user": UserView::from(*user) })),
            )
                .into_response(),
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: Option<String>,
    username: Option<String>,
    password: SecretString,
}

pub async fn login(
    State(state): State<AppState>,
    request: RequestContext,
    Json(body): Json<LoginRequest>,
) -> Result<Response, Error> {
    let login = match (body.email, body.username) {
        (Some(email), None) => Login::Email(email),
        (None, Some(username)) => Login::Username(username),
        _ => {
            return Err(Error::invalid(
                "email",
                "required",
                "give exactly one of email or username",
            ))
        }
    };
    let max = state.config.password.max_length;
    // SPEC §4: a password over the maximum is refused before any hashing work.
    if secrecy::ExposeSecret::expose_secret(&body.password)
        .chars()
        .count()
        > max
    {
        return Err(Error::invalid(
            "password",
            "too_long",
            &format!("must be at most {max} characters"),
        ));
    }
    let pair = state
        .services
        .accounts
        .login(login, body.password, &request)
        .await?;
    Ok(token_response(&state, StatusCode::OK, pair))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: Option<SecretString>,
}

/// The refresh token from the body, else from the cookie. SPEC §4 (CSRF): a cookie-borne
/// token counts only on a request whose body is declared `application/json`.
fn presented_refresh_token(
    headers: &HeaderMap,
    jar: &CookieJar,
    body: &Bytes,
) -> Result<Option<SecretString>, Error> {
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        if !is_json(headers) {
            return Err(Error::UnsupportedMediaType);
        }
        parse_json::<RefreshRequest>(body)?.refresh_token
    };
    if from_body.is_some() {
        return Ok(from_body);
    }
    match jar.get(REFRESH_COOKIE) {
        Some(_) if !is_json(headers) => Err(Error::UnsupportedMediaType),
        Some(cookie) => Ok(Some(SecretString::from(cookie.value().to_owned()))),
        None => Ok(None),
    }
}

pub async fn refresh(
    State(state): State<AppState>,
    request: RequestContext,
    headers: HeaderMap,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, Error> {
    let token = presented_refresh_token(&headers, &jar, &body)?.ok_or_else(|| {
        Error::invalid(
            "refresh_token",
            "required",
            "give the refresh token in the body or the cookie",
        )
    })?;
    let pair = state.services.sessions.refresh(&token, &request).await?;
    Ok(token_response(&state, StatusCode::OK, pair))
}

pub async fn logout(
    State(state): State<AppState>,
    MaybeSession(current): MaybeSession,
    request: RequestContext,
    headers: HeaderMap,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, Error> {
    let token = if current.is_some() {
        None
    } else {
        presented_refresh_token(&headers, &jar, &body)?
    };
    state
        .services
        .sessions
        .logout(current.as_ref(), token.as_ref(), &request)
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let cleared = refresh_cookie(String::new(), 0, state.config.server.cookie_secure);
    if let Ok(value) = HeaderValue::from_str(&cleared.to_string()) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    Ok(response)
}

pub async fn get_me(
    State(state): State<AppState>,
    current: CurrentSession,
) -> Result<axum::Json<UserView>, Error> {
    Ok(axum::Json(
        state.services.accounts.me(current.user_id()).await?.into(),
    ))
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn nullable<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(deserializer)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    #[serde(default, deserialize_with = "nullable")]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    avatar_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    bio: Option<Option<String>>,
}

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

pub async fn get_session(
    State(state): State<AppState>,
    current: CurrentSession,
) -> Result<axum::Json<SessionView>, Error> {
    let session = state.services.sessions.current(&current).await?;
    Ok(axum::Json(SessionView::new(session, current.session_id())))
}

pub async fn list_sessions(
    State(state): State<AppState>,
    current: CurrentSession,
) -> Result<Response, Error> {
    let sessions = state.services.sessions.list(&current).await?;
    let views: Vec<_> = sessions
        .into_iter()
        .map(|s| SessionView::new(s, current.session_id()))
        .collect();
    Ok(axum::Json(json!({ "sessions": views })).into_response())
}

pub async fn delete_session(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let id = Uuid::parse_str(&id).map_err(|_| Error::invalid("id", "invalid", "must be a UUID"))?;
    state
        .services
        .sessions
        .end_own(&current, id, &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_other_sessions(
    State(state): State<AppState>,
    current: CurrentSession,
) -> Result<axum::Json<serde_json::Value>, Error> {
    let terminated = state.services.sessions.end_all_others(&current).await?;
    Ok(axum::Json(json!({ "terminated": terminated })))
}

pub async fn record_activity(
    State(state): State<AppState>,
    current: CurrentSession,
) -> Result<StatusCode, Error> {
    state.services.sessions.record_activity(&current).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectRequest {
    token: String,
}

pub async fn introspect(
    State(state): State<AppState>,
    Json(body): Json<IntrospectRequest>,
) -> Result<Response, Error> {
    let body = match state.services.sessions.introspect(&body.token).await? {
        Some(claims) => json!({
            "active": true,
            "sub": claims.sub,
            "sid": claims.sid,
            "username": claims.username,
            "roles": claims.roles,
            "territory": claims.territory,
            "exp": claims.exp,
            "iat": claims.iat,
            "token_type": "Bearer",
            "iss": claims.iss,
            "aud": claims.aud,
        }),
        None => json!({ "active": false }),
    };
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    Ok(response)
}

fn token_response(
    state: &AppState,
    status: StatusCode,
    pair: crate::services::TokenPair,
) -> Response {
    TokenResponse {
        status,
        pair,
        secure_cookie: state.config.server.cookie_secure,
    }
    .into_response()
}
