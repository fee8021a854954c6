//! Why a request was refused, why a token could not be had, and why a verifier or token source
//! could not be built. [`AuthError::reason`] is the only place the client's snake_case reasons
//! are written; [`AuthError::code`] maps them onto the problem codes auth-service itself answers
//! with.

use std::time::Duration;

/// Why a bearer token was not accepted.
///
/// Each variant is an outcome a caller can act on: 401 variants mean "this token will never
/// work, get a new one", the `*Unavailable` variants mean "try again later" (the token may be
/// fine), and [`AuthError::Forbidden`] means "authenticated, but not allowed".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The request has no `Authorization` header.
    #[error("the request carries no bearer token")]
    MissingToken,
    /// The `Authorization` header is not `Bearer <token>`.
    #[error("the Authorization header is not `Bearer <token>`")]
    MalformedHeader,
    /// The token is not a well-formed JWT of the shape auth-service issues.
    #[error("the token is malformed: {0}")]
    MalformedToken(&'static str),
    /// The token names a key that the auth service does not publish, even after a refresh (or a
    /// refresh was refused by the refresh interval; see [`crate::VerifierConfig::min_refresh_interval`]).
    #[error("the token names an unknown signing key `{kid}`")]
    UnknownKid {
        /// The `kid` of the token's header.
        kid: String,
    },
    /// The token names a key that is not cached and the JWKS endpoint cannot be reached, so it
    /// cannot be verified now. Keys that were cached keep working.
    #[error("the signing keys cannot be fetched: {reason}")]
    JwksUnavailable {
        /// What went wrong on the last fetch (for logs, not for clients).
        reason: String,
    },
    /// The signature does not match the token's content (tampered or forged).
    #[error("the token's signature is not valid")]
    BadSignature,
    /// The header's `alg` is not the key's own algorithm (`none`, `HS256`, or another
    /// asymmetric algorithm than the key's).
    #[error("the algorithm `{alg}` is not allowed for this token")]
    AlgorithmNotAllowed {
        /// The `alg` the token's header names.
        alg: String,
    },
    /// `iss` is not the configured issuer.
    #[error("the token was issued by someone else")]
    WrongIssuer,
    /// `aud` is not the configured audience.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` lies in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The online check says the token is no longer active: its session ended (logout, password
    /// change, admin action), its signing key was revoked, its client was deactivated or
    /// deleted, or (an API key) it was revoked or has expired.
    #[error("the token is no longer active")]
    Revoked,
    /// An API key (`ask_…`) where only offline verification is done: a key is not a JWT, only
    /// auth-service can say whether it is valid (SPEC §11).
    #[error("API keys need the online check")]
    ApiKeyNeedsOnlineCheck,
    /// The online check (introspection) could not be made; the token may be fine.
    #[error("the online token check is unavailable: {reason}")]
    OnlineCheckUnavailable {
        /// What went wrong (for logs, not for clients).
        reason: String,
    },
    /// The token is valid but lacks a role the route requires.
    #[error("the role `{role}` is required")]
    Forbidden {
        /// The role the route requires.
        role: String,
    },
    /// The token is valid but was not granted a scope the route requires.
    #[error("the scope `{scope}` is required")]
    MissingScope {
        /// The scope the route requires.
        scope: String,
    },
    /// A client's token where a user is required: valid, but it stands for no user (as
    /// auth-service's own 403 `user_token_required`, SPEC §11).
    #[error("this route acts for a user; a client's token stands for none")]
    UserTokenRequired,
    /// An API key where a user's session is required: a key is accepted only where a scope is
    /// required ([`crate::RequireScope`] with [`crate::Online`]), since its scopes are all it may do.
    #[error("this route needs a user's session; an API key is not accepted")]
    SessionRequired,
}

/// What the caller should do about an [`AuthError`]: the HTTP status family of the rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 401: no usable credentials; authenticate (again).
    Unauthenticated,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 503: the auth service could not be asked; retry later.
    Unavailable,
}

