//! `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9): a client's public keys (a JWK Set) and the
//! verification of the assertions it signs with them. Pure: no I/O, time is an argument.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::jwt::LEEWAY_SECONDS;

/// Longest JWK Set taken, inline or fetched.
pub const MAX_JWKS_BYTES: usize = 16 * 1024;
/// Most keys in a client's set.
const MAX_KEYS: usize = 10;
/// Longest `jwks_uri`.
const MAX_URI_LENGTH: usize = 2048;
/// Furthest ahead an assertion's `exp` may be: RFC 7523 §3 lets the server limit it, and a
/// short bound keeps the table of used `jti`s small.
pub const MAX_ASSERTION_LIFETIME_SECONDS: i64 = 300;
/// Longest `jti` kept.
const MAX_JTI_LENGTH: usize = 200;

/// The algorithms an assertion may be signed with; never HMAC (the key would be a shared
/// secret) and never `none`.
pub const ASSERTION_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

/// The names of [`ASSERTION_ALGORITHMS`], for the discovery documents.
pub const ASSERTION_ALGORITHM_NAMES: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// A client's JWK Set, checked: at most 16 KiB and 10 keys, each an RSA, EC or OKP public key
/// that makes a verifying key; no symmetric key.
pub fn parse_jwks(text: &str) -> Result<JwkSet, &'static str> {
    if text.len() > MAX_JWKS_BYTES {
        return Err("the JWK Set is longer than 16 KiB");
    }
    let set: JwkSet = serde_json::from_str(text)
        .map_err(|_| "is not a JWK Set (`{\"keys\": [...]}` of public keys)")?;
    if set.keys.is_empty() || set.keys.len() > MAX_KEYS {
        return Err("holds 1 to 10 keys");
    }
    for key in &set.keys {
        let public = matches!(
            key.algorithm,
            AlgorithmParameters::RSA(_)
                | AlgorithmParameters::EllipticCurve(_)
                | AlgorithmParameters::OctetKeyPair(_)
        );
        if !public || DecodingKey::from_jwk(key).is_err() {
            return Err("each key is an RSA, EC or OKP public key");
        }
    }
    Ok(set)
}

/// A `jwks_uri`: https, or http only to a loopback address (a sidecar or a test); no
/// credentials or fragment in it.
pub fn check_jwks_uri(uri: &str) -> Result<(), &'static str> {
    let message = "is an https URL (http only on a loopback address), without user or fragment";
    if uri.len() > MAX_URI_LENGTH {
        return Err(message);
    }
    let parsed = url::Url::parse(uri).map_err(|_| message)?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(message),
    };
    let scheme_ok = parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback);
    if !scheme_ok
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.fragment().is_some()
    {
        return Err(message);
    }
    Ok(())
}

/// What an accepted assertion leaves to remember: its `jti` until its `exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub jti: String,
    pub exp: i64,
}

/// Why an assertion was refused: all are `invalid_client` to the caller; the reason is logged
/// (at debug), never the assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssertionRefused {
    #[error("malformed")]
    Malformed,
    #[error("algorithm not allowed")]
    Algorithm,
    /// The header's `kid` is in none of the client's keys (a fetched set is then refetched).
    #[error("unknown kid")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("iss or sub is not the client")]
    WrongClient,
    #[error("aud names neither the token endpoint nor the issuer")]
    WrongAudience,
    #[error("expired")]
    Expired,
    #[error("exp too far ahead")]
    TooLong,
    #[error("not yet valid")]
    NotYetValid,
    #[error("no jti")]
    NoJti,
}

#[derive(Deserialize)]
struct AssertionClaims {
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
}

/// Verifies a client assertion (RFC 7523 §3) against the client's keys at `now` (Unix
/// seconds): signature by the key its `kid` names (or the only key when it names none), an
/// allowed algorithm that fits the key, `iss` = `sub` = `client_id`, `aud` one of
/// `audiences`, `exp` in the future but at most 5 minutes ahead, `nbf` past, a `jti`.
pub fn verify_assertion(
    assertion: &str,
    keys: &JwkSet,
    client_id: &str,
    audiences: &[&str],
    now: i64,
) -> Result<Assertion, AssertionRefused> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| AssertionRefused::Algorithm)?;
    if !ASSERTION_ALGORITHMS.contains(&header.alg) {
        return Err(AssertionRefused::Algorithm);
    }
    let key = signing_key(keys, header.kid.as_deref())?;
    if key
        .common
        .key_algorithm
        .is_some_and(|alg| format!("{alg:?}") != format!("{:?}", header.alg))
    {
        return Err(AssertionRefused::Algorithm);
    }
    let decoding = DecodingKey::from_jwk(key).map_err(|_| AssertionRefused::Malformed)?;
    let mut validation = Validation::new(header.alg);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_owned());
    validation.set_audience(audiences);
    // Times are checked below against the service clock, not the system's.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &decoding, &validation)
        .map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => AssertionRefused::BadSignature,
            jsonwebtoken::errors::ErrorKind::InvalidIssuer
            | jsonwebtoken::errors::ErrorKind::InvalidSubject => AssertionRefused::WrongClient,
            jsonwebtoken::errors::ErrorKind::InvalidAudience => AssertionRefused::WrongAudience,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat => AssertionRefused::Algorithm,
            _ => AssertionRefused::Malformed,
        })?
        .claims;
    if now >= claims.exp + LEEWAY_SECONDS {
        return Err(AssertionRefused::Expired);
    }
    if claims.exp > now + MAX_ASSERTION_LIFETIME_SECONDS + LEEWAY_SECONDS {
        return Err(AssertionRefused::TooLong);
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECONDS) {
        return Err(AssertionRefused::NotYetValid);
    }
    let jti = claims
        .jti
        .filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_LENGTH)
        .ok_or(AssertionRefused::NoJti)?;
    Ok(Assertion {
        jti,
        exp: claims.exp,
    })
}

/// The key a header names by `kid`, or the only key of the set when it names none.
fn signing_key<'a>(keys: &'a JwkSet, kid: Option<&str>) -> Result<&'a Jwk, AssertionRefused> {
    match kid {
        Some(kid) => keys.find(kid).ok_or(AssertionRefused::UnknownKey),
        None if keys.keys.len() == 1 => keys.keys.first().ok_or(AssertionRefused::UnknownKey),
        None => Err(AssertionRefused::UnknownKey),
    }
}
