//! Access tokens: the claims of SPEC §3, signing with the active key, and verification that
//! rejects every attack listed there. Time checks use the service clock, not the system's.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::config::SigningAlgorithm;

/// Clock skew tolerated on `exp`, `nbf` and `iat` (SPEC §3: at most 30 s).
pub const LEEWAY_SECONDS: i64 = 10;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    pub sid: Uuid,
    pub jti: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub email: String,
    pub username: String,
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub territory: Option<String>,
    pub verified: bool,
    /// RFC 8176 authentication methods of the session (SPEC §10): `["pwd"]`, or with a second
    /// factor `["pwd", "otp", "mfa"]` (TOTP) or `["pwd", "mfa"]` (a recovery code).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// `mfa_enrollment` on an enrollment-only token (SPEC §10 `auth.require_mfa_for_roles`);
    /// the granted scopes on an exchanged token; absent on every other token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// RFC 8693 §4.1: on a token made by token exchange, the client acting for the user (and,
    /// nested, whoever acted before it). Such a token's `aud` is never this service's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// RFC 8693 §4.1 `act`: the current actor, and in `act` the one before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

/// The `aud` of an enrollment-only token (SPEC §10 `auth.require_mfa_for_roles`): this service
/// accepts it on its enrollment routes, while every other verifier, which checks `aud` against
/// `auth.audience` (auth-client does), refuses it as a login.
pub fn enrollment_audience(audience: &str) -> String {
    format!("{audience}:mfa-enrollment")
}

/// The claims of a client's access token (SPEC §11): `sub` is the `client_id`, there is no
/// session, `scope` is space-separated (RFC 8693 §4.2, RFC 9068).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub client_id: String,
    pub jti: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub scope: String,
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub territory: Option<String>,
}

/// A verified access token: a user's (with a session) or a client's (without one). A user's
/// token is read first; a client's lacks `sid`, a user's lacks `client_id`, so neither is
/// ever taken for the other.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Verified {
    User(AccessClaims),
    Client(ClientClaims),
}

/// Why a token was refused; reported by introspection and ValidateToken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed")]
    Malformed,
    #[error("unknown_key")]
    UnknownKey,
    #[error("key_revoked")]
    KeyRevoked,
    /// Signed by a key retired longer ago than its tokens can live (SPEC §3).
    #[error("key_retired")]
    KeyRetired,
    #[error("algorithm_mismatch")]
    AlgorithmMismatch,
    #[error("bad_signature")]
    BadSignature,
    #[error("wrong_issuer")]
    WrongIssuer,
    #[error("wrong_audience")]
    WrongAudience,
    #[error("expired")]
    Expired,
    #[error("not_yet_valid")]
    NotYetValid,
    #[error("session_ended")]
    SessionEnded,
    /// A client's token where a user's is required (SPEC §11).
    #[error("client_token")]
    ClientToken,
    /// A client's token whose client is deleted or inactive (SPEC §11).
    #[error("client_inactive")]
    ClientInactive,
    /// A client's token revoked at `/oauth/revoke` (SPEC §11, RFC 7009).
    #[error("token_revoked")]
    TokenRevoked,
    /// An enrollment-only session (SPEC §10 `auth.require_mfa_for_roles`): valid for enrolling
    /// a second factor here, not as a login elsewhere.
    #[error("mfa_enrollment_required")]
    MfaEnrollmentRequired,
    /// An API key (SPEC §11) this service does not hold: never issued, or revoked.
    #[error("api_key_unknown")]
    ApiKeyUnknown,
    /// An API key whose user is deactivated.
    #[error("account_disabled")]
    AccountDisabled,
}

fn jwt_algorithm(algorithm: SigningAlgorithm) -> Algorithm {
    match algorithm {
        SigningAlgorithm::EdDSA => Algorithm::EdDSA,
        SigningAlgorithm::RS256 => Algorithm::RS256,
        SigningAlgorithm::ES256 => Algorithm::ES256,
    }
}

/// A key as the key ring holds it.
pub struct RingKey {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub public_jwk: Value,
    /// Present only for the active key.
    pub private_der: Option<Vec<u8>>,
    /// For a retired key: when the last token it signed has expired (retirement + access
    /// token TTL + leeway); from then on it verifies nothing and is no longer published.
    pub verifies_until: Option<DateTime<Utc>>,
    pub revoked: bool,
}

