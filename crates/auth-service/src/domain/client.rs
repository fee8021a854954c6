//! OAuth 2 clients (SPEC §11): the identities of the platform's own services, what an
//! administrator may set on them, and the pure rules of their scopes and reach.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::authority::AdminScope;
use crate::error::{Error, FieldError};

/// Shortest and longest lifetime a client's access tokens may be given.
pub const TOKEN_TTL_SECONDS: std::ops::RangeInclusive<u64> = 60..=86_400;

/// Most scopes a client may hold.
const MAX_SCOPES: usize = 100;

/// Most audiences a client may exchange tokens for.
const MAX_EXCHANGE_AUDIENCES: usize = 20;

/// How a client authenticates at the token endpoint (RFC 7591 `token_endpoint_auth_method`).
/// The two secret methods are one credential sent two ways, and a client registered for
/// either may use both; a `private_key_jwt` client has no secret, and a secret client no keys.
/// A public client (`none`, RFC 6749 §2.1: an app that cannot keep a secret) has neither: it
/// names itself with `client_id` and may use only the authorization code grant (with PKCE)
/// and the refresh of the sessions it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::PrivateKeyJwt,
            AuthMethod::None,
        ]
        .into_iter()
        .find(|method| method.as_str() == text)
    }

    /// Whether the client authenticates with a secret.
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        )
    }

    /// Whether the client authenticates with keys (`private_key_jwt`).
    pub fn uses_keys(self) -> bool {
        self == AuthMethod::PrivateKeyJwt
    }

    /// A public client: it authenticates with nothing (RFC 6749 §2.1).
    pub fn is_public(self) -> bool {
        self == AuthMethod::None
    }
}

/// A client as administrators see it: never its secret or the secret's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Also the `client_id` of RFC 6749 and the `sub` of its tokens.
    pub id: Uuid,
    pub name: String,
    /// Sorted and without duplicates.
    pub scopes: Vec<String>,
    /// Held globally, or in `territory` when it is set.
    pub roles: Vec<String>,
    pub territory: Option<String>,
    /// `None`: the configured access-token lifetime.
    pub access_token_ttl: Option<u64>,
    pub is_active: bool,
    /// Until when the secret replaced by the last rotation still authenticates.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Audiences it may exchange users' tokens for (RFC 8693); empty: it may not exchange.
    pub exchange_audiences: Vec<String>,
    pub keys: ClientKeys,
    /// Where the authorization endpoint may send its answer (RFC 6749 §3.1.2), matched
    /// exactly as written; empty: the client cannot use it.
    pub redirect_uris: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How a client authenticates, and for `private_key_jwt` where its public keys are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientKeys {
    pub auth_method: AuthMethod,
    /// An inline JWK Set (JSON text, checked when set).
    pub jwks: Option<String>,
    /// Where its JWK Set is fetched: https, or http on a loopback address.
    pub jwks_uri: Option<String>,
}

/// A client with what authenticates it: the SHA-256 of its secret and, during a rotation's
/// overlap, of the secret before.
#[derive(Debug, Clone)]
pub struct StoredClient {
    pub client: Client,
    pub secret_hash: Vec<u8>,
    pub previous_secret_hash: Option<Vec<u8>>,
}

impl StoredClient {
    /// The hashes a presented secret may match at `now`: the current one, and the previous
    /// one until its overlap ends.
    pub fn accepted_hashes(&self, now: DateTime<Utc>) -> Vec<&[u8]> {
        let mut hashes = vec![self.secret_hash.as_slice()];
        if let (Some(previous), Some(until)) = (
            &self.previous_secret_hash,
            self.client.previous_secret_expires_at,
        ) {
            if now < until {
                hashes.push(previous.as_slice());
            }
        }
        hashes
    }
}

/// What makes a new client; its secret's hash is given beside it.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub name: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub territory: Option<String>,
    pub access_token_ttl: Option<u64>,
    pub is_active: bool,
    pub exchange_audiences: Vec<String>,
    pub keys: ClientKeys,
    pub redirect_uris: Vec<String>,
}

/// A change to a client; `None` keeps a field, `Some(None)` clears the territory or the
/// lifetime.
#[derive(Debug, Clone, Default)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
    pub territory: Option<Option<String>>,
    pub access_token_ttl: Option<Option<u64>>,
    pub is_active: Option<bool>,
    pub exchange_audiences: Option<Vec<String>>,
    pub auth_method: Option<AuthMethod>,
    pub jwks: Option<Option<String>>,
    pub jwks_uri: Option<Option<String>>,
    pub redirect_uris: Option<Vec<String>>,
}

