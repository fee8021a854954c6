//! The online check: RFC 7662 introspection at `POST /api/auth/introspect`, which knows
//! whether a token's session is still active (the gRPC `ValidateToken` RPC answers the same),
//! and the only check an API key (`ask_…`, SPEC §11) can have, since it is not a JWT.

use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use crate::claims::{Actor, Claims};
use crate::error::AuthError;

/// Introspection answers larger than this are refused; real ones are a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The prefix of auth-service's API keys (SPEC §11: `ask_<random>_<checksum>`).
const API_KEY_PREFIX: &str = "ask_";

/// The longest API key sent to the service; real ones are under 50 characters.
const MAX_API_KEY_BYTES: usize = 256;

/// auth-service's introspection answer: `{active:false}`, or `active:true` with the token's
/// claims beside it (a user's, a client's, or an API key's). Fields it does not know are
/// ignored, and every field but `active` may be absent, so a newer service's answer still reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Introspection {
    /// False for an invalid token, for a token whose session has ended, a deactivated client's
    /// token, and a revoked or expired API key.
    pub active: bool,
    /// `Bearer` for access tokens; `api_key` (or similar) for an API key.
    #[serde(default)]
    pub token_type: Option<String>,
    /// The user's id, the client's id (a client's token), or the key's owner, when active.
    #[serde(default)]
    pub sub: Option<String>,
    /// The session's id (users' tokens).
    #[serde(default)]
    pub sid: Option<Uuid>,
    /// The client's id (clients' tokens, and keys a client owns).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The user's username, when the token is a user's.
    #[serde(default)]
    pub username: Option<String>,
    /// The granted scopes, space-separated (answered as `scope`, or as a `scopes` list).
    #[serde(default, alias = "scopes", deserialize_with = "scope_string_or_list")]
    pub scope: Option<String>,
    /// The roles held now (not when the token was issued).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The token's territory, when it has one.
    #[serde(default)]
    pub territory: Option<String>,
    /// RFC 8176 authentication methods of a user's session.
    #[serde(default)]
    pub amr: Vec<String>,
    /// Who acts for the subject, on an exchanged token.
    #[serde(default)]
    pub act: Option<Actor>,
    /// Expiry (Unix seconds); an API key may have none.
    #[serde(default)]
    pub exp: Option<i64>,
    /// Issued at (Unix seconds).
    #[serde(default)]
    pub iat: Option<i64>,
    /// The issuer.
    #[serde(default)]
    pub iss: Option<String>,
    /// The audience.
    #[serde(default)]
    pub aud: Option<String>,
}

/// Whether `token` is shaped as an API key rather than a JWT: the online path sends it to
/// introspection, the offline path refuses it without parsing it as a JWT.
pub(crate) fn is_api_key(token: &str) -> bool {
    token.starts_with(API_KEY_PREFIX)
}

/// Whether an API key may be sent to the service at all: bounded and of the key alphabet, so
/// junk after the prefix costs no request.
pub(crate) fn is_plausible_api_key(token: &str) -> bool {
    token.len() <= MAX_API_KEY_BYTES
        && token.len() > API_KEY_PREFIX.len()
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

impl Introspection {
    /// Whether this answer says the offline-verified `claims` are still active: the same
    /// session for a user's token, the same client for a client's.
    pub(crate) fn confirms(&self, claims: &Claims) -> bool {
        self.active
            && match claims.sid {
                Some(sid) => self.sid == Some(sid),
                None => claims.client_id.is_some() && self.client_id == claims.client_id,
            }
    }

    /// The claims of an active API key; `Ok(None)` when the key is not active.
    /// `issuer`/`audience` stand in when the answer does not name them; `now` when it does not
    /// say when the key was made.
    pub(crate) fn into_api_key_claims(
        self,
        issuer: &str,
        audience: &str,
        now: i64,
    ) -> Result<Option<Claims>, AuthError> {
        if !self.active {
            return Ok(None);
        }
        let Some(sub) = self.sub.filter(|sub| !sub.is_empty()) else {
            return Err(AuthError::OnlineCheckUnavailable {
                reason: "an active API key's introspection names no owner (sub)".to_owned(),
            });
        };
        let iat = self.iat.unwrap_or(now);
        Ok(Some(Claims {
            iss: self.iss.unwrap_or_else(|| issuer.to_owned()),
            aud: self.aud.unwrap_or_else(|| audience.to_owned()),
            sub,
            sid: None,
            client_id: self.client_id,
            jti: None,
            iat,
            nbf: iat,
            exp: self.exp,
            email: None,
            username: self.username,
            roles: self.roles,
            territory: self.territory,
            verified: false,
            amr: Vec::new(),
            scope: self.scope,
            act: None,
            api_key: true,
        }))
    }
}

/// `scope` as RFC 7662 writes it (one space-separated string), or a list of scopes.
fn scope_string_or_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scope {
        Text(String),
        List(Vec<String>),
    }
    Ok(
        Option::<Scope>::deserialize(deserializer)?.map(|scope| match scope {
            Scope::Text(text) => text,
            Scope::List(list) => list.join(" "),
        }),
    )
}