struct Verifier {
    algorithm: Algorithm,
    key: DecodingKey,
    jwk: Value,
    verifies_until: Option<DateTime<Utc>>,
}

impl Verifier {
    fn expired(&self, now: DateTime<Utc>) -> bool {
        self.verifies_until.is_some_and(|end| now >= end)
    }
}

/// Most tokens a ring remembers as verified; when full it forgets them all and starts over.
const VERIFIED_CAPACITY: usize = 4096;

/// The keys in use: one signer, and verifiers for every key not revoked.
pub struct KeyRing {
    signer: Option<(String, Algorithm, EncodingKey)>,
    verifiers: HashMap<String, Verifier>,
    issuer: String,
    audience: String,
    /// [`enrollment_audience`] of `audience`.
    enrollment_audience: String,
    /// Claims of tokens whose signature, algorithm, issuer and audience this ring has checked,
    /// by the token's SHA-256: a client presents the same token on every request for its
    /// lifetime, and a signature check costs far more than the lookup. Times are checked on
    /// every use, and so is the retirement of the key that signed them (by its `kid`). The
    /// ring is rebuilt when keys are reread, so nothing outlives a key change.
    verified: Mutex<HashMap<[u8; 32], (String, Verified)>>,
}

impl KeyRing {
    pub fn new(keys: Vec<RingKey>, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let mut signer = None;
        let mut verifiers = HashMap::new();
        for key in keys.into_iter().filter(|key| !key.revoked) {
            let algorithm = jwt_algorithm(key.algorithm);
            if let Some(der) = &key.private_der {
                let encoding = match key.algorithm {
                    SigningAlgorithm::EdDSA => EncodingKey::from_ed_der(der),
                    SigningAlgorithm::ES256 => EncodingKey::from_ec_der(der),
                    SigningAlgorithm::RS256 => EncodingKey::from_rsa_der(der),
                };
                signer = Some((key.kid.clone(), algorithm, encoding));
            }
            verifiers.insert(
                key.kid.clone(),
                Verifier {
                    algorithm,
                    key: decoding_key(&key.public_jwk)?,
                    jwk: key.public_jwk,
                    verifies_until: key.verifies_until,
                },
            );
        }
        Ok(Self {
            signer,
            verifiers,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            enrollment_audience: enrollment_audience(audience),
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.verifiers.contains_key(kid)
    }

    /// Whether this ring holds an active key to sign with.
    pub fn can_sign(&self) -> bool {
        self.signer.is_some()
    }

    /// Signs `claims` (a user's [`AccessClaims`] or a client's [`ClientClaims`]) with the
    /// active key.
    pub fn sign<C: Serialize>(&self, claims: &C) -> anyhow::Result<String> {
        let (kid, algorithm, key) = self
            .signer
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no active signing key"))?;
        let mut header = Header::new(*algorithm);
        header.kid = Some(kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, key)?)
    }

    /// The `kid` of a token's header, if it has one.
    pub fn kid_of(token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|header| header.kid)
    }

    /// A user's token: signature, algorithm, issuer, audience and times; not the session. A
    /// client's token is refused as [`Rejection::ClientToken`].
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, Rejection> {
        match self.verify_any(token, now)? {
            Verified::User(claims) => Ok(claims),
            Verified::Client(_) => Err(Rejection::ClientToken),
        }
    }

    /// A user's or a client's token: signature, algorithm, issuer, audience and times.
    pub fn verify_any(&self, token: &str, now: DateTime<Utc>) -> Result<Verified, Rejection> {
        let digest = token_digest(token);
        let remembered = self
            .verified
            .lock()
            .ok()
            .and_then(|verified| verified.get(&digest).cloned());
        let (kid, claims) = match remembered {
            Some(remembered) => remembered,
            None => {
                let checked = self.verify_signed(token)?;
                if let Ok(mut verified) = self.verified.lock() {
                    if verified.len() >= VERIFIED_CAPACITY {
                        verified.clear();
                    }
                    verified.insert(digest, checked.clone());
                }
                checked
            }
        };
        let times = match &claims {
            Verified::User(c) => (c.exp, c.nbf, c.iat),
            Verified::Client(c) => (c.exp, c.nbf, c.iat),
        };
        self.check_times(&kid, times, now)?;
        Ok(claims)
    }

