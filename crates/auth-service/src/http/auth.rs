//! `/api/auth/*`: signup, login, refresh, logout and the public auth settings. The caller's
//! profile is in `me.rs`, their sessions in `sessions.rs`, introspection in `introspect.rs`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::csrf;
use super::error::Problem;
use super::extract::{is_json, parse_json, Json, MaybeSession};
use super::schema;
use super::views::{
    refresh_cookie, CookiePolicy, TokenBody, TokenResponse, UserView, REFRESH_COOKIE,
};
use crate::error::Error;
use crate::services::accounts::login::{LoginForm, LoginOutcome};
use crate::services::accounts::signup::{Signup, SignupForm};
use crate::services::RequestContext;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[schema(as = AuthConfig)]
pub struct AuthConfigView {
    access_token_ttl_seconds: u64,
    refresh_token_ttl_seconds: u64,
    session_idle_timeout_seconds: u64,
    session_lifetime_seconds: u64,
    max_sessions_per_user: u32,
    password_min_length: usize,
    password_max_length: usize,
}

/// Public settings a client needs: token lifetimes and password bounds.
#[utoipa::path(get, path = "/api/auth/config", tag = "auth",
    responses((status = 200, body = AuthConfigView)))]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// An email address (stored lowercased). Its local part is at most 64 octets of UTF-8 after
    /// lowercasing (RFC 5321 §4.5.3.1.1), which a pattern cannot count for non-ASCII text: the
    /// pattern admits up to 64 ASCII characters, or up to 16 characters when any is not ASCII
    /// (16 always fit). A longer non-ASCII local part within 64 octets is accepted as well.
    #[schema(
        example = "alice@example.com",
        pattern = r#"^([!#-?A-~]{1,64}|[^\s"@\x00-\x1F\x7F-\x9F]{1,16})@([^\W_]|-)+(\.([^\W_]|-)+)+$"#,
        max_length = 254
    )]
    email: String,
    /// 3–50 letters, digits, `_`, `.` or `-`.
    #[schema(example = "alice", pattern = r"^[A-Za-z0-9_.-]{3,50}$")]
    username: String,
    /// 8–128 characters by default (`GET /api/auth/config`), not too easy to guess, and not
    /// containing the username or the email's local part.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    password: SecretString,
    /// At most 100 characters, no control characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x1F\x7F-\x9F]{0,100}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    display_name: Option<String>,
}

/// Creates an account and signs it in.
///
/// 409 `email_taken` / `username_taken` when the email or username is in use. When email
/// verification is required before login, the answer is `{user}` without tokens.
#[utoipa::path(post, path = "/api/auth/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, description = "signed up and in; the refresh token is set as a cookie (and is in the body unless `auth.refresh_token_in_body` is false)", body = TokenBody),
        (status = 400, description = "a field is invalid (`validation_failed`) or the body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken` or `username_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn signup(
    State(state): State<AppState>,
    request: RequestContext,
    Json(body): Json<SignupRequest>,
) -> Result<Response, Error> {
    let form = SignupForm {
        email: body.email,
        username: body.username,
        password: body.password,
        display_name: body.display_name,
    };
    Ok(
        match state.services.accounts.signup(form, &request).await? {
            Signup::SignedIn(pair) => token_response(&state, StatusCode::CREATED, *pair),
            Signup::VerificationRequired(user) => (
                StatusCode::CREATED,
                axum::Json(json!({ "user": UserView::from(*user) })),
            )
                .into_response(),
        },
    )
}

/// Exactly one of `email` and `username` (its schema: [`schema::LoginSchema`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: Option<String>,
    username: Option<String>,
    password: SecretString,
}

/// The same as `POST /api/auth/signup`.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, description = "signed up and in", body = TokenBody),
        (status = 400, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken` or `username_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many requests from this address", body = Problem, content_type = "application/problem+json"),
))]
pub async fn register(
    state: State<AppState>,
    request: RequestContext,
    body: Json<SignupRequest>,
) -> Result<Response, Error> {
    signup(state, request, body).await
}

