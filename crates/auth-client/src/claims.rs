//! The claims of an auth-service access token (SPEC §3) and the time rules applied to them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;

/// The claims of a verified access token, as auth-service issues them.
///
/// Unknown claims are ignored, so a newer auth-service that adds claims does not break older
/// clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the auth service's public URL (or its configured `auth.issuer`).
    pub iss: String,
    /// Audience: the auth service's `auth.audience`.
    pub aud: String,
    /// The user's id.
    pub sub: Uuid,
    /// The session's id; the online check asks whether this session is still active.
    pub sid: Uuid,
    /// The token's unique id.
    pub jti: Uuid,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// The user's email address (lowercase).
    pub email: String,
    /// The user's username.
    pub username: String,
    /// Global roles plus the roles held in the issuing deployment's territory.
    pub roles: Vec<String>,
    /// The issuing deployment's territory code, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub territory: Option<String>,
    /// Whether the user's email address is verified.
    pub verified: bool,
    /// RFC 8693 §4.1, on a token made by token exchange: the client acting for the user
    /// (`act.sub`), and nested in it whoever acted before. Absent on a user's own token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// The `act` claim of an exchanged token (RFC 8693 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting client's id.
    pub sub: String,
    /// The actor before this one, when the token was exchanged more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Claims {
    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held == role)
    }

    /// `Ok` when the token carries `role`, else [`AuthError::Forbidden`] (403 as a rejection).
    pub fn require_role(&self, role: &str) -> Result<(), AuthError> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(AuthError::Forbidden {
                role: role.to_owned(),
            })
        }
    }

    /// Checks `exp`, `nbf` and `iat` against `now` (Unix seconds), tolerating `leeway` seconds
    /// of clock skew; the same rule auth-service applies to its own routes.
    pub(crate) fn check_times(&self, now: i64, leeway: i64) -> Result<(), AuthError> {
        if now >= self.exp.saturating_add(leeway) {
            return Err(AuthError::Expired);
        }
        let latest_start = now.saturating_add(leeway);
        if self.nbf > latest_start || self.iat > latest_start {
            return Err(AuthError::NotYetValid);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iat: i64, exp: i64) -> Claims {
        Claims {
            iss: "https://auth.test".into(),
            aud: "auth-service".into(),
            sub: Uuid::nil(),
            sid: Uuid::nil(),
            jti: Uuid::nil(),
            iat,
            nbf: iat,
            exp,
            email: "alice@example.com".into(),
            username: "alice".into(),
            roles: vec!["user".into()],
            territory: None,
            verified: false,
            act: None,
        }
    }

    #[test]
    fn expiry_tolerates_the_leeway_and_no_more() {
        let token = claims(1_000, 1_900);

        assert_eq!(token.check_times(1_909, 10), Ok(()));
        assert_eq!(token.check_times(1_910, 10), Err(AuthError::Expired));
        assert_eq!(token.check_times(1_900, 0), Err(AuthError::Expired));
    }

    #[test]
    fn a_start_in_the_future_tolerates_the_leeway_and_no_more() {
        let token = claims(1_000, 1_900);

        assert_eq!(token.check_times(990, 10), Ok(()));
        assert_eq!(token.check_times(989, 10), Err(AuthError::NotYetValid));
    }

    #[test]
    fn roles_are_matched_exactly() {
        let token = claims(0, 1);

        assert!(token.has_role("user"));
        assert!(!token.has_role("use"));
        assert_eq!(
            token.require_role("admin"),
            Err(AuthError::Forbidden {
                role: "admin".into()
            })
        );
    }
}
