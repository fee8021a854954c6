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

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use auth_service::config::SigningAlgorithm;
use auth_service::crypto::jwt::{AccessClaims, KeyRing, Rejection, RingKey};
use auth_service::crypto::keys;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

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

/// A JSON value the mutations put into headers and claims.
#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Strings(Vec<String>),
    Object(Vec<(String, String)>),
}

impl Json {
    fn value(self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => json!(b),
            Json::Int(i) => json!(i),
            Json::Float(f) => json!(f),
            Json::Text(s) => json!(s),
            Json::Strings(v) => json!(v),
            Json::Object(pairs) => Value::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Alg {
    Keep,
    Named(u8),
    Other(String),
    Absent,
}

const ALGS: &[&str] = &[
    "EdDSA", "ES256", "RS256", "HS256", "HS384", "HS512", "none", "None", "NONE", "ES384", "PS256",
    "RS512", "eddsa",
];

#[derive(Arbitrary, Debug)]
enum Kid {
    Keep,
    /// The kid of another real key.
    OfKey(u8),
    Other(String),
    Absent,
}

#[derive(Arbitrary, Debug)]
enum Signature {
    Keep,
    /// The signature of another real token.
    OfToken(u8),
    FlipBit(u16),
    Truncate(u16),
    Append(Vec<u8>),
    Empty,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Segment {
    /// The segment as signed.
    Keep,
    /// The decoded JSON re-encoded (another serialisation of the same object).
    Reencode,
    /// Fields changed or added.
    Edit(Vec<(String, Json)>),
    /// Arbitrary bytes, base64url-encoded.
    Bytes(Vec<u8>),
    /// Standard base64 with padding instead of base64url.
    StandardAlphabet,
}

#[derive(Arbitrary, Debug)]
enum Framing {
    Keep,
    ExtraSegment(String),
    DropSignatureSegment,
    Whitespace(u8),
    Prefix(String),
    Suffix(String),
}

#[derive(Arbitrary, Debug)]
struct Mutation {
    token: u8,
    /// Use the header of another real token (its alg and kid with this payload).
    header_of: Option<u8>,
    alg: Alg,
    kid: Kid,
    header: Segment,
    claims: Segment,
    claim_edits: Vec<(ClaimName, Json)>,
    signature: Signature,
    framing: Framing,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ClaimName {
    Iss,
    Aud,
    Sub,
    Sid,
    Jti,
    Iat,
    Nbf,
    Exp,
    Email,
    Username,
    Roles,
    Territory,
    Verified,
    Extra,
}

impl ClaimName {
    fn key(self) -> &'static str {
        match self {
            ClaimName::Iss => "iss",
            ClaimName::Aud => "aud",
            ClaimName::Sub => "sub",
            ClaimName::Sid => "sid",
            ClaimName::Jti => "jti",
            ClaimName::Iat => "iat",
            ClaimName::Nbf => "nbf",
            ClaimName::Exp => "exp",
            ClaimName::Email => "email",
            ClaimName::Username => "username",
            ClaimName::Roles => "roles",
            ClaimName::Territory => "territory",
            ClaimName::Verified => "verified",
            ClaimName::Extra => "extra",
        }
    }
}

fn decode_object(segment: &str) -> serde_json::Map<String, Value> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|value| value.as_object().cloned())
        .unwrap_or_default()
}

fn encode(object: &serde_json::Map<String, Value>) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(object).unwrap_or_default())
}

fn apply(
    segment: Segment,
    original: &str,
    mut edit: impl FnMut(&mut serde_json::Map<String, Value>),
) -> String {
    let mut object = decode_object(original);
    match segment {
        Segment::Keep => {
            let before = object.clone();
            edit(&mut object);
            if object == before {
                original.to_owned()
            } else {
                encode(&object)
            }
        }
        Segment::Reencode => {
            edit(&mut object);
            encode(&object)
        }
        Segment::Edit(fields) => {
            edit(&mut object);
            for (name, value) in fields {
                object.insert(name, value.value());
            }
            encode(&object)
        }
        Segment::Bytes(bytes) => URL_SAFE_NO_PAD.encode(bytes),
        Segment::StandardAlphabet => {
            edit(&mut object);
            STANDARD.encode(serde_json::to_vec(&object).unwrap_or_default())
        }
    }
}

fn pick<T>(items: &[T], index: u8) -> &T {
    &items[usize::from(index) % items.len()]
}

fn mutate(fixture: &Fixture, mutation: Mutation) -> (String, &Signed) {
    let signed = pick(&fixture.tokens, mutation.token);
    let mut parts = signed.token.split('.');
    let (header, payload, signature) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let header = match mutation.header_of {
        Some(other) => pick(&fixture.tokens, other)
            .token
            .split('.')
            .next()
            .unwrap_or_default(),
        None => header,
    };
    let alg = mutation.alg;
    let kid = mutation.kid;
    let header = apply(mutation.header, header, |object| {
        match &alg {
            Alg::Keep => {}
            Alg::Named(index) => {
                object.insert("alg".into(), json!(pick(ALGS, *index)));
            }
            Alg::Other(name) => {
                object.insert("alg".into(), json!(name));
            }
            Alg::Absent => {
                object.remove("alg");
            }
        }
        match &kid {
            Kid::Keep => {}
            Kid::OfKey(index) => {
                object.insert("kid".into(), json!(pick(&fixture.tokens, *index).kid));
            }
            Kid::Other(name) => {
                object.insert("kid".into(), json!(name));
            }
            Kid::Absent => {
                object.remove("kid");
            }
        }
    });
    let mut edits = mutation.claim_edits;
    let payload = apply(mutation.claims, payload, |object| {
        for (name, value) in edits.drain(..) {
            object.insert(name.key().into(), value.value());
        }
    });
    let signature = match mutation.signature {
        Signature::Keep => signature.to_owned(),
        Signature::OfToken(index) => pick(&fixture.tokens, index)
            .token
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned(),
        Signature::FlipBit(bit) => {
            let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
            if !bytes.is_empty() {
                let bit = usize::from(bit) % (bytes.len() * 8);
                bytes[bit / 8] ^= 1 << (bit % 8);
            }
            URL_SAFE_NO_PAD.encode(bytes)
        }
        Signature::Truncate(length) => signature
            .get(..usize::from(length).min(signature.len()))
            .unwrap_or_default()
            .to_owned(),
        Signature::Append(bytes) => {
            let mut raw = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
            raw.extend(bytes);
            URL_SAFE_NO_PAD.encode(raw)
        }
        Signature::Empty => String::new(),
        Signature::Raw(raw) => raw,
    };
    let token = format!("{header}.{payload}.{signature}");
    let token = match mutation.framing {
        Framing::Keep => token,
        Framing::ExtraSegment(extra) => format!("{token}.{extra}"),
        Framing::DropSignatureSegment => format!("{header}.{payload}"),
        Framing::Whitespace(at) => {
            let mut token = token;
            let at = usize::from(at) % (token.len() + 1);
            if token.is_char_boundary(at) {
                token.insert(at, ' ');
            }
            token
        }
        Framing::Prefix(prefix) => format!("{prefix}{token}"),
        Framing::Suffix(suffix) => format!("{token}{suffix}"),
    };
    (token, signed)
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
    let (token, _) = mutate(fixture, mutation);
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