impl ClientPatch {
    /// The settings after the change, and the names of the fields it changes.
    pub fn apply(&self, client: &Client) -> (ClientSettings, Vec<&'static str>) {
        let mut fields = Vec::new();
        let mut settings = client.settings();
        macro_rules! take {
            ($field:ident, $name:literal) => {
                take!($field, $field, $name)
            };
            ($field:ident, $($place:ident).+, $name:literal) => {
                if let Some(value) = &self.$field {
                    if *value != settings.$($place).+ {
                        settings.$($place).+ = value.clone();
                        fields.push($name);
                    }
                }
            };
        }
        take!(name, "name");
        take!(scopes, "scopes");
        take!(roles, "roles");
        take!(territory, "territory");
        take!(access_token_ttl, "access_token_ttl");
        take!(is_active, "is_active");
        take!(exchange_audiences, "exchange_audiences");
        take!(auth_method, keys.auth_method, "token_endpoint_auth_method");
        take!(jwks, keys.jwks, "jwks");
        take!(jwks_uri, keys.jwks_uri, "jwks_uri");
        take!(redirect_uris, "redirect_uris");
        (settings, fields)
    }
}

impl Client {
    /// The settings it was made or last changed with.
    pub fn settings(&self) -> ClientSettings {
        ClientSettings {
            name: self.name.clone(),
            scopes: self.scopes.clone(),
            roles: self.roles.clone(),
            territory: self.territory.clone(),
            access_token_ttl: self.access_token_ttl,
            is_active: self.is_active,
            exchange_audiences: self.exchange_audiences.clone(),
            keys: self.keys.clone(),
            redirect_uris: self.redirect_uris.clone(),
        }
    }
}

/// The audiences a client may exchange tokens for: each 1–200 printable ASCII characters
/// without space, at most 20; sorted, without duplicates.
pub fn parse_exchange_audiences(audiences: Vec<String>) -> Result<Vec<String>, FieldError> {
    let valid = |audience: &String| {
        (1..=200).contains(&audience.len()) && audience.bytes().all(|b| (0x21..=0x7E).contains(&b))
    };
    if audiences.len() > MAX_EXCHANGE_AUDIENCES || !audiences.iter().all(valid) {
        return Err(FieldError::new(
            "exchange_audiences",
            "invalid",
            "each audience is 1 to 200 printable ASCII characters without space; at most 20",
        ));
    }
    Ok(sorted(audiences))
}

/// A client's keys must fit its method: `private_key_jwt` needs exactly one of `jwks` and
/// `jwks_uri`, a secret method or a public client neither.
pub fn check_keys(keys: &ClientKeys) -> Result<(), FieldError> {
    let sources = usize::from(keys.jwks.is_some()) + usize::from(keys.jwks_uri.is_some());
    match (!keys.auth_method.uses_keys(), sources) {
        (false, 1) | (true, 0) => Ok(()),
        (false, _) => Err(FieldError::new(
            "jwks",
            "required",
            "a private_key_jwt client needs exactly one of jwks and jwks_uri",
        )),
        (true, _) => Err(FieldError::new(
            "jwks",
            "not_allowed",
            "only a private_key_jwt client has jwks or jwks_uri",
        )),
    }
}

/// Most redirect URIs a client may register, and the longest one.
const MAX_REDIRECT_URIS: usize = 10;
const MAX_REDIRECT_URI_BYTES: usize = 2048;

/// A client's redirect URIs (RFC 6749 §3.1.2, RFC 9700 §2.1): at most 10, each at most 2 KiB,
/// absolute, without a fragment and without spaces; `https`, or `http` on a loopback host
/// only (`localhost`, `127.0.0.1`, `[::1]`, RFC 8252 §7.3). Kept exactly as written (they
/// are matched exactly); sorted, without duplicates.
pub fn parse_redirect_uris(uris: Vec<String>) -> Result<Vec<String>, FieldError> {
    let invalid = |why: &str| FieldError::new("redirect_uris", "invalid", why);
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(invalid("at most 10 redirect URIs"));
    }
    for uri in &uris {
        check_redirect_uri(uri).map_err(invalid)?;
    }
    Ok(sorted(uris))
}

fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    if uri.len() > MAX_REDIRECT_URI_BYTES {
        return Err("each redirect URI is at most 2048 bytes");
    }
    if uri.bytes().any(|b| !(0x21..=0x7E).contains(&b)) {
        return Err("a redirect URI is printable ASCII without spaces (percent-encode the rest)");
    }
    let parsed = url::Url::parse(uri).map_err(|_| "a redirect URI must be an absolute URI")?;
    if uri.contains('#') {
        return Err("a redirect URI has no fragment (RFC 6749 §3.1.2)");
    }
    let loopback = matches!(
        parsed.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("a redirect URI is https, or http on localhost, 127.0.0.1 or [::1] only"),
    }
}

