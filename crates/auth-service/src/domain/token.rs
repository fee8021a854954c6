//! Tokens as `/oauth/introspect` (RFC 7662) and `/oauth/revoke` (RFC 7009) see them: the
//! kinds a presented token may be, the hint a client gives, and the rules for telling which
//! kinds a token's shape allows and whether a refresh token is active.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Longest token looked at. Ours are far shorter (a JWT with many roles stays under 4 KiB,
/// refresh tokens are 43 characters); a longer one is no token of ours and is not hashed,
/// parsed or looked up.
pub const MAX_TOKEN_LENGTH: usize = 8 * 1024;

/// The kinds of token this service issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A JWT, a user's or a client's.
    AccessToken,
    /// An opaque refresh token of a user's session.
    RefreshToken,
    /// An API key, `ask_…` (SPEC §11).
    ApiKey,
}

impl TokenKind {
    /// Looked for in this order when no hint (or a hint that does not find it) is given. An
    /// `ask_…` string is taken for an API key before a refresh token, which it can also be.
    pub const ALL: [TokenKind; 3] = [
        TokenKind::AccessToken,
        TokenKind::ApiKey,
        TokenKind::RefreshToken,
    ];

    /// RFC 7009 §2.1 / RFC 7662 §2.1 `token_type_hint`: the registered values this service
    /// issues (`access_token`, `refresh_token`); `None` for any other.
    pub fn from_hint(hint: &str) -> Option<TokenKind> {
        match hint {
            "access_token" => Some(TokenKind::AccessToken),
            "refresh_token" => Some(TokenKind::RefreshToken),
            _ => None,
        }
    }

    /// Whether a token of this kind could look like `token`. Cheap, so that a token is only
    /// verified or looked up as the kinds it can be: a JWT has three dot-separated parts, a
    /// refresh token is base64url (no dot), an API key starts with `ask_`.
    pub fn may_be(self, token: &str) -> bool {
        match self {
            TokenKind::AccessToken => token.split('.').count() == 3,
            TokenKind::RefreshToken => {
                token.len() <= 64
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }
            TokenKind::ApiKey => token.starts_with("ask_"),
        }
    }

    /// The kinds to try for `token`: the hinted kind first, then the others (RFC 7009 §2.1:
    /// a hint that does not find the token extends the search to every kind), each only when
    /// the token's shape allows it. Nothing for an empty or overlong token.
    pub fn search_order(token: &str, hint: Option<TokenKind>) -> Vec<TokenKind> {
        if token.is_empty() || token.len() > MAX_TOKEN_LENGTH {
            return Vec::new();
        }
        hint.into_iter()
            .chain(
                TokenKind::ALL
                    .into_iter()
                    .filter(|kind| Some(*kind) != hint),
            )
            .filter(|kind| kind.may_be(token))
            .collect()
    }
}

/// A refresh token as stored, with what decides whether it is active: its own life and its
/// session's. Never its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenState {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Rotated away (SPEC §3): a spent token is never active again, even inside the grace
    /// window, where only a retry of the refresh itself is answered.
    pub spent: bool,
    pub session_ended: bool,
    pub session_expires_at: DateTime<Utc>,
    pub session_idle_expires_at: DateTime<Utc>,
    /// The user is neither deleted nor deactivated.
    pub user_active: bool,
}

impl RefreshTokenState {
    /// Whether a refresh with this token would be answered at `now` with a new token pair.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        !self.spent
            && now < self.expires_at
            && !self.session_ended
            && now < self.session_expires_at
            && now < self.session_idle_expires_at
            && self.user_active
    }
}

/// A client's access token revoked before it expired (RFC 7009): its `jti` is refused until
/// `expires_at`, after which the token cannot verify anyway and the row may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    pub jti: Uuid,
    pub client_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    const REFRESH: &str = "2sY0v9kQ-Lr_5mB8b6Gx1qkX8rT2nW4cJ7aZ3eV0uHs";

    #[test]
    fn a_hint_orders_the_search_and_the_shape_narrows_it() {
        use TokenKind::*;

        assert_eq!(TokenKind::search_order(JWT, None), [AccessToken]);
        assert_eq!(
            TokenKind::search_order(JWT, Some(RefreshToken)),
            [AccessToken],
            "a wrong hint still finds the token"
        );
        assert_eq!(TokenKind::search_order(REFRESH, None), [RefreshToken]);
        assert_eq!(
            TokenKind::search_order("ask_abc_def", Some(AccessToken)),
            [ApiKey, RefreshToken],
            "an `ask_` string may also be a refresh token"
        );
        assert!(TokenKind::search_order("", None).is_empty());
        assert!(TokenKind::search_order(&"a".repeat(MAX_TOKEN_LENGTH + 1), None).is_empty());
        assert!(TokenKind::search_order("not a token!", None).is_empty());
    }

    #[test]
    fn only_the_registered_hints_this_service_issues_are_known() {
        assert_eq!(
            TokenKind::from_hint("access_token"),
            Some(TokenKind::AccessToken)
        );
        assert_eq!(
            TokenKind::from_hint("refresh_token"),
            Some(TokenKind::RefreshToken)
        );
        for other in ["id_token", "ACCESS_TOKEN", "api_key", ""] {
            assert_eq!(TokenKind::from_hint(other), None, "{other}");
        }
    }

    #[test]
    fn a_refresh_token_is_active_only_while_it_and_its_session_are() {
        let now = Utc::now();
        let later = now + chrono::Duration::minutes(5);
        let live = RefreshTokenState {
            session_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            username: "alice".into(),
            issued_at: now,
            expires_at: later,
            spent: false,
            session_ended: false,
            session_expires_at: later,
            session_idle_expires_at: later,
            user_active: true,
        };

        assert!(live.active(now));
        for (what, state) in [
            (
                "spent",
                RefreshTokenState {
                    spent: true,
                    ..live.clone()
                },
            ),
            (
                "expired",
                RefreshTokenState {
                    expires_at: now,
                    ..live.clone()
                },
            ),
            (
                "session ended",
                RefreshTokenState {
                    session_ended: true,
                    ..live.clone()
                },
            ),
            (
                "session expired",
                RefreshTokenState {
                    session_expires_at: now,
                    ..live.clone()
                },
            ),
            (
                "session idle",
                RefreshTokenState {
                    session_idle_expires_at: now,
                    ..live.clone()
                },
            ),
            (
                "user inactive",
                RefreshTokenState {
                    user_active: false,
                    ..live
                },
            ),
        ] {
            assert!(!state.active(now), "{what}");
        }
    }
}