    /// A token made by token exchange (RFC 8693, SPEC §11): a user's token with `act`, for
    /// another audience than this service's. Signature, algorithm, issuer and times are
    /// checked as for [`Self::verify_any`]; any audience is taken, so such a token is never
    /// remembered with the tokens this service accepts on its own routes.
    pub fn verify_delegated(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<AccessClaims, Rejection> {
        let (kid, claims) = match self.verify_signed_for(token, None)? {
            (kid, Verified::User(claims)) if claims.act.is_some() => (kid, claims),
            _ => return Err(Rejection::WrongAudience),
        };
        self.check_times(&kid, (claims.exp, claims.nbf, claims.iat), now)?;
        Ok(claims)
    }

    /// `(exp, nbf, iat)` against `now`, and the key that signed them still verifying.
    fn check_times(
        &self,
        kid: &str,
        (exp, nbf, iat): (i64, i64, i64),
        now: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        // SPEC §3: a retired key verifies only while tokens it signed can still be alive; a
        // token minted later with its private half (from an old backup) is refused.
        if self.verifiers.get(kid).is_none_or(|v| v.expired(now)) {
            return Err(Rejection::KeyRetired);
        }
        let now = now.timestamp();
        if now >= exp + LEEWAY_SECONDS {
            return Err(Rejection::Expired);
        }
        if nbf > now + LEEWAY_SECONDS || iat > now + LEEWAY_SECONDS {
            return Err(Rejection::NotYetValid);
        }
        Ok(())
    }

    /// Signature, algorithm, issuer and audience: what does not change with time.
    fn verify_signed(&self, token: &str) -> Result<(String, Verified), Rejection> {
        let audiences = [self.audience.as_str(), self.enrollment_audience.as_str()];
        self.verify_signed_for(token, Some(&audiences))
    }

    /// Signature, algorithm, issuer, and the audience when `audiences` are given.
    fn verify_signed_for(
        &self,
        token: &str,
        audiences: Option<&[&str]>,
    ) -> Result<(String, Verified), Rejection> {
        // `alg: none` and unknown algorithms fail to parse here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| header_rejection(token))?;
        let kid = header.kid.ok_or(Rejection::UnknownKey)?;
        let verifier = self.verifiers.get(&kid).ok_or(Rejection::UnknownKey)?;
        // SPEC §3: only the key's own algorithm; an HS256 token "signed" with a public key fails.
        if header.alg != verifier.algorithm {
            return Err(Rejection::AlgorithmMismatch);
        }
        let mut validation = Validation::new(verifier.algorithm);
        validation.set_issuer(&[&self.issuer]);
        match audiences {
            Some(audiences) => validation.set_audience(audiences),
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<Verified>(token, &verifier.key, &validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => Rejection::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
                jsonwebtoken::errors::ErrorKind::InvalidAudience => Rejection::WrongAudience,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => Rejection::AlgorithmMismatch,
                _ => Rejection::Malformed,
            })?
            .claims;
        Ok((kid, claims))
    }

    /// Public keys to publish: the active key and retired keys whose tokens may still be alive.
    pub fn jwks(&self, now: DateTime<Utc>) -> Vec<Value> {
        let mut keys: Vec<_> = self
            .verifiers
            .values()
            .filter(|v| !v.expired(now))
            .map(|v| v.jwk.clone())
            .collect();
        keys.sort_by(|a, b| a["kid"].as_str().cmp(&b["kid"].as_str()));
        keys
    }

    /// Algorithms of the published keys, for the discovery document.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self
            .verifiers
            .values()
            .map(|v| match v.algorithm {
                Algorithm::EdDSA => "EdDSA",
                Algorithm::RS256 => "RS256",
                _ => "ES256",
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// Why a header that does not parse is refused: naming an algorithm this service never
/// accepts (`none`, or an unknown one) is an algorithm mismatch; anything else is malformed.
fn header_rejection(token: &str) -> Rejection {
    let unsupported = token
        .split('.')
        .next()
        .and_then(|segment| URL_SAFE_NO_PAD.decode(segment).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|header| header["alg"].as_str().map(str::to_owned))
        .is_some_and(|alg| alg.parse::<Algorithm>().is_err());
    if unsupported {
        Rejection::AlgorithmMismatch
    } else {
        Rejection::Malformed
    }
}

fn decoding_key(jwk: &Value) -> anyhow::Result<DecodingKey> {
    let field = |name: &str| {
        jwk[name]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("JWK without {name}"))
    };
    Ok(match jwk["kty"].as_str() {
        Some("OKP") => DecodingKey::from_ed_components(field("x")?)?,
        Some("EC") => DecodingKey::from_ec_components(field("x")?, field("y")?)?,
        Some("RSA") => DecodingKey::from_rsa_components(field("n")?, field("e")?)?,
        other => anyhow::bail!("unsupported key type {other:?}"),
    })
}

/// The SHA-256 of a token, the key of the verified-token memory.
fn token_digest(token: &str) -> [u8; 32] {
    let mut digest = [0u8; 32];
    digest.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    digest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys;

    fn ring(algorithm: SigningAlgorithm) -> KeyRing {
        let material = keys::generate(algorithm).unwrap();
        KeyRing::new(
            vec![RingKey {
                kid: material.kid,
                algorithm,
                public_jwk: material.public_jwk,
                private_der: Some(material.private_der),
                verifies_until: None,
                revoked: false,
            }],
            "https://auth.test",
            "platform",
        )
        .unwrap()
    }

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://auth.test".into(),
            aud: "platform".into(),
            sub: Uuid::now_v7(),
            sid: Uuid::now_v7(),
            jti: Uuid::now_v7(),
            iat: now,
            nbf: now,
            exp: now + 900,
            email: "a@example.com".into(),
            username: "alice".into(),
            roles: vec!["user".into()],
            territory: None,
            verified: false,
            amr: vec!["pwd".into()],
            scope: None,
            act: None,
        }
    }

    #[test]
    fn a_delegated_token_verifies_only_as_one_and_never_for_this_services_audience() {
        let ring = ring(SigningAlgorithm::ES256);
        let now = Utc::now();
        let mut delegated = claims(now.timestamp());
        delegated.aud = "orders".into();
        delegated.act = Some(Actor {
            sub: "client".into(),
            act: Some(Box::new(Actor {
                sub: "first".into(),
                act: None,
            })),
        });
        let token = ring.sign(&delegated).unwrap();
        let plain = ring.sign(&claims(now.timestamp())).unwrap();

        assert_eq!(ring.verify(&token, now), Err(Rejection::WrongAudience));
        assert_eq!(ring.verify_delegated(&token, now), Ok(delegated));
        assert_eq!(
            ring.verify(&token, now),
            Err(Rejection::WrongAudience),
            "not remembered as verified"
        );
        assert_eq!(
            ring.verify_delegated(&plain, now),
            Err(Rejection::WrongAudience),
            "a token without act is no delegated token"
        );
        assert_eq!(
            ring.verify_delegated(&token, now + chrono::Duration::minutes(16)),
            Err(Rejection::Expired)
        );
    }

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for algorithm in [
            SigningAlgorithm::EdDSA,
            SigningAlgorithm::ES256,
            SigningAlgorithm::RS256,
        ] {
            let ring = ring(algorithm);
            let now = Utc::now();
            let token = ring.sign(&claims(now.timestamp())).unwrap();

            assert_eq!(
                ring.verify(&token, now).unwrap().username,
                "alice",
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn a_remembered_token_is_still_checked_for_time_and_a_tampered_copy_is_not_remembered() {
        let ring = ring(SigningAlgorithm::EdDSA);
        let now = Utc::now();
        let token = ring.sign(&claims(now.timestamp())).unwrap();
        let (head, signature) = token.rsplit_once('.').unwrap();
        let mut forged = claims(now.timestamp());
        forged.roles = vec!["admin".into()];
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let header = head.split('.').next().unwrap();
        let tampered = format!("{header}.{forged_payload}.{signature}");

        assert!(ring.verify(&token, now).is_ok());
        assert!(ring.verify(&token, now).is_ok(), "remembered");
        assert_eq!(
            ring.verify(&tampered, now),
            Err(Rejection::BadSignature),
            "another token with the remembered signature"
        );
        let later = now + chrono::Duration::seconds(900 + LEEWAY_SECONDS);
        assert_eq!(ring.verify(&token, later), Err(Rejection::Expired));
        let earlier = now - chrono::Duration::seconds(LEEWAY_SECONDS + 1);
        assert_eq!(ring.verify(&token, earlier), Err(Rejection::NotYetValid));
    }

    #[test]
    fn alg_none_is_an_algorithm_mismatch_and_garbage_is_malformed() {
        let ring = ring(SigningAlgorithm::EdDSA);
        let now = Utc::now();
        let signed = ring.sign(&claims(now.timestamp())).unwrap();
        let payload = signed.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);

        let unsigned = format!("{header}.{payload}.");

        assert_eq!(
            ring.verify(&unsigned, now),
            Err(Rejection::AlgorithmMismatch)
        );
        assert_eq!(ring.verify("a.b.c", now), Err(Rejection::Malformed));
    }

    #[test]
    fn a_retired_key_verifies_until_its_end_even_for_remembered_tokens() {
        let material = keys::generate(SigningAlgorithm::EdDSA).unwrap();
        let now = Utc::now();
        let end = now + chrono::Duration::minutes(5);
        let active = ring(SigningAlgorithm::EdDSA);
        let signer = KeyRing::new(
            vec![RingKey {
                kid: material.kid.clone(),
                algorithm: SigningAlgorithm::EdDSA,
                public_jwk: material.public_jwk.clone(),
                private_der: Some(material.private_der),
                verifies_until: None,
                revoked: false,
            }],
            "https://auth.test",
            "platform",
        )
        .unwrap();
        let retired = KeyRing::new(
            vec![RingKey {
                kid: material.kid,
                algorithm: SigningAlgorithm::EdDSA,
                public_jwk: material.public_jwk,
                private_der: None,
                verifies_until: Some(end),
                revoked: false,
            }],
            "https://auth.test",
            "platform",
        )
        .unwrap();
        let token = signer.sign(&claims(now.timestamp())).unwrap();
        let late = signer
            .sign(&claims((end + chrono::Duration::seconds(1)).timestamp()))
            .unwrap();

        assert!(retired.verify(&token, now).is_ok());
        assert!(!retired.can_sign() && active.can_sign());
        assert_eq!(retired.jwks(now).len(), 1);
        assert_eq!(retired.verify(&token, end), Err(Rejection::KeyRetired));
        assert_eq!(
            retired.verify(&late, end + chrono::Duration::seconds(1)),
            Err(Rejection::KeyRetired)
        );
        assert!(retired.jwks(end).is_empty());
    }

    #[test]
    fn a_clients_token_is_told_from_a_users_and_refused_where_a_user_is_required() {
        let ring = ring(SigningAlgorithm::ES256);
        let now = Utc::now();
        let user = claims(now.timestamp());
        let client = ClientClaims {
            iss: user.iss.clone(),
            aud: user.aud.clone(),
            sub: "0193f0a4-7c1e-7b52-9d1a-2f6c8e4b1a10".into(),
            client_id: "0193f0a4-7c1e-7b52-9d1a-2f6c8e4b1a10".into(),
            jti: Uuid::now_v7(),
            iat: user.iat,
            nbf: user.nbf,
            exp: user.exp,
            scope: "orders:read".into(),
            roles: vec![],
            territory: None,
        };
        let user_token = ring.sign(&user).unwrap();
        let client_token = ring.sign(&client).unwrap();

        assert_eq!(ring.verify_any(&user_token, now), Ok(Verified::User(user)));
        assert_eq!(
            ring.verify_any(&client_token, now),
            Ok(Verified::Client(client))
        );
        assert_eq!(ring.verify(&client_token, now), Err(Rejection::ClientToken));
        assert_eq!(
            ring.verify_any(&client_token, now + chrono::Duration::minutes(16)),
            Err(Rejection::Expired)
        );
    }

    #[test]
    fn times_are_checked_against_the_given_clock() {
        let ring = ring(SigningAlgorithm::EdDSA);
        let now = Utc::now();
        let token = ring.sign(&claims(now.timestamp())).unwrap();

        assert_eq!(
            ring.verify(&token, now + chrono::Duration::minutes(16)),
            Err(Rejection::Expired)
        );
        assert_eq!(
            ring.verify(&token, now - chrono::Duration::minutes(5)),
            Err(Rejection::NotYetValid)
        );
    }
}
