//! The online check: RFC 7662 introspection at `POST /api/auth/introspect`, which knows
//! whether a token's session is still active (the gRPC `ValidateToken` RPC answers the same).

use serde::Deserialize;
use uuid::Uuid;

use crate::error::AuthError;

/// Introspection answers larger than this are refused; real ones are a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// auth-service's introspection answer: `{active:false}`, or `active:true` with the token's
/// claims.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Introspection {
    /// False for an invalid token and for a token whose session has ended.
    pub active: bool,
    /// The user's id, when active.
    #[serde(default)]
    pub sub: Option<Uuid>,
    /// The session's id, when active.
    #[serde(default)]
    pub sid: Option<Uuid>,
    /// The user's username, when active.
    #[serde(default)]
    pub username: Option<String>,
    /// The token's roles, when active.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The token's territory, when it has one.
    #[serde(default)]
    pub territory: Option<String>,
    /// Expiry (Unix seconds), when active.
    #[serde(default)]
    pub exp: Option<i64>,
    /// Issued at (Unix seconds), when active.
    #[serde(default)]
    pub iat: Option<i64>,
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
