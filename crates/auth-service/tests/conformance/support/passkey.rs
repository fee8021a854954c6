//! A software passkey for the tests (SPEC §10): a discoverable ES256 credential with user
//! verification, attestation `none`, answering the service's options the way a browser and
//! an authenticator do together (clientDataJSON, authenticator data, signature), with knobs
//! for what a test wants to go wrong: another origin or relying party, a counter set back.
//!
//! Written here rather than taken from a crate: `webauthn-authenticator-rs`'s soft passkey
//! and soft token refuse resident keys and send no user handle, so they cannot do a
//! usernameless login; a hand-made one also lets a test lie where a real client would not.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};

/// The origin of the pages in the tests: `server.public_url`'s, the default relying party's.
pub const ORIGIN: &str = "http://localhost:8080";

/// User present, user verified, attested credential data, backup eligible, backed up.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// One credential, as its authenticator keeps it. `Clone` is a cloned authenticator.
#[derive(Clone)]
pub struct SoftPasskey {
    pub credential_id: Vec<u8>,
    pkcs8: Vec<u8>,
    /// The user handle (base64url) the registration stored with the credential.
    pub user_handle: String,
    pub rp_id: String,
    pub counter: u32,
    /// Reports itself backed up (a synced passkey).
    pub synced: bool,
}

/// What the client and authenticator put in a response, for tests that lie.
pub struct Claim<'a> {
    pub origin: &'a str,
    /// The relying party the authenticator signs for; `None`: the options'.
    pub rp_id: Option<&'a str>,
    /// The challenge answered; `None`: the options'.
    pub challenge: Option<&'a str>,
}

impl Default for Claim<'_> {
    fn default() -> Self {
        Self {
            origin: ORIGIN,
            rp_id: None,
            challenge: None,
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    digest(&SHA256, bytes).as_ref().to_vec()
}

/// CBOR (RFC 8949) head of a major type with its argument.
fn head(major: u8, value: u64) -> Vec<u8> {
    let major = major << 5;
    match value {
        0..=23 => vec![major | value as u8],
        24..=0xff => vec![major | 24, value as u8],
        0x100..=0xffff => [vec![major | 25], (value as u16).to_be_bytes().to_vec()].concat(),
        _ => [vec![major | 26], (value as u32).to_be_bytes().to_vec()].concat(),
    }
}

fn int(value: i64) -> Vec<u8> {
    if value >= 0 {
        head(0, value as u64)
    } else {
        head(1, (-1 - value) as u64)
    }
}

fn bytes(value: &[u8]) -> Vec<u8> {
    [head(2, value.len() as u64), value.to_vec()].concat()
}

fn text(value: &str) -> Vec<u8> {
    [head(3, value.len() as u64), value.as_bytes().to_vec()].concat()
}

fn client_data(kind: &str, options: &Value, claim: &Claim<'_>) -> Vec<u8> {
    let challenge = claim
        .challenge
        .unwrap_or_else(|| options["publicKey"]["challenge"].as_str().unwrap());
    serde_json::to_vec(&json!({
        "type": kind,
        "challenge": challenge,
        "origin": claim.origin,
        "crossOrigin": false,
    }))
    .unwrap()
}

impl SoftPasskey {
    /// Creates a credential for the options of `register/options` (their `options`), and
    /// the `PublicKeyCredential` JSON a browser sends back.
    pub fn register(options: &Value) -> (Self, Value) {
        Self::register_as(options, &Claim::default(), false)
    }

    pub fn register_as(options: &Value, claim: &Claim<'_>, synced: bool) -> (Self, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .unwrap()
            .as_ref()
            .to_vec();
        let mut credential_id = vec![0u8; 32];
        rng.fill(&mut credential_id).unwrap();
        let public = options["publicKey"].clone();
        let rp_id = claim
            .rp_id
            .unwrap_or_else(|| public["rp"]["id"].as_str().unwrap())
            .to_owned();
        let key = Self {
            credential_id,
            pkcs8,
            user_handle: public["user"]["id"].as_str().unwrap().to_owned(),
            rp_id,
            counter: 0,
            synced,
        };
        let pair = key.pair();
        let point = pair.public_key().as_ref();
        let cose = [
            head(5, 5),
            int(1),
            int(2),
            int(3),
            int(-7),
            int(-1),
            int(1),
            int(-2),
            bytes(&point[1..33]),
            int(-3),
            bytes(&point[33..65]),
        ]
        .concat();
        let auth_data = [
            sha256(key.rp_id.as_bytes()),
            vec![key.flags() | AT],
            key.counter.to_be_bytes().to_vec(),
            vec![0u8; 16],
            (key.credential_id.len() as u16).to_be_bytes().to_vec(),
            key.credential_id.clone(),
            cose,
        ]
        .concat();
        let attestation = [
            head(5, 3),
            text("fmt"),
            text("none"),
            text("attStmt"),
            head(5, 0),
            text("authData"),
            bytes(&auth_data),
        ]
        .concat();
        let client_data = client_data("webauthn.create", options, claim);
        let id = b64(&key.credential_id);
        let credential = json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(&client_data),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        });
        (key, credential)
    }

    /// Answers the options of `login/options` or `mfa/passkey/options`: the counter goes up
    /// by one, as a real authenticator's does.
    pub fn assert(&mut self, options: &Value) -> Value {
        self.assert_as(options, &Claim::default())
    }

    pub fn assert_as(&mut self, options: &Value, claim: &Claim<'_>) -> Value {
        self.counter += 1;
        let rp_id = claim.rp_id.unwrap_or(&self.rp_id);
        let auth_data = [
            sha256(rp_id.as_bytes()),
            vec![self.flags()],
            self.counter.to_be_bytes().to_vec(),
        ]
        .concat();
        let client_data = client_data("webauthn.get", options, claim);
        let signed = [auth_data.clone(), sha256(&client_data)].concat();
        let signature = self
            .pair()
            .sign(&SystemRandom::new(), &signed)
            .unwrap()
            .as_ref()
            .to_vec();
        let id = b64(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(&signature),
                "userHandle": self.user_handle,
            },
            "clientExtensionResults": {},
        })
    }

    fn flags(&self) -> u8 {
        UP | UV | if self.synced { BE | BS } else { 0 }
    }

    fn pair(&self) -> EcdsaKeyPair {
        EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &self.pkcs8,
            &SystemRandom::new(),
        )
        .unwrap()
    }
}