/// Logs in with the email or the username.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = schema::LoginSchema,
    responses(
        (status = 200, description = "logged in; the refresh token is set as a cookie (and is in the body unless `auth.refresh_token_in_body` is false). For an account with a second factor (SPEC §10) the answer is instead `MfaChallengeView` (`{mfa_required:true, mfa_token, methods, expires_in}`), with no tokens and no cookie: complete it with `POST /api/auth/mfa/verify`", body = schema::LoginAnswerSchema),
        (status = 400, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_credentials`, the same for an unknown user and a wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled` or `email_not_verified`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts`, with `Retry-After`: the identifier is locked, or the client address sent too many logins", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn login(
    State(state): State<AppState>,
    request: RequestContext,
    Json(body): Json<LoginRequest>,
) -> Result<Response, Error> {
    let form = LoginForm {
        email: body.email,
        username: body.username,
        password: body.password,
    };
    Ok(match state.services.accounts.login(form, &request).await? {
        LoginOutcome::SignedIn(pair) => token_response(&state, StatusCode::OK, *pair),
        LoginOutcome::MfaRequired(challenge) => super::views::challenge_answer(challenge),
    })
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Absent when the `refresh_token` cookie carries it.
    #[schema(value_type = Option<String>)]
    refresh_token: Option<SecretString>,
}

/// The refresh token from the body, else from the cookie. SPEC §4 (CSRF): a cookie-borne
/// token counts only on a request from an admitted origin (`csrf.rs`) whose body is declared
/// `application/json`; a body token is no ambient credential and is taken as it is.
fn presented_refresh_token(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    jar: &CookieJar,
    body: &Bytes,
) -> Result<Option<SecretString>, Error> {
    let has_body = !body.iter().all(u8::is_ascii_whitespace);
    if has_body && is_json(headers) {
        if let Some(token) = parse_json::<RefreshRequest>(body)?.refresh_token {
            return Ok(Some(token));
        }
    }
    // From here on the cookie is the only credential the request can carry.
    let Some(cookie) = jar.get(REFRESH_COOKIE) else {
        return if has_body && !is_json(headers) {
            Err(Error::UnsupportedMediaType)
        } else {
            Ok(None)
        };
    };
    csrf::admit(headers, uri, &state.config.server.cors_origins)?;
    if !is_json(headers) {
        return Err(Error::UnsupportedMediaType);
    }
    Ok(Some(SecretString::from(cookie.value().to_owned())))
}

/// The refresh token of a body, checked like every JSON body: no body (or only whitespace) is
/// none, a body that is not `application/json` is 415, a malformed one or one with unknown
/// fields is 400.
fn refresh_token_in_body(headers: &HeaderMap, body: &Bytes) -> Result<Option<SecretString>, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !is_json(headers) {
        return Err(Error::UnsupportedMediaType);
    }
    Ok(parse_json::<RefreshRequest>(body)?.refresh_token)
}

/// Spends a refresh token (from the body or the cookie) and answers its successor.
///
/// A retry of the token just spent, inside the grace window, answers the same successor;
/// any later reuse ends the session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body(content = RefreshRequest, description = "`{}` or no body when the cookie carries the token"),
    params(("refresh_token" = Option<String>, Cookie, description = "the refresh token, when the body does not carry it; counts only with `Content-Type: application/json`")),
    responses(
        (status = 200, description = "the successor; the refresh token is also set as a cookie", body = TokenBody),
        (status = 400, description = "`validation_failed` (an unknown field) or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized` (no refresh token in the body or the cookie, with `WWW-Authenticate: Bearer`), `invalid_refresh_token` or `refresh_token_reused`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`csrf_rejected`: a cookie-borne token from an origin that is neither this site nor in the CORS allow-list", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "a cookie-borne token without `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
))]
pub async fn refresh(
    State(state): State<AppState>,
    request: RequestContext,
    headers: HeaderMap,
    uri: Uri,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, Error> {
    let token =
        presented_refresh_token(&state, &headers, &uri, &jar, &body)?.ok_or(Error::Unauthorized)?;
    let pair = state.services.sessions.refresh(&token, &request).await?;
    Ok(token_response(&state, StatusCode::OK, pair))
}

/// Ends the session of the bearer token, or of the refresh token in the body or cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body(content = RefreshRequest, description = "optional; with a bearer token it is checked but not needed"),
    params(("refresh_token" = Option<String>, Cookie, description = "the refresh token, when neither a bearer token nor the body is given; counts only with `Content-Type: application/json`")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "the session has ended; the cookie is cleared"),
        (status = 400, description = "`validation_failed` (an unknown field) or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: neither a bearer token nor a refresh token given, or one that is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`csrf_rejected`: a cookie-borne token from an origin that is neither this site nor in the CORS allow-list; `session_required`: an API key as the bearer (SPEC §11)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: a body, or a cookie-borne token, without `Content-Type: application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn logout(
    State(state): State<AppState>,
    MaybeSession(current): MaybeSession,
    request: RequestContext,
    headers: HeaderMap,
    uri: Uri,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, Error> {
    // With a bearer the body is not needed, but it is still checked like any other body.
    let token = if current.is_some() {
        refresh_token_in_body(&headers, &body)?;
        None
    } else {
        presented_refresh_token(&state, &headers, &uri, &jar, &body)?
    };
    state
        .services
        .sessions
        .logout(current.as_ref(), token.as_ref(), &request)
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let cleared = refresh_cookie(String::new(), 0, CookiePolicy::of(&state.config.server));
    if let Ok(value) = HeaderValue::from_str(&cleared.to_string()) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    Ok(response)
}

pub(super) fn token_response(
    state: &AppState,
    status: StatusCode,
    pair: crate::services::TokenPair,
) -> Response {
    TokenResponse {
        status,
        pair,
        cookie: CookiePolicy::of(&state.config.server),
        token_in_body: state.config.auth.refresh_token_in_body,
    }
    .into_response()
}