impl AuthError {
    /// A stable snake_case name of this error, for logs and for the `reason` field of the
    /// problem body.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::MalformedHeader => "malformed_header",
            AuthError::MalformedToken(_) => "malformed_token",
            AuthError::UnknownKid { .. } => "unknown_kid",
            AuthError::JwksUnavailable { .. } => "jwks_unavailable",
            AuthError::BadSignature => "bad_signature",
            AuthError::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::Revoked => "revoked",
            AuthError::OnlineCheckUnavailable { .. } => "online_check_unavailable",
            AuthError::Forbidden { .. } => "missing_role",
            AuthError::MissingScope { .. } => "missing_scope",
            AuthError::UserTokenRequired => "user_token_required",
            AuthError::SessionRequired => "session_required",
            AuthError::ApiKeyNeedsOnlineCheck => "api_key_needs_online_check",
        }
    }

    /// Whether the caller must authenticate, is not allowed, or should retry later.
    pub fn outcome(&self) -> Outcome {
        match self {
            AuthError::Forbidden { .. }
            | AuthError::MissingScope { .. }
            | AuthError::UserTokenRequired
            | AuthError::SessionRequired => Outcome::Forbidden,
            AuthError::JwksUnavailable { .. } | AuthError::OnlineCheckUnavailable { .. } => {
                Outcome::Unavailable
            }
            AuthError::MissingToken
            | AuthError::MalformedHeader
            | AuthError::MalformedToken(_)
            | AuthError::UnknownKid { .. }
            | AuthError::BadSignature
            | AuthError::AlgorithmNotAllowed { .. }
            | AuthError::WrongIssuer
            | AuthError::WrongAudience
            | AuthError::Expired
            | AuthError::NotYetValid
            | AuthError::Revoked
            | AuthError::ApiKeyNeedsOnlineCheck => Outcome::Unauthenticated,
        }
    }

    /// The problem `code` auth-service answers with for the same outcome: `unauthorized`,
    /// `forbidden` or `service_unavailable`, so a front end handles both services alike.
    pub fn code(&self) -> &'static str {
        match self.outcome() {
            Outcome::Unauthenticated => "unauthorized",
            Outcome::Forbidden => "forbidden",
            Outcome::Unavailable => "service_unavailable",
        }
    }
}

/// Why a [`crate::Verifier`] could not be built from its [`crate::VerifierConfig`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The base URL is not an absolute `http` or `https` URL.
    #[error("auth-client: the auth service URL `{0}` is not an absolute http(s) URL")]
    BaseUrl(String),
    /// The leeway is above the 30 seconds SPEC §3 allows.
    #[error("auth-client: a leeway of {0:?} is above the allowed 30 s")]
    LeewayTooLarge(std::time::Duration),
    /// The issuer, audience or client id is empty.
    #[error("auth-client: the {0} must not be empty")]
    Empty(&'static str),
    /// The HTTP client could not be created (TLS setup).
    #[error("auth-client: cannot create the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// A scope asked of a token source is not an RFC 6749 §3.3 scope token.
    #[error("auth-client: `{0}` is not a scope (printable ASCII without space, `\"` or `\\`)")]
    Scope(String),
    /// The client id or secret cannot be sent as HTTP Basic credentials.
    #[error("auth-client: the client credentials cannot be sent in an Authorization header")]
    Credentials,
}

