//! Access-token verification (`KeyRing::verify`, `KeyRing::kid_of`) against arbitrary input.
//!
//! The ring holds an EdDSA, an ES256 and an RS256 key, generated when the fuzzer starts, and a
//! second EdDSA key retired long enough ago that it verifies nothing; one real token is signed
//! by each. The first input byte picks the mode:
//! - even: the rest of the input, as a string, is a token. It must never panic and never verify
//!   (the keys are fresh in every process, so no stored input can carry a valid signature).
//! - odd: the rest is decoded with `arbitrary` into mutations of a real signed token (header
//!   `alg`/`kid`/`typ`, claims, signature, segments). Whatever verifies must carry exactly the
//!   signed header and payload and the signed claims, and must not come from the retired key.
#![no_main]

mod token_verify_mutation;

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use auth_service::config::SigningAlgorithm;
use auth_service::crypto::jwt::{AccessClaims, KeyRing, Rejection, RingKey};
use auth_service::crypto::keys;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use token_verify_mutation::{mutate, Mutation, Real};

const ISSUER: &str = "https://auth.fuzz";
const AUDIENCE: &str = "platform";
/// A fixed "now" (2026-01-01T00:00:00Z), so that a crash reproduces on a later day.
const NOW: i64 = 1_767_225_600;

struct Signed {
    token: String,
    kid: String,
    claims: AccessClaims,
    /// Signed by a key retired longer ago than its tokens live: must never verify.
    retired: bool,
}

struct Fixture {
    /// Verifies with every key; signs with none.
    ring: KeyRing,
    tokens: Vec<Signed>,
    now: DateTime<Utc>,
}

fn claims(index: u8) -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: uuid(index, 1),
        sid: uuid(index, 2),
        jti: uuid(index, 3),
        iat: NOW,
        nbf: NOW,
        exp: NOW + 900,
        email: "alice@example.com".into(),
        username: "alice".into(),
        roles: vec!["user".into()],
        territory: (index == 1).then(|| "dk".into()),
        verified: index == 2,
        amr: vec!["pwd".into()],
        scope: None,
        act: None,
    }
}

fn uuid(index: u8, field: u8) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    bytes[0] = index;
    bytes[1] = field;
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    uuid::Uuid::from_bytes(bytes)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut public = Vec::new();
        let mut tokens = Vec::new();
        let retired_until = DateTime::from_timestamp(NOW, 0).expect("a valid time");
        for (index, (algorithm, retired)) in [
            (SigningAlgorithm::EdDSA, false),
            (SigningAlgorithm::ES256, false),
            (SigningAlgorithm::RS256, false),
            (SigningAlgorithm::EdDSA, true),
        ]
        .into_iter()
        .enumerate()
        {
            let material = keys::generate(algorithm).expect("key generation");
            let signer = KeyRing::new(
                vec![RingKey {
                    kid: material.kid.clone(),
                    algorithm,
                    public_jwk: material.public_jwk.clone(),
                    private_der: Some(material.private_der),
                    verifies_until: None,
                    revoked: false,
                }],
                ISSUER,
                AUDIENCE,
            )
            .expect("signing ring");
            let claims = claims(index as u8);
            tokens.push(Signed {
                token: signer.sign(&claims).expect("signing"),
                kid: material.kid.clone(),
                claims,
                retired,
            });
            public.push(RingKey {
                kid: material.kid,
                algorithm,
                public_jwk: material.public_jwk,
                private_der: None,
                verifies_until: retired.then_some(retired_until),
                revoked: false,
            });
        }
        let ring = KeyRing::new(public, ISSUER, AUDIENCE).expect("verifying ring");
        let now = DateTime::from_timestamp(NOW + 1, 0).expect("a valid time");
        for signed in &tokens {
            let verified = ring.verify(&signed.token, now);
            if signed.retired {
                assert_eq!(
                    verified,
                    Err(Rejection::KeyRetired),
                    "a retired key's token"
                );
            } else {
                assert_eq!(
                    verified.as_ref(),
                    Ok(&signed.claims),
                    "a real token verifies"
                );
            }
        }
        Fixture { ring, tokens, now }
    })
}

/// The part of a token a signature covers.
fn signing_input(token: &str) -> Option<&str> {
    token.rsplit_once('.').map(|(input, _)| input)
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let token = String::from_utf8_lossy(rest);
        let _ = KeyRing::kid_of(&token);
        let outcome = fixture.ring.verify(&token, fixture.now);
        assert!(
            outcome.is_err(),
            "an arbitrary string verified: {token:?} → {outcome:?}"
        );
        return;
    }
    let Ok(mutation) = Mutation::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let real: Vec<Real<'_>> = fixture
        .tokens
        .iter()
        .map(|signed| Real {
            token: &signed.token,
            kid: &signed.kid,
        })
        .collect();
    let token = mutate(&real, mutation);
    let _ = KeyRing::kid_of(&token);
    if let Ok(claims) = fixture.ring.verify(&token, fixture.now) {
        let original = fixture
            .tokens
            .iter()
            .find(|signed| signing_input(&signed.token) == signing_input(&token));
        match original {
            Some(signed) => {
                assert!(!signed.retired, "a retired key's token verified: {token}");
                assert_eq!(claims, signed.claims, "accepted claims changed: {token}");
            }
            None => {
                panic!("a token with a changed header or payload verified: {token} → {claims:?}")
            }
        }
    }
});
