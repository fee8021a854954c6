//! Why a request was refused, and why a verifier could not be built. [`AuthError::reason`] is
//! the only place the client's snake_case reasons are written; [`AuthError::code`] maps them onto
//! the problem codes auth-service itself answers with.

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
    /// change, admin action) or its key was revoked.
    #[error("the token's session has ended")]
    Revoked,
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
        }
    }

    /// Whether the caller must authenticate, is not allowed, or should retry later.
    pub fn outcome(&self) -> Outcome {
        match self {
            AuthError::Forbidden { .. } => Outcome::Forbidden,
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
            | AuthError::Revoked => Outcome::Unauthenticated,
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
    /// The issuer or audience is empty.
    #[error("auth-client: the expected {0} must not be empty")]
    Empty(&'static str),
    /// The HTTP client could not be created (TLS setup).
    #[error("auth-client: cannot create the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
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
        ];

        for (error, reason, code) in cases {
            assert_eq!(error.reason(), reason, "{error:?}");
            assert_eq!(error.code(), code, "{error:?}");
        }
    }
}
