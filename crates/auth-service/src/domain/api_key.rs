//! API keys / personal access tokens (SPEC §11): who owns one, what it may do on this service
//! (the scope vocabulary), and the pure rules of what a request may ask for.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::client::{is_scope_token, sorted};
use crate::error::FieldError;

/// Most keys one owner (a user or a client) may hold at once; creating one more is refused
/// with 422 `too_many_api_keys`.
pub const MAX_KEYS_PER_OWNER: u64 = 100;

/// Most scopes one key may hold.
const MAX_SCOPES: usize = 100;

/// The longest lifetime a key may be given: two years, in seconds.
pub const MAX_EXPIRES_IN: u64 = 2 * 366 * 86_400;

/// This service's own scopes: what a key lets its holder do on this service's routes
/// (`http/api_key_access.rs` names the routes of each). Any other scope token may be given
/// too; it means something to other services only.
pub mod scopes {
    /// `GET /api/auth/me` and the caller's read-only lists (API keys, passkeys).
    pub const AUTH_READ: &str = "auth:read";
    /// The read-only routes of the admin API, within the owner's own roles and reach.
    pub const ADMIN_READ: &str = "admin:read";
    /// The admin API's changes that create no credential, within the owner's roles and reach.
    pub const ADMIN_WRITE: &str = "admin:write";
}

/// Who a key acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    User(Uuid),
    Client(Uuid),
}

impl KeyOwner {
    pub fn id(&self) -> Uuid {
        match self {
            Self::User(id) | Self::Client(id) => *id,
        }
    }

    /// `user` or `client`, as events and the API name the owner's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Client(_) => "client",
        }
    }
}

/// A key as its owner sees it: never the key, never its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub owner: KeyOwner,
    pub name: String,
    /// `ask_` and the first 8 random characters: enough to tell keys apart, useless to use.
    pub prefix: String,
    /// Sorted and without duplicates.
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// As last flushed (uses are written in batches, a few seconds late).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key still works at `now` (a revoked key is deleted, so it is not found).
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|expires| now < expires)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| held == scope)
    }
}

/// A key with the SHA-256 of the whole key, as the store keeps it.
#[derive(Debug, Clone)]
pub struct StoredApiKey {
    pub key: ApiKey,
    pub hash: Vec<u8>,
}

/// What a request for a new key asks for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRequest {
    pub name: String,
    pub scopes: Vec<String>,
    /// Seconds from now; `None`: the key does not expire.
    pub expires_in: Option<u64>,
}

impl KeyRequest {
    /// Every field problem at once (a name of 1–100 characters without control characters,
    /// scope tokens as clients' scopes are, a lifetime of 1 s to [`MAX_EXPIRES_IN`]).
    pub fn parse(
        name: &str,
        scopes: Vec<String>,
        expires_in: Option<u64>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let length = name.chars().count();
        if !(1..=100).contains(&length)
            || name.chars().any(char::is_control)
            || name.trim().is_empty()
        {
            errors.push(FieldError::new(
                "name",
                "invalid",
                "must be 1 to 100 characters, not blank, without control characters",
            ));
        }
        if scopes.len() > MAX_SCOPES || !scopes.iter().all(|s| is_scope_token(s)) {
            errors.push(FieldError::new(
                "scopes",
                "invalid",
                "each scope is 1 to 64 printable ASCII characters without space, `\"` or `\\`; at most 100",
            ));
        }
        if expires_in.is_some_and(|seconds| !(1..=MAX_EXPIRES_IN).contains(&seconds)) {
            errors.push(FieldError::new(
                "expires_in",
                "out_of_range",
                "must be between 1 and 63244800 seconds (two years)",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            name: name.to_owned(),
            scopes: sorted(scopes),
            expires_in,
        })
    }
}

/// A client's key may hold only scopes the client holds (SPEC §11: a key is no way around
/// the client's own grant): the first scope that is not, if any.
pub fn scope_beyond<'a>(asked: &'a [String], held: &[String]) -> Option<&'a str> {
    asked
        .iter()
        .find(|scope| !held.contains(scope))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<KeyRequest, Vec<FieldError>>) -> Vec<String> {
        result
            .unwrap_err()
            .into_iter()
            .map(|error| error.field)
            .collect()
    }

    #[test]
    fn a_request_is_checked_field_by_field() {
        let ok = KeyRequest::parse("ci", vec!["b".into(), "a".into(), "b".into()], Some(60));
        assert_eq!(ok.unwrap().scopes, ["a", "b"]);

        assert_eq!(fields(KeyRequest::parse("", vec![], None)), ["name"]);
        assert_eq!(fields(KeyRequest::parse("  ", vec![], None)), ["name"]);
        assert_eq!(
            fields(KeyRequest::parse(&"x".repeat(101), vec![], None)),
            ["name"]
        );
        assert_eq!(
            fields(KeyRequest::parse("a", vec!["a b".into()], Some(0))),
            ["scopes", "expires_in"]
        );
        assert_eq!(
            fields(KeyRequest::parse("a", vec![], Some(MAX_EXPIRES_IN + 1))),
            ["expires_in"]
        );
    }

    #[test]
    fn a_key_works_until_it_expires() {
        let now = Utc::now();
        let key = ApiKey {
            id: Uuid::nil(),
            owner: KeyOwner::User(Uuid::nil()),
            name: "n".into(),
            prefix: "ask_abcdefgh".into(),
            scopes: vec![scopes::AUTH_READ.into()],
            created_at: now,
            expires_at: Some(now + chrono::Duration::seconds(1)),
            last_used_at: None,
        };

        assert!(key.is_live(now));
        assert!(!key.is_live(now + chrono::Duration::seconds(1)));
        assert!(key.has_scope("auth:read") && !key.has_scope("admin:read"));
        assert_eq!(
            scope_beyond(&["a".into(), "c".into()], &["a".into()]),
            Some("c")
        );
    }
}