/// Posts `{token}` to `url`; any failure to get an answer is [`AuthError::OnlineCheckUnavailable`].
pub(crate) async fn ask(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<Introspection, AuthError> {
    let unavailable = |reason: String| AuthError::OnlineCheckUnavailable { reason };
    let response = http
        .post(url)
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| unavailable(format!("POST {url}: {error}")))?;
    let body = response
        .bytes()
        .await
        .map_err(|error| unavailable(format!("POST {url}: {error}")))?;
    if body.len() > MAX_ANSWER_BYTES {
        return Err(unavailable(format!("POST {url}: the answer is too large")));
    }
    serde_json::from_slice(&body)
        .map_err(|error| unavailable(format!("POST {url}: not an introspection answer: {error}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::claims::TokenKind;

    fn answer(value: serde_json::Value) -> Introspection {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn api_keys_are_told_from_jwts_by_their_prefix() {
        assert!(is_api_key("ask_0123456789abcdef_abc123"));
        assert!(!is_api_key("eyJhbGciOiJFUzI1NiJ9.e30.c2ln"));
        assert!(!is_api_key("ASK_upper"));
        assert!(is_plausible_api_key("ask_Ab9_x"));
        for junk in ["ask_", "ask_a b", "ask_a.b", "ask_é"] {
            assert!(!is_plausible_api_key(junk), "{junk}");
        }
        assert!(!is_plausible_api_key(&format!("ask_{}", "a".repeat(300))));
    }

    #[test]
    fn a_user_s_api_key_answer_becomes_its_claims() {
        let key = answer(json!({
            "active": true, "token_type": "api_key",
            "sub": "0193a000-0000-7000-8000-000000000001", "username": "alice",
            "scopes": ["reports:read", "reports:write"], "roles": ["user"],
            "iat": 100, "a_field_from_the_future": {"x": 1}
        }));

        let claims = key
            .into_api_key_claims("https://auth.test", "auth-service", 5_000)
            .unwrap()
            .unwrap();

        assert_eq!(claims.kind(), TokenKind::ApiKey);
        assert!(claims.has_scope("reports:write"));
        assert!(claims.user_id().is_some());
        assert_eq!((claims.iat, claims.exp), (100, None));
        assert_eq!(claims.iss, "https://auth.test");
        assert_eq!(claims.sid, None);
    }

    #[test]
    fn a_client_s_api_key_answer_has_no_user() {
        let key = answer(json!({
            "active": true, "token_type": "api_key", "sub": "c1", "client_id": "c1",
            "scope": "orders:read", "roles": [], "exp": 9_000
        }));

        let claims = key.into_api_key_claims("i", "a", 5_000).unwrap().unwrap();

        assert_eq!(claims.kind(), TokenKind::ApiKey);
        assert_eq!(claims.user_id(), None);
        assert_eq!(claims.client_id.as_deref(), Some("c1"));
        assert_eq!((claims.iat, claims.exp), (5_000, Some(9_000)));
    }

    #[test]
    fn an_inactive_or_ownerless_key_is_not_accepted() {
        let inactive = answer(json!({ "active": false }));
        let ownerless = answer(json!({ "active": true, "scope": "a" }));

        assert_eq!(inactive.into_api_key_claims("i", "a", 0), Ok(None));
        assert!(matches!(
            ownerless.into_api_key_claims("i", "a", 0),
            Err(AuthError::OnlineCheckUnavailable { .. })
        ));
    }

    #[test]
    fn an_answer_confirms_the_same_session_or_the_same_client() {
        let session = Uuid::now_v7();
        let user: Claims = serde_json::from_value(json!({
            "iss": "i", "aud": "a", "sub": Uuid::nil(), "sid": session, "iat": 1, "nbf": 1,
            "exp": 2, "roles": []
        }))
        .unwrap();
        let client: Claims = serde_json::from_value(json!({
            "iss": "i", "aud": "a", "sub": "c1", "client_id": "c1", "iat": 1, "nbf": 1,
            "exp": 2, "scope": "x"
        }))
        .unwrap();

        assert!(answer(json!({ "active": true, "sid": session })).confirms(&user));
        assert!(!answer(json!({ "active": true, "sid": Uuid::nil() })).confirms(&user));
        assert!(!answer(json!({ "active": false, "sid": session })).confirms(&user));
        assert!(answer(json!({ "active": true, "client_id": "c1" })).confirms(&client));
        assert!(!answer(json!({ "active": true, "client_id": "c2" })).confirms(&client));
        assert!(!answer(json!({ "active": true })).confirms(&client));
    }
}
