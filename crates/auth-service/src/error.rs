//! The one error type of the use cases. `Error::code()` is the only place the stable
//! snake_case codes of SPEC §2 are written; `http/error.rs` maps each variant to a response.

use std::fmt;
use std::time::Duration;

/// A field that failed validation, reported in the problem body's `errors` list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// An external part the service depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Database,
    Redis,
    Nats,
    /// No active signing key (SPEC §3): tokens cannot be issued until one is made.
    SigningKey,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dependency::Database => "database",
            Dependency::Redis => "redis",
            Dependency::Nats => "nats",
            Dependency::SigningKey => "signing key",
        })
    }
}

/// The errors of RFC 6749 §5.2 (and RFC 8693 §2.2.2) the OAuth endpoints answer, and RFC 7009
/// §2.2.1's `unsupported_token_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// A parameter missing, repeated or malformed; a body that is not a form.
    InvalidRequest(String),
    /// Unknown client, wrong secret, inactive client, or no or several authentications;
    /// `basic` when the client tried HTTP Basic (the answer then names the scheme).
    InvalidClient {
        basic: bool,
    },
    /// A requested scope that is malformed or not the client's.
    InvalidScope,
    UnsupportedGrantType,
    /// A refresh token that is unknown, expired, spent or of an ended session (RFC 6749
    /// §5.2); the description says which, never the token.
    InvalidGrant(String),
    /// The authenticated client may not do this: exchange tokens without exchange audiences,
    /// or revoke a token issued to another client (RFC 7009 §2.1).
    UnauthorizedClient,
    /// RFC 8693 §2.2.2: an `audience` the client may not exchange tokens for.
    InvalidTarget,
    /// RFC 7009 §2.2.1: a `token_type_hint` naming a kind of token this server does not
    /// revoke.
    UnsupportedTokenType,
}

impl OAuthError {
    /// The `error` of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient { .. } => "invalid_client",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::InvalidTarget => "invalid_target",
            OAuthError::UnsupportedTokenType => "unsupported_token_type",
        }
    }

    /// The `error_description` of the answer: what went wrong, never a secret.
    pub fn description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(detail) => detail.clone(),
            OAuthError::InvalidClient { .. } => "client authentication failed".to_owned(),
            OAuthError::InvalidScope => {
                "a requested scope is malformed or not granted to the client".to_owned()
            }
            OAuthError::UnsupportedGrantType => {
                "the grant type is not supported; this server supports client_credentials, \
                 refresh_token and urn:ietf:params:oauth:grant-type:token-exchange"
                    .to_owned()
            }
            OAuthError::InvalidGrant(detail) => detail.clone(),
            OAuthError::UnauthorizedClient => {
                "the client may not do this: exchange needs exchange audiences, and only a token's own client may revoke it"
                    .to_owned()
            }
            OAuthError::InvalidTarget => {
                "the client may not exchange tokens for this audience".to_owned()
            }
            OAuthError::UnsupportedTokenType => {
                "token_type_hint names a token type this server does not revoke; it revokes access_token and refresh_token"
                    .to_owned()
            }
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.description())
    }
}

