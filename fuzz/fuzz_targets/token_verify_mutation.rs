//! Mutations of a real signed token for `token_verify`: header `alg`, `kid` and other fields,
//! claims, signature, and the framing of the three segments.

use arbitrary::Arbitrary;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

/// A real token to start from, and the `kid` of the key that signed it.
pub struct Real<'a> {
    pub token: &'a str,
    pub kid: &'a str,
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
pub struct Mutation {
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

pub fn mutate(real: &[Real<'_>], mutation: Mutation) -> String {
    let signed = pick(real, mutation.token);
    let mut parts = signed.token.split('.');
    let (header, payload, signature) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let header = match mutation.header_of {
        Some(other) => pick(real, other)
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
                object.insert("kid".into(), json!(pick(real, *index).kid));
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
        Signature::OfToken(index) => pick(real, index)
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
    token
}
