//! The authorization code grant with PKCE (SPEC §11, RFC 6749 §4.1, RFC 7636, RFC 9700): what
//! an authorization request must say, what a code remembers, and the pure checks of both.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::client::{granted_scopes, Client};
use super::mfa::ENROLLMENT_SCOPE;

/// How long a code may be exchanged (RFC 6749 §4.1.2 recommends at most 10 minutes; the
/// front-end redirects at once, so a minute is plenty).
pub const CODE_TTL_SECONDS: i64 = 60;

/// How long a code's row is kept after it expires, so that a late replay still finds it and
/// ends the session it started.
pub const CODE_MEMORY_SECONDS: i64 = 24 * 3600;

/// The one code challenge method taken (RFC 7636 §4.2; `plain` is refused, RFC 9700 §2.1.1).
pub const S256: &str = "S256";

/// The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3), as given.
#[derive(Debug, Clone, Default)]
pub struct AuthorizationRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

/// Why an authorization request is refused, in the two kinds RFC 6749 §4.1.2.1 separates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationError {
    /// The client or the redirect URI cannot be trusted: answered here, never redirected.
    Untrusted(&'static str),
    /// Anything else: sent back to the (verified) redirect URI as `error` and
    /// `error_description`.
    Redirected {
        redirect_uri: String,
        error: &'static str,
        description: String,
    },
}

/// A request found valid: the redirect URI it answers to, and what a code will carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAuthorization {
    pub client_id: Uuid,
    pub redirect_uri: String,
    /// The granted scopes, space-separated; `None` when none was asked for.
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: String,
}

/// The redirect URI a request answers to (RFC 6749 §3.1.2.3): the one given, which must be
/// one of the client's exactly; or, when none is given, the client's only one.
pub fn redirect_uri_for(client: &Client, given: Option<&str>) -> Option<String> {
    match given {
        Some(uri) => client
            .redirect_uris
            .iter()
            .find(|registered| registered.as_str() == uri)
            .cloned(),
        None => match client.redirect_uris.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        },
    }
}

/// Checks a request against its client (known, active, with a redirect URI), in the order of
/// RFC 6749 §4.1.2.1: first what makes the redirect URI trustworthy, then the rest.
pub fn validate(
    request: &AuthorizationRequest,
    client: Option<&Client>,
) -> Result<ValidAuthorization, AuthorizationError> {
    let client = client
        .filter(|client| client.is_active)
        .ok_or(AuthorizationError::Untrusted(
            "unknown or inactive client_id",
        ))?;
    let redirect_uri = redirect_uri_for(client, request.redirect_uri.as_deref()).ok_or(
        AuthorizationError::Untrusted(
            "redirect_uri is not one of the client's registered redirect URIs",
        ),
    )?;
    let refuse = |error: &'static str, description: &str| AuthorizationError::Redirected {
        redirect_uri: redirect_uri.clone(),
        error,
        description: description.to_owned(),
    };
    match request.response_type.as_deref() {
        Some("code") => {}
        None => return Err(refuse("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "the only response_type is code",
            ))
        }
    }
    let code_challenge = match (
        request.code_challenge.as_deref(),
        request.code_challenge_method.as_deref(),
    ) {
        (None, _) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge is required (PKCE, RFC 7636)",
            ))
        }
        (Some(_), method) if method != Some(S256) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256",
            ))
        }
        (Some(challenge), _) if !is_s256_challenge(challenge) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge must be 43 base64url characters (the SHA-256 of the verifier)",
            ))
        }
        (Some(challenge), _) => challenge.to_owned(),
    };
    if request
        .state
        .as_ref()
        .is_some_and(|state| state.len() > 1024)
    {
        return Err(refuse("invalid_request", "state is longer than 1024 bytes"));
    }
    let scope = match request.scope.as_deref() {
        None => None,
        Some(asked) => {
            let scopes = granted_scopes(Some(asked), &client.scopes)
                .ok()
                .filter(|scopes| !scopes.iter().any(|s| s == ENROLLMENT_SCOPE))
                .ok_or_else(|| {
                    refuse(
                        "invalid_scope",
                        "each scope must be one of the client's scopes",
                    )
                })?;
            Some(scopes.join(" "))
        }
    };
    Ok(ValidAuthorization {
        client_id: client.id,
        redirect_uri,
        scope,
        state: request.state.clone(),
        code_challenge,
    })
}