/// Outcomes a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    #[error("the request body is not valid JSON: {0}")]
    MalformedBody(String),
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("authentication is required")]
    Unauthorized,
    #[error("the caller lacks the required role")]
    Forbidden,
    /// SPEC §4 (CSRF): a request authenticated by the refresh cookie came from a site that is
    /// neither this service's nor in the CORS allow-list.
    #[error("a request authenticated by the refresh cookie must come from this site or an allowed origin")]
    CsrfRejected,
    #[error("no such resource")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("the username is already taken")]
    UsernameTaken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("the account is disabled")]
    AccountDisabled,
    #[error("the email address is not verified")]
    EmailNotVerified,
    #[error("too many attempts")]
    TooManyAttempts { retry_after: Duration },
    #[error("too many requests")]
    RateLimited { retry_after: Duration },
    #[error("the refresh token is invalid or expired")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; the session has been ended")]
    RefreshTokenReused,
    #[error("the token is invalid, used or expired")]
    InvalidToken,
    #[error("session not found")]
    SessionNotFound,
    #[error("user not found")]
    UserNotFound,
    #[error("role not found")]
    RoleNotFound,
    #[error("territory not found")]
    TerritoryNotFound,
    #[error("a role with that name exists")]
    RoleExists,
    #[error("a territory with that code exists")]
    TerritoryExists,
    #[error("the last active administrator cannot be removed, deactivated or demoted")]
    LastAdmin,
    #[error("built-in roles cannot be deleted")]
    BuiltInRole,
    /// SPEC §10: a second-factor code that is wrong, malformed, already used or replayed.
    #[error("the code is invalid")]
    InvalidMfaCode,
    /// SPEC §10: an `mfa_token` that is unknown, used or expired.
    #[error("the mfa_token is invalid, used or expired; log in again")]
    InvalidMfaToken,
    /// SPEC §10: too many wrong second-factor codes locked the account's factor.
    #[error("too many wrong codes; the second factor is locked")]
    FactorLocked { retry_after: Duration },
    #[error("a second factor is already enrolled")]
    MfaAlreadyEnrolled,
    #[error("no TOTP enrollment is pending; start one with POST /api/auth/mfa/totp")]
    NoPendingEnrollment,
    #[error("no second factor is enrolled")]
    MfaNotEnrolled,
    /// SPEC §11: no such client, or one outside the caller's reach (ids cannot be probed).
    #[error("client not found")]
    ClientNotFound,
    /// SPEC §11: a client's access token on a route that acts for a user.
    #[error("this route acts for a user; a client's access token is not accepted here")]
    UserTokenRequired,
    /// SPEC §11: an answer of the OAuth token endpoint, written as RFC 6749 §5.2 says.
    #[error("{0}")]
    OAuth(OAuthError),
    /// SPEC §10 `auth.require_mfa_for_roles`: the session may only enroll a second factor.
    #[error(
        "this account must enroll a second factor first (or log in again with it); this session may only enroll"
    )]
    MfaEnrollmentRequired,
    /// SPEC §10: a WebAuthn response that does not verify: tampered, for another challenge,
    /// origin or relying party, without user verification, or of an unknown passkey.
    #[error("the passkey response is invalid")]
    InvalidPasskey,
    /// SPEC §10: the ceremony the response answers is unknown, used or expired.
    #[error("the passkey ceremony is unknown, used or expired; ask for new options")]
    InvalidCeremony,
    /// SPEC §10: the authenticator's signature counter went back (a cloned authenticator).
    #[error("the passkey's signature counter went back; the passkey may be cloned")]
    PasskeyCounterRegressed,
    #[error("passkey not found")]
    PasskeyNotFound,
    /// The credential is registered already (to this or another account).
    #[error("this passkey is registered already")]
    PasskeyExists,
    /// SPEC §10: removing the last second factor needs a fresh one.
    #[error("removing the last second factor needs a fresh second factor")]
    FreshFactorRequired,
    /// SPEC §11: an API key on a route that changes credentials or factors, or on any route
    /// not listed for keys (`http/api_key_access.rs`): only a session may call it.
    #[error("this route needs a session's access token; an API key is not accepted here")]
    SessionRequired,
    /// SPEC §11: an API key without the scope the route needs.
    #[error("the API key lacks the scope this route needs: {scope}")]
    InsufficientScope { scope: &'static str },
    /// SPEC §11: no such key among the owner's (another owner's key is not found either).
    #[error("API key not found")]
    ApiKeyNotFound,
    /// SPEC §11: the owner holds the most keys allowed.
    #[error("the owner holds the most API keys allowed; revoke one first")]
    TooManyApiKeys,
    #[error("the request took too long")]
    Timeout,
    #[error("{0} is unavailable")]
    Unavailable(Dependency),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    /// The stable snake_case code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "validation_failed",
            Error::MalformedBody(_) => "malformed_body",
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::PayloadTooLarge => "payload_too_large",
            Error::Unauthorized => "unauthorized",
            Error::Forbidden => "forbidden",
            Error::CsrfRejected => "csrf_rejected",
            Error::NotFound => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::EmailTaken => "email_taken",
            Error::UsernameTaken => "username_taken",
            Error::InvalidCredentials => "invalid_credentials",
            Error::AccountDisabled => "account_disabled",
            Error::EmailNotVerified => "email_not_verified",
            Error::TooManyAttempts { .. } => "too_many_attempts",
            Error::RateLimited { .. } => "rate_limited",
            Error::InvalidRefreshToken => "invalid_refresh_token",
            Error::RefreshTokenReused => "refresh_token_reused",
            Error::InvalidToken => "invalid_token",
            Error::SessionNotFound => "session_not_found",
            Error::UserNotFound => "user_not_found",
            Error::RoleNotFound => "role_not_found",
            Error::TerritoryNotFound => "territory_not_found",
            Error::RoleExists => "role_exists",
            Error::TerritoryExists => "territory_exists",
            Error::LastAdmin => "last_admin",
            Error::BuiltInRole => "built_in_role",
            Error::InvalidMfaCode => "invalid_mfa_code",
            Error::InvalidMfaToken => "invalid_mfa_token",
            Error::FactorLocked { .. } => "factor_locked",
            Error::MfaAlreadyEnrolled => "mfa_already_enrolled",
            Error::NoPendingEnrollment => "no_pending_enrollment",
            Error::MfaNotEnrolled => "mfa_not_enrolled",
            Error::ClientNotFound => "client_not_found",
            Error::UserTokenRequired => "user_token_required",
            Error::OAuth(error) => error.code(),
            Error::MfaEnrollmentRequired => "mfa_enrollment_required",
            Error::InvalidPasskey => "invalid_passkey",
            Error::InvalidCeremony => "invalid_ceremony",
            Error::PasskeyCounterRegressed => "passkey_counter_regressed",
            Error::PasskeyNotFound => "passkey_not_found",
            Error::PasskeyExists => "passkey_exists",
            Error::FreshFactorRequired => "fresh_factor_required",
            Error::SessionRequired => "session_required",
            Error::InsufficientScope { .. } => "insufficient_scope",
            Error::ApiKeyNotFound => "api_key_not_found",
            Error::TooManyApiKeys => "too_many_api_keys",
            Error::Timeout => "request_timeout",
            Error::Unavailable(_) => "service_unavailable",
            Error::Internal(_) => "internal_error",
        }
    }

    /// One invalid field.
    pub fn invalid(field: &str, code: &str, message: &str) -> Self {
        Error::Invalid(vec![FieldError::new(field, code, message)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_stable() {
        let samples = [
            (
                Error::invalid("email", "invalid", "bad"),
                "validation_failed",
            ),
            (Error::EmailTaken, "email_taken"),
            (
                Error::TooManyAttempts {
                    retry_after: Duration::from_secs(1),
                },
                "too_many_attempts",
            ),
            (Error::RefreshTokenReused, "refresh_token_reused"),
            (Error::LastAdmin, "last_admin"),
            (Error::CsrfRejected, "csrf_rejected"),
            (Error::TerritoryNotFound, "territory_not_found"),
            (Error::InvalidMfaCode, "invalid_mfa_code"),
            (Error::InvalidMfaToken, "invalid_mfa_token"),
            (
                Error::FactorLocked {
                    retry_after: Duration::from_secs(1),
                },
                "factor_locked",
            ),
            (Error::MfaAlreadyEnrolled, "mfa_already_enrolled"),
            (Error::NoPendingEnrollment, "no_pending_enrollment"),
            (Error::MfaNotEnrolled, "mfa_not_enrolled"),
            (Error::ClientNotFound, "client_not_found"),
            (Error::UserTokenRequired, "user_token_required"),
            (
                Error::OAuth(OAuthError::InvalidRequest("x".into())),
                "invalid_request",
            ),
            (
                Error::OAuth(OAuthError::InvalidClient { basic: true }),
                "invalid_client",
            ),
            (Error::OAuth(OAuthError::InvalidScope), "invalid_scope"),
            (
                Error::OAuth(OAuthError::UnsupportedGrantType),
                "unsupported_grant_type",
            ),
            (
                Error::OAuth(OAuthError::InvalidGrant("x".into())),
                "invalid_grant",
            ),
            (
                Error::OAuth(OAuthError::UnauthorizedClient),
                "unauthorized_client",
            ),
            (Error::OAuth(OAuthError::InvalidTarget), "invalid_target"),
            (
                Error::OAuth(OAuthError::UnsupportedTokenType),
                "unsupported_token_type",
            ),
            (Error::MfaEnrollmentRequired, "mfa_enrollment_required"),
            (Error::InvalidPasskey, "invalid_passkey"),
            (Error::SessionRequired, "session_required"),
            (
                Error::InsufficientScope { scope: "auth:read" },
                "insufficient_scope",
            ),
            (Error::ApiKeyNotFound, "api_key_not_found"),
            (Error::TooManyApiKeys, "too_many_api_keys"),
            (Error::PasskeyCounterRegressed, "passkey_counter_regressed"),
            (
                Error::Unavailable(Dependency::Database),
                "service_unavailable",
            ),
            (Error::Internal(anyhow::anyhow!("boom")), "internal_error"),
        ];

        for (error, code) in samples {
            assert_eq!(error.code(), code);
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }
}
