//! Response shapes of SPEC §2: the user object (never a hash), sessions, token responses.

use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::{CookieSameSite, ServerConfig};
use crate::domain::{Session, User};
use crate::services::accounts::challenge::MfaChallenge;
use crate::services::TokenPair;

pub const REFRESH_COOKIE: &str = "refresh_token";

/// A user as every response shows it: never a password hash.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub is_verified: bool,
    pub is_active: bool,
    pub roles: Vec<String>,
    pub territories: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            username: user.username,
            display_name: user.display_name,
            avatar_url: user.avatar_url,
            bio: user.bio,
            is_verified: user.is_verified,
            is_active: user.is_active,
            roles: user.roles,
            territories: user.territories,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// What the user agent says about the device.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Device)]
pub struct DeviceView {
    pub browser: Option<String>,
    pub os: Option<String>,
    pub device_type: Option<String>,
}

/// One session of the caller; `current` marks the one the token belongs to.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionView {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub idle_expires_at: DateTime<Utc>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub device: DeviceView,
    pub current: bool,
}

impl SessionView {
    pub fn new(session: Session, current: Uuid) -> Self {
        Self {
            current: session.id == current,
            id: session.id,
            created_at: session.created_at,
            last_activity_at: session.last_activity_at,
            expires_at: session.expires_at,
            idle_expires_at: session.idle_expires_at,
            ip_address: session.ip_address,
            user_agent: session.user_agent,
            device: DeviceView {
                browser: session.device.browser,
                os: session.device.os,
                device_type: session.device.device_type,
            },
        }
    }
}

/// The answer of signup, login and refresh.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Tokens)]
pub struct TokenBody {
    /// A JWT for `Authorization: Bearer`.
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    expires_in: u64,
    /// Also in the `refresh_token` cookie; absent when `auth.refresh_token_in_body` is false
    /// (a browser deployment: the HttpOnly cookie alone carries it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    refresh_token: Option<String>,
    refresh_expires_in: u64,
    session_id: Uuid,
    user: UserView,
    /// `true` for an enrollment-only session (SPEC §10 `auth.require_mfa_for_roles`): enroll
    /// a second factor (`POST /api/auth/mfa/totp`), then log in again. Absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    mfa_enrollment_required: bool,
}

/// A token response: the JSON body, the refresh cookie and `Cache-Control: no-store`.
pub struct TokenResponse {
    pub status: StatusCode,
    pub pair: TokenPair,
    pub cookie: CookiePolicy,
    /// `auth.refresh_token_in_body`.
    pub token_in_body: bool,
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let pair = self.pair;
        let refresh = pair.refresh_token.expose_secret().to_owned();
        let cookie = refresh_cookie(refresh.clone(), pair.refresh_expires_in, self.cookie);
        let body = TokenBody {
            access_token: pair.access_token,
            token_type: "Bearer",
            expires_in: pair.expires_in,
            refresh_token: self.token_in_body.then_some(refresh),
            refresh_expires_in: pair.refresh_expires_in,
            session_id: pair.session_id,
            user: pair.user.into(),
            mfa_enrollment_required: pair.mfa_enrollment,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        no_store(&mut response);
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(SET_COOKIE, value);
        }
        response
    }
}

/// The refresh cookie's attributes, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
    pub same_site: CookieSameSite,
}

impl CookiePolicy {
    pub fn of(server: &ServerConfig) -> Self {
        Self {
            secure: server.cookie_secure,
            same_site: server.cookie_same_site,
        }
    }
}

/// SPEC §2: HttpOnly, Secure (switchable), SameSite=Strict (configurable), Path=/api/auth.
/// A `SameSite=None` cookie is also `Partitioned` (CHIPS): browsers that block third-party
/// cookies (Chromium among them) still keep it, in a jar of the page's own site.
pub fn refresh_cookie(
    value: String,
    max_age_seconds: u64,
    policy: CookiePolicy,
) -> Cookie<'static> {
    let same_site = match policy.same_site {
        CookieSameSite::Strict => SameSite::Strict,
        CookieSameSite::Lax => SameSite::Lax,
        CookieSameSite::None => SameSite::None,
    };
    Cookie::build((REFRESH_COOKIE, value))
        .http_only(true)
        .secure(policy.secure)
        .same_site(same_site)
        .partitioned(policy.same_site == CookieSameSite::None)
        .path("/api/auth")
        .max_age(time_seconds(max_age_seconds))
        .build()
}

fn time_seconds(seconds: u64) -> cookie::time::Duration {
    cookie::time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX))
}

pub fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The answer of a password step that needs a second factor (SPEC §10): no tokens.
#[derive(Serialize, ToSchema)]
pub struct MfaChallengeView {
    /// Always true.
    mfa_required: bool,
    /// Single use, valid for `expires_in` seconds, for `POST /api/auth/mfa/verify`.
    mfa_token: String,
    /// The methods `POST /api/auth/mfa/verify` accepts: `totp`, `recovery_code`.
    methods: Vec<&'static str>,
    expires_in: u64,
}

pub fn challenge_answer(challenge: MfaChallenge) -> Response {
    secret_answer(MfaChallengeView {
        mfa_required: true,
        mfa_token: challenge.mfa_token.expose_secret().to_owned(),
        methods: challenge.methods,
        expires_in: challenge.expires_in,
    })
}

/// Answers carrying secrets are never stored by caches.
pub fn secret_answer(body: impl Serialize) -> Response {
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    response
}