/// An S256 code challenge: BASE64URL(SHA-256(verifier)) without padding, 43 characters.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A code verifier of RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A new code's row; the code itself is given to the user agent only.
#[derive(Debug, Clone)]
pub struct NewAuthorizationCode {
    pub hash: Vec<u8>,
    pub client_id: Uuid,
    pub user_id: Uuid,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: Option<String>,
    /// How the consenting user signed in (RFC 8176); the session the code starts says so.
    pub amr: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A code as stored.
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    pub client_id: Uuid,
    pub user_id: Uuid,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: Option<String>,
    pub amr: Vec<String>,
    pub expires_at: DateTime<Utc>,
    /// Set when it was exchanged, rightly or not: it is spent.
    pub spent_at: Option<DateTime<Utc>>,
    /// The session its exchange started.
    pub session_id: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::ClientKeys;

    fn client(uris: &[&str]) -> Client {
        let now = Utc::now();
        Client {
            id: Uuid::now_v7(),
            name: "app".into(),
            scopes: vec!["orders:read".into()],
            roles: vec![],
            territory: None,
            access_token_ttl: None,
            is_active: true,
            previous_secret_expires_at: None,
            exchange_audiences: vec![],
            keys: ClientKeys::default(),
            redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(),
            created_at: now,
            updated_at: now,
        }
    }

    fn request() -> AuthorizationRequest {
        AuthorizationRequest {
            response_type: Some("code".into()),
            client_id: None,
            redirect_uri: Some("https://a.example/cb".into()),
            scope: None,
            state: Some("xyz".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            code_challenge_method: Some("S256".into()),
        }
    }

    #[test]
    fn the_redirect_uri_is_matched_exactly_and_defaults_to_the_only_one() {
        let one = client(&["https://a.example/cb"]);
        let two = client(&["https://a.example/cb", "https://b.example/cb"]);

        assert!(redirect_uri_for(&one, None).is_some());
        assert!(redirect_uri_for(&two, None).is_none());
        assert!(redirect_uri_for(&one, Some("https://a.example/cb/")).is_none());
        assert!(redirect_uri_for(&one, Some("https://A.example/cb")).is_none());
    }

    #[test]
    fn an_untrusted_client_or_uri_is_never_redirected_to() {
        let one = client(&["https://a.example/cb"]);
        let mut inactive = one.clone();
        inactive.is_active = false;
        let mut elsewhere = request();
        elsewhere.redirect_uri = Some("https://evil.example/cb".into());
        elsewhere.response_type = Some("token".into());

        assert!(matches!(
            validate(&request(), None),
            Err(AuthorizationError::Untrusted(_))
        ));
        assert!(matches!(
            validate(&request(), Some(&inactive)),
            Err(AuthorizationError::Untrusted(_))
        ));
        assert!(matches!(
            validate(&elsewhere, Some(&one)),
            Err(AuthorizationError::Untrusted(_))
        ));
        assert!(validate(&request(), Some(&one)).is_ok());
    }

    #[test]
    fn pkce_s256_is_required() {
        let one = client(&["https://a.example/cb"]);
        let error = |change: fn(&mut AuthorizationRequest)| {
            let mut request = request();
            change(&mut request);
            match validate(&request, Some(&one)) {
                Err(AuthorizationError::Redirected { error, .. }) => error,
                other => panic!("{other:?}"),
            }
        };

        assert_eq!(error(|r| r.code_challenge = None), "invalid_request");
        assert_eq!(
            error(|r| r.code_challenge_method = Some("plain".into())),
            "invalid_request"
        );
        assert_eq!(error(|r| r.code_challenge_method = None), "invalid_request");
        assert_eq!(
            error(|r| r.code_challenge = Some("short".into())),
            "invalid_request"
        );
        assert_eq!(
            error(|r| r.response_type = Some("token".into())),
            "unsupported_response_type"
        );
        assert_eq!(error(|r| r.scope = Some("admin".into())), "invalid_scope");
    }

    #[test]
    fn verifiers_follow_rfc_7636() {
        assert!(is_code_verifier(&"a".repeat(43)));
        assert!(is_code_verifier(&"-._~".repeat(32)));
        assert!(!is_code_verifier(&"a".repeat(42)));
        assert!(!is_code_verifier(&"a".repeat(129)));
        assert!(!is_code_verifier(&format!("{}+", "a".repeat(43))));
    }
}
