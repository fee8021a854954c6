//! axum integration: the [`AuthUser`] extractor (offline), [`OnlineAuthUser`] (plus the
//! session check), the [`RequireRole`] guard, and [`AuthError`] as a problem+json rejection.
//!
//! The extractors take the [`Verifier`] from the router's state through
//! [`FromRef`]: either the state *is* a `Verifier`
//! (`Router::new().with_state(verifier)`), or your state holds one and says where:
//!
//! ```
//! use axum::extract::FromRef;
//! use auth_client::Verifier;
//!
//! #[derive(Clone)]
//! struct AppState {
//!     verifier: Verifier,
//!     // …your own things
//! }
//!
//! impl FromRef<AppState> for Verifier {
//!     fn from_ref(state: &AppState) -> Self {
//!         state.verifier.clone()
//!     }
//! }
//! ```
//!
//! (`#[derive(FromRef)]` from axum's `macros` feature writes the same impl.)

use std::marker::PhantomData;
use std::ops::Deref;

use ::axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use ::axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use ::axum::http::request::Parts;
use ::axum::http::{HeaderMap, HeaderValue, StatusCode};
use ::axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::claims::{Claims, TokenKind};
use crate::error::{AuthError, Outcome};
use crate::verifier::Verifier;

/// The user calling a route, authenticated offline from `Authorization: Bearer <token>`.
///
/// Rejects with [`AuthError`] (401, or 503 when a new key cannot be fetched); a client's token
/// is valid but stands for no user, so it gets 403 `user_token_required` (use [`AuthCaller`]
/// or [`crate::RequireScope`] where services may call). As
/// `Option<AuthUser>` it is `None` when the request has no `Authorization` header, and still
/// rejects a header that is present but invalid. A request verifies its token once, however
/// many extractors ask.
///
/// ```no_run
/// use auth_client::AuthUser;
///
/// async fn profile(user: AuthUser) -> String {
///     format!("hello {} ({})", user.username.as_deref().unwrap_or_default(), user.sub)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser(pub Claims);

/// Any caller auth-service vouches for, a user or a service (a client's token, SPEC §11),
/// authenticated offline. [`Claims::kind`] says which; a client's token has `client_id` and
/// `scope` and no user fields.
///
/// ```no_run
/// use auth_client::{AuthCaller, TokenKind};
///
/// async fn whoami(caller: AuthCaller) -> String {
///     match caller.kind() {
///         TokenKind::Client => format!("service {}", caller.sub),
///         _ => format!("user {}", caller.sub),
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCaller(pub Claims);

/// The caller, authenticated offline *and* confirmed by auth-service to hold a session that is
/// still active ([`Verifier::verify_online`]), so a logout is seen at once.
///
/// One request to auth-service per use. Rejects with 401 `revoked` for an ended session and
/// 503 when the auth service cannot be asked; 403 `user_token_required` for a client's token
/// and 403 `session_required` for an API key (keys are taken only where a scope is required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineAuthUser(pub Claims);

/// A role name for [`RequireRole`].
///
/// ```
/// use auth_client::Role;
///
/// /// Holders of the `moderator` role.
/// pub struct Moderator;
///
/// impl Role for Moderator {
///     const NAME: &'static str = "moderator";
/// }
/// ```
pub trait Role: Send + Sync + 'static {
    /// The role as it appears in the token's `roles` claim.
    const NAME: &'static str;
}

/// The `admin` role that auth-service creates in its first migration.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl Role for Admin {
    const NAME: &'static str = "admin";
}

/// The caller, authenticated offline and holding role `R`; otherwise 403 `forbidden`
/// (or 401 when not authenticated at all).
///
/// ```no_run
/// use auth_client::{Admin, RequireRole};
///
/// async fn delete_everything(admin: RequireRole<Admin>) -> String {
///     format!("as you wish, {}", admin.username.as_deref().unwrap_or_default())
/// }
/// ```
///
/// For a role known only at run time, extract [`AuthUser`] and call
/// [`Claims::require_role`], which returns the same rejection.
pub struct RequireRole<R: Role> {
    /// The caller's claims.
    pub claims: Claims,
    role: PhantomData<fn() -> R>,
}

impl<R: Role> std::fmt::Debug for RequireRole<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireRole")
            .field("role", &R::NAME)
            .field("claims", &self.claims)
            .finish()
    }
}

impl Deref for AuthUser {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl Deref for AuthCaller {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl Deref for OnlineAuthUser {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl<R: Role> Deref for RequireRole<R> {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.claims
    }
}

/// Claims already verified for this request, so stacked extractors verify once.
#[derive(Clone)]
struct Verified(Claims);

/// The request's token verified offline, once per request however many extractors ask.
pub(crate) async fn verified_offline<S>(parts: &mut Parts, state: &S) -> Result<Claims, AuthError>
where
    Verifier: FromRef<S>,
{
    if let Some(Verified(claims)) = parts.extensions.get::<Verified>() {
        return Ok(claims.clone());
    }
    let claims = Verifier::from_ref(state)
        .verify(bearer_token(&parts.headers)?)
        .await?;
    parts.extensions.insert(Verified(claims.clone()));
    Ok(claims)
}

/// The request's token verified online (an API key included).
pub(crate) async fn verified_online<S>(parts: &mut Parts, state: &S) -> Result<Claims, AuthError>
where
    Verifier: FromRef<S>,
{
    let claims = Verifier::from_ref(state)
        .verify_online(bearer_token(&parts.headers)?)
        .await?;
    parts.extensions.insert(Verified(claims.clone()));
    Ok(claims)
}

/// `claims` when they are a user's; SPEC §11: a client's token is valid but acts for no user,
/// and an API key is accepted only where a scope limits it.
fn a_user(claims: Claims) -> Result<Claims, AuthError> {
    match claims.kind() {
        TokenKind::User => Ok(claims),
        TokenKind::Client => Err(AuthError::UserTokenRequired),
        TokenKind::ApiKey => Err(AuthError::SessionRequired),
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        a_user(verified_offline(parts, state).await?).map(Self)
    }
}

impl<S> FromRequestParts<S> for AuthCaller
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        verified_offline(parts, state).await.map(Self)
    }
}

