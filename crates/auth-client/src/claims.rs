//! The claims of an auth-service access token (SPEC §3 for a user's, §11 for a client's and an
//! exchanged one), what an API key says through introspection, and the time rules applied.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;

/// The claims of a verified access token (or, from the online check, of an API key).
///
/// One type for every caller auth-service vouches for, told apart by [`Claims::kind`]:
/// - a **user's** token: `sub` is the user's id, with `sid`, `email`, `username`, `verified`;
/// - a **client's** token (SPEC §11, client credentials): `sub` and `client_id` are the
///   client's id, `scope` its granted scopes, no session and no user fields;
/// - an **exchanged** token (RFC 8693): a user's token with `act` naming the client acting;
/// - an **API key** (`ask_…`, only from [`crate::Verifier::verify_online`]): `sub` is its owner.
///
/// Unknown claims are ignored, so a newer auth-service that adds claims does not break older
/// clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Claims {
    /// Issuer: the auth service's public URL (or its configured `auth.issuer`).
    pub iss: String,
    /// Audience: the auth service's `auth.audience`.
    pub aud: String,
    /// The user's id; for a client's token the `client_id`; for an API key its owner's id.
    pub sub: String,
    /// The session's id (users' tokens only); the online check asks whether it is still active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// The client's id, on a client's token (and on a key a client owns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The token's unique id; an API key has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<Uuid>,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expires at (Unix seconds); every token has one, an API key may not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// The user's email address (lowercase); users' tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's username; users' tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Global roles plus the roles held in the issuing deployment's territory (a client's
    /// roles on a client's token).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The issuing deployment's territory code, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub territory: Option<String>,
    /// Whether the user's email address is verified (false on other tokens).
    #[serde(default)]
    pub verified: bool,
    /// RFC 8176 authentication methods of a user's session (`pwd`, `otp`, `mfa`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The granted scopes, space-separated (RFC 8693 §4.2); see [`Claims::scopes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// On an exchanged token (RFC 8693 §4.1): who acts for the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// Set when these claims describe an API key (they came from introspection, not a JWT).
    #[serde(skip)]
    pub(crate) api_key: bool,
}

/// The `act` claim of RFC 8693 §4.1: the party acting for the token's subject, and, when it
/// was itself acting for someone, that one in turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Actor {
    /// The acting party: a client's id.
    pub sub: String,
    /// The actor before this one, for a token exchanged more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

/// Who a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A user with a session (including a token exchanged by a client for that user).
    User,
    /// A service identity: an OAuth 2 client's own token (SPEC §11).
    Client,
    /// An API key (`ask_…`), checked online (SPEC §11).
    ApiKey,
}

impl Claims {
    /// Whether these claims are a user's, a client's or an API key's.
    pub fn kind(&self) -> TokenKind {
        if self.api_key {
            TokenKind::ApiKey
        } else if self.sid.is_some() {
            TokenKind::User
        } else {
            TokenKind::Client
        }
    }

    /// The user's id (`sub` as a UUID) for a user's token or a user's API key; `None` for a
    /// client's token or key.
    pub fn user_id(&self) -> Option<Uuid> {
        let for_a_user = match self.kind() {
            TokenKind::User => true,
            TokenKind::ApiKey => self.client_id.is_none(),
            TokenKind::Client => false,
        };
        for_a_user
            .then(|| Uuid::parse_str(&self.sub).ok())
            .flatten()
    }

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

    /// The granted scopes (the `scope` claim split on spaces); none on a user's login token.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|scope| !scope.is_empty())
    }

    /// Whether the token was granted `scope` (matched exactly, RFC 6749 §3.3).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|granted| granted == scope)
    }

    /// `Ok` when the token was granted `scope`, else [`AuthError::MissingScope`] (403 as a
    /// rejection).
    pub fn require_scope(&self, scope: &str) -> Result<(), AuthError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(AuthError::MissingScope {
                scope: scope.to_owned(),
            })
        }
    }

    /// Checks `exp`, `nbf` and `iat` against `now` (Unix seconds), tolerating `leeway` seconds
    /// of clock skew; the same rule auth-service applies to its own routes.
    pub(crate) fn check_times(&self, now: i64, leeway: i64) -> Result<(), AuthError> {
        let exp = self
            .exp
            .ok_or(AuthError::MalformedToken("the token has no expiry"))?;
        if now >= exp.saturating_add(leeway) {
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
            sub: Uuid::nil().to_string(),
            sid: Some(Uuid::nil()),
            client_id: None,
            jti: Some(Uuid::nil()),
            iat,
            nbf: iat,
            exp: Some(exp),
            email: Some("alice@example.com".into()),
            username: Some("alice".into()),
            roles: vec!["user".into()],
            territory: None,
            verified: false,
            amr: Vec::new(),
            scope: None,
            act: None,
            api_key: false,
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

    #[test]
    fn a_client_token_has_scopes_and_no_user() {
        let token: Claims = serde_json::from_value(serde_json::json!({
            "iss": "https://auth.test", "aud": "auth-service",
            "sub": "0193a000-0000-7000-8000-000000000001",
            "client_id": "0193a000-0000-7000-8000-000000000001",
            "jti": "0193a000-0000-7000-8000-000000000002",
            "iat": 1, "nbf": 1, "exp": 901,
            "scope": "orders:read  orders:write", "roles": ["moderator"],
            "a_claim_from_the_future": true
        }))
        .unwrap();

        assert_eq!(token.kind(), TokenKind::Client);
        assert_eq!(token.user_id(), None);
        assert_eq!(
            token.scopes().collect::<Vec<_>>(),
            ["orders:read", "orders:write"]
        );
        assert!(token.has_scope("orders:write"));
        assert!(!token.has_scope("orders"));
        assert_eq!(
            token.require_scope("orders:delete"),
            Err(AuthError::MissingScope {
                scope: "orders:delete".into()
            })
        );
    }

    #[test]
    fn an_exchanged_token_is_a_user_s_with_its_actors() {
        let token: Claims = serde_json::from_value(serde_json::json!({
            "iss": "i", "aud": "billing", "sub": Uuid::nil(), "sid": Uuid::nil(),
            "jti": Uuid::nil(), "iat": 1, "nbf": 1, "exp": 301,
            "email": "a@example.com", "username": "a", "roles": [], "verified": true,
            "act": { "sub": "client-b", "act": { "sub": "client-a" } }
        }))
        .unwrap();

        assert_eq!(token.kind(), TokenKind::User);
        assert_eq!(token.user_id(), Some(Uuid::nil()));
        assert_eq!(token.scopes().count(), 0);
        let actor = token.act.unwrap();
        assert_eq!(actor.sub, "client-b");
        assert_eq!(
            actor.act.map(|before| before.sub).as_deref(),
            Some("client-a")
        );
    }
}