/// Why a [`crate::TokenSource`] has no token for an outgoing call.
///
/// Cloneable, because every caller waiting on one token request gets its outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token endpoint refused the request with an RFC 6749 §5.2 error; `invalid_client`
    /// (wrong id or secret, inactive client) and `invalid_scope` need a configuration change,
    /// not a retry.
    #[error("the token endpoint refused: {code} {}", .description.as_deref().unwrap_or_default())]
    Refused {
        /// The RFC 6749 §5.2 `error`.
        code: OAuthErrorCode,
        /// Its `error_description`, when given (shortened).
        description: Option<String>,
    },
    /// Too many token requests from this client (429); retried after `retry_after`.
    #[error("the token endpoint limits this client's requests")]
    RateLimited {
        /// The `Retry-After` the service asked for.
        retry_after: Option<Duration>,
    },
    /// The token endpoint could not be reached or failed (5xx, timeout); the next call tries
    /// again after a short backoff.
    #[error("the token endpoint is unavailable: {reason}")]
    Unavailable {
        /// What went wrong (for logs).
        reason: String,
    },
    /// The token endpoint answered something that is not a bearer token.
    #[error("the token endpoint's answer is not a bearer token: {reason}")]
    InvalidResponse {
        /// What is wrong with it (for logs).
        reason: String,
    },
}

/// The `error` of an RFC 6749 §5.2 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`: the request is malformed.
    InvalidRequest,
    /// `invalid_client`: the client is unknown or inactive, or its secret is wrong.
    InvalidClient,
    /// `invalid_grant`.
    InvalidGrant,
    /// `unauthorized_client`: this client may not use this grant.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`: a requested scope is malformed or not the client's.
    InvalidScope,
    /// Any other code (shortened).
    Other(String),
}

impl OAuthErrorCode {
    /// Reads an RFC 6749 §5.2 `error` value.
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            other => Self::Other(other.chars().take(64).collect()),
        }
    }

    /// The code as RFC 6749 writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::Other(code) => code,
        }
    }
}

impl std::fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_a_stable_reason_and_problem_code() {
        let cases = [
            (AuthError::MissingToken, "missing_token", "unauthorized"),
            (
                AuthError::MalformedHeader,
                "malformed_header",
                "unauthorized",
            ),
            (
                AuthError::MalformedToken("x"),
                "malformed_token",
                "unauthorized",
            ),
            (
                AuthError::UnknownKid { kid: "k".into() },
                "unknown_kid",
                "unauthorized",
            ),
            (
                AuthError::JwksUnavailable { reason: "r".into() },
                "jwks_unavailable",
                "service_unavailable",
            ),
            (AuthError::BadSignature, "bad_signature", "unauthorized"),
            (
                AuthError::AlgorithmNotAllowed { alg: "none".into() },
                "algorithm_not_allowed",
                "unauthorized",
            ),
            (AuthError::WrongIssuer, "wrong_issuer", "unauthorized"),
            (AuthError::WrongAudience, "wrong_audience", "unauthorized"),
            (AuthError::Expired, "expired", "unauthorized"),
            (AuthError::NotYetValid, "not_yet_valid", "unauthorized"),
            (AuthError::Revoked, "revoked", "unauthorized"),
            (
                AuthError::OnlineCheckUnavailable { reason: "r".into() },
                "online_check_unavailable",
                "service_unavailable",
            ),
            (
                AuthError::Forbidden {
                    role: "admin".into(),
                },
                "missing_role",
                "forbidden",
            ),
            (
                AuthError::MissingScope {
                    scope: "orders:read".into(),
                },
                "missing_scope",
                "forbidden",
            ),
            (
                AuthError::UserTokenRequired,
                "user_token_required",
                "forbidden",
            ),
            (AuthError::SessionRequired, "session_required", "forbidden"),
            (
                AuthError::ApiKeyNeedsOnlineCheck,
                "api_key_needs_online_check",
                "unauthorized",
            ),
        ];

        for (error, reason, code) in cases {
            assert_eq!(error.reason(), reason, "{error:?}");
            assert_eq!(error.code(), code, "{error:?}");
        }
    }

    #[test]
    fn oauth_error_codes_round_trip_and_unknown_ones_are_kept_short() {
        for code in [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "invalid_target",
        ] {
            assert_eq!(OAuthErrorCode::parse(code).as_str(), code);
        }
        assert_eq!(OAuthErrorCode::parse(&"x".repeat(500)).as_str().len(), 64);
    }
}