/// Whether `text` is a scope token of RFC 6749 §3.3 (`%x21 / %x23-5B / %x5D-7E`), at most 64
/// characters long.
pub fn is_scope_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// A client's name: 1–100 characters, no control characters (taken as written).
pub fn parse_name(name: &str) -> Result<String, FieldError> {
    let length = name.chars().count();
    if !(1..=100).contains(&length) || name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "name",
            "invalid",
            "must be 1 to 100 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A list of scopes an administrator gives: each a scope token; sorted, without duplicates.
pub fn parse_scopes(scopes: Vec<String>) -> Result<Vec<String>, FieldError> {
    if scopes.len() > MAX_SCOPES || !scopes.iter().all(|s| is_scope_token(s)) {
        return Err(FieldError::new(
            "scopes",
            "invalid",
            "each scope is 1 to 64 printable ASCII characters without space, `\"` or `\\`; at most 100",
        ));
    }
    Ok(sorted(scopes))
}

/// A token lifetime in seconds, within [`TOKEN_TTL_SECONDS`].
pub fn parse_ttl(seconds: u64) -> Result<u64, FieldError> {
    if TOKEN_TTL_SECONDS.contains(&seconds) {
        Ok(seconds)
    } else {
        Err(FieldError::new(
            "access_token_ttl_seconds",
            "out_of_range",
            "must be between 60 and 86400",
        ))
    }
}

/// Sorted, without duplicates.
pub fn sorted(mut list: Vec<String>) -> Vec<String> {
    list.sort();
    list.dedup();
    list
}

/// The scopes a token request asks for, as RFC 6749 §3.3 writes them (space-separated):
/// `None` when absent (all of the client's scopes); `invalid_scope` when one is malformed
/// or not the client's.
pub fn granted_scopes(requested: Option<&str>, held: &[String]) -> Result<Vec<String>, Error> {
    let Some(requested) = requested else {
        return Ok(held.to_vec());
    };
    let asked: Vec<String> = requested.split(' ').map(str::to_owned).collect();
    let known = |scope: &String| is_scope_token(scope) && held.contains(scope);
    if !asked.iter().all(known) {
        return Err(Error::OAuth(crate::error::OAuthError::InvalidScope));
    }
    Ok(sorted(asked))
}

impl AdminScope {
    /// Whether a client is within an administrator's reach: a territory admin reaches the
    /// clients of its territory only (SPEC §5, applied to clients as to users).
    pub fn reaches_client(&self, territory: Option<&str>) -> bool {
        match self {
            Self::Global => true,
            Self::Territory(own) => territory == Some(own.as_str()),
        }
    }
}

/// Whether a client of `territory` holds its roles on a deployment of `deployment`: a global
/// client everywhere, a territory's client only on that territory's deployments (as a user's
/// territory roles count only there).
pub fn roles_apply(territory: Option<&str>, deployment: Option<&str>) -> bool {
    territory.is_none() || territory == deployment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(is_scope_token("orders:read"));
        assert!(is_scope_token("!#[]~"));
        for bad in ["", "a b", "a\"b", "a\\b", "é", &"x".repeat(65)] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_request_narrows_the_scopes_and_may_not_widen_them() {
        let held = vec!["a".to_owned(), "b".to_owned()];

        assert_eq!(granted_scopes(None, &held).unwrap(), held);
        assert_eq!(granted_scopes(Some("b"), &held).unwrap(), ["b"]);
        assert_eq!(granted_scopes(Some("b a b"), &held).unwrap(), ["a", "b"]);
        for bad in ["c", "a c", "", "a  b", " a"] {
            assert!(granted_scopes(Some(bad), &held).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_previous_secret_counts_until_its_overlap_ends() {
        let now = Utc::now();
        let stored = StoredClient {
            client: Client {
                id: Uuid::now_v7(),
                name: "n".into(),
                scopes: vec![],
                roles: vec![],
                territory: None,
                access_token_ttl: None,
                is_active: true,
                previous_secret_expires_at: Some(now + chrono::Duration::hours(1)),
                exchange_audiences: vec![],
                keys: ClientKeys::default(),
                redirect_uris: vec![],
                created_at: now,
                updated_at: now,
            },
            secret_hash: vec![1],
            previous_secret_hash: Some(vec![2]),
        };

        assert_eq!(stored.accepted_hashes(now).len(), 2);
        assert_eq!(
            stored.accepted_hashes(now + chrono::Duration::hours(1)),
            [&[1u8][..]]
        );
    }

    #[test]
    fn redirect_uris_are_absolute_https_or_loopback_http_without_fragment() {
        let good = [
            "https://app.example/cb",
            "https://app.example/cb?x=1",
            "http://localhost:8080/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:9/cb",
            "com.example.app:/oauth2redirect",
        ];
        for uri in good.iter().take(5) {
            assert!(
                parse_redirect_uris(vec![(*uri).to_owned()]).is_ok(),
                "{uri}"
            );
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#x",
            "/cb",
            "https://app.example/a b",
            good[5],
            "javascript:alert(1)",
        ] {
            assert!(parse_redirect_uris(vec![bad.to_owned()]).is_err(), "{bad}");
        }
        let eleven = (0..11).map(|i| format!("https://a.example/{i}")).collect();
        assert!(parse_redirect_uris(eleven).is_err());
        let long = format!("https://a.example/{}", "x".repeat(2048));
        assert!(parse_redirect_uris(vec![long]).is_err());
    }

    #[test]
    fn a_territory_admin_reaches_its_territorys_clients_only() {
        let dk = AdminScope::Territory("dk".into());

        assert!(dk.reaches_client(Some("dk")));
        assert!(!dk.reaches_client(Some("se")));
        assert!(!dk.reaches_client(None));
        assert!(AdminScope::Global.reaches_client(None));
        assert!(roles_apply(None, Some("dk")));
        assert!(!roles_apply(Some("se"), Some("dk")));
    }
}