impl<S> OptionalFromRequestParts<S> for AuthUser
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, AuthError> {
        if !parts.headers.contains_key(AUTHORIZATION) {
            return Ok(None);
        }
        <Self as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

impl<S> FromRequestParts<S> for OnlineAuthUser
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        a_user(verified_online(parts, state).await?).map(Self)
    }
}

impl<S, R> FromRequestParts<S> for RequireRole<R>
where
    Verifier: FromRef<S>,
    S: Send + Sync,
    R: Role,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        let AuthUser(claims) =
            <AuthUser as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        claims.require_role(R::NAME)?;
        Ok(Self {
            claims,
            role: PhantomData,
        })
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(if headers.contains_key(AUTHORIZATION) {
            AuthError::MalformedHeader
        } else {
            AuthError::MissingToken
        });
    };
    let (scheme, token) = value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .ok_or(AuthError::MalformedHeader)?;
    let token = token.trim_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.contains(char::is_whitespace)
    {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

/// The problem body of auth-service (SPEC §2) plus the client's `reason`.
#[derive(Serialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
    code: &'static str,
    reason: &'static str,
}

impl AuthError {
    /// What a client may read: no URLs or transport errors, no echo of attacker input.
    fn public_detail(&self) -> String {
        match self {
            AuthError::UnknownKid { .. } => {
                "the token names a signing key the auth service does not publish".to_owned()
            }
            AuthError::JwksUnavailable { .. } => {
                "the auth service's signing keys cannot be fetched right now".to_owned()
            }
            AuthError::OnlineCheckUnavailable { .. } => {
                "the auth service cannot be asked about this token right now".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// A problem+json response: 401 with a `WWW-Authenticate: Bearer` challenge, 403 `forbidden`,
/// or 503 `service_unavailable`; `code` as auth-service answers, `reason` from
/// [`AuthError::reason`]. 503s are logged at `warn` here, refusals at `debug`.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = match self.outcome() {
            Outcome::Unauthenticated => StatusCode::UNAUTHORIZED,
            Outcome::Forbidden => StatusCode::FORBIDDEN,
            Outcome::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        if self.outcome() == Outcome::Unavailable {
            tracing::warn!(reason = self.reason(), error = %self, "cannot check a bearer token");
        } else {
            tracing::debug!(reason = self.reason(), "refused a request's bearer token");
        }
        let problem = Problem {
            kind: format!("urn:auth-service:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.public_detail(),
            code: self.code(),
            reason: self.reason(),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // RFC 6750 §3: no error code when credentials are absent, `invalid_token` otherwise.
        // RFC 6750 §3.1: a missing scope is `insufficient_scope`, naming the scope needed.
        let challenge = match &self {
            AuthError::MissingToken => Some(HeaderValue::from_static("Bearer")),
            AuthError::MalformedHeader => {
                Some(HeaderValue::from_static("Bearer error=\"invalid_request\""))
            }
            AuthError::MissingScope { scope } => HeaderValue::from_str(&format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
            ))
            .ok(),
            _ if status == StatusCode::UNAUTHORIZED => {
                Some(HeaderValue::from_static("Bearer error=\"invalid_token\""))
            }
            _ => None,
        };
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_bearer_token_is_taken_from_the_authorization_header() {
        assert_eq!(bearer_token(&headers(&["Bearer a.b.c"])), Ok("a.b.c"));
        assert_eq!(bearer_token(&headers(&["bearer a.b.c"])), Ok("a.b.c"));
        assert_eq!(bearer_token(&headers(&[])), Err(AuthError::MissingToken));
        for bad in [
            &["Basic dXNlcjpwYXNz"][..],
            &["Bearer"],
            &["Bearer "],
            &["Bearer a b"],
            &["Bearer a", "Bearer b"],
        ] {
            assert_eq!(
                bearer_token(&headers(bad)),
                Err(AuthError::MalformedHeader),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_refusal_is_a_problem_with_a_bearer_challenge() {
        let response = AuthError::Expired.into_response();

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
    }

    #[test]
    fn a_missing_role_is_forbidden_and_an_outage_unavailable() {
        let forbidden = AuthError::Forbidden {
            role: "admin".into(),
        }
        .into_response();
        let outage = AuthError::JwksUnavailable {
            reason: "GET http://auth/.well-known/jwks.json: refused".into(),
        }
        .into_response();

        assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
        assert!(!forbidden.headers().contains_key(WWW_AUTHENTICATE));
        assert_eq!(outage.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
