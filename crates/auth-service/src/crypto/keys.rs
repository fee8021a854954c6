//! Signing keys: generation for EdDSA, RS256 and ES256, and their public JWK. Sealing of the
//! private half lives in `crypto::sealing`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use crate::config::SigningAlgorithm;

/// A new key pair: private DER (PKCS#8, or PKCS#1 for RSA) and the public JWK.
pub struct KeyMaterial {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub private_der: Vec<u8>,
    pub public_jwk: Value,
}

pub fn algorithm_name(algorithm: SigningAlgorithm) -> &'static str {
    match algorithm {
        SigningAlgorithm::EdDSA => "EdDSA",
        SigningAlgorithm::RS256 => "RS256",
        SigningAlgorithm::ES256 => "ES256",
    }
}

pub fn parse_algorithm(name: &str) -> Option<SigningAlgorithm> {
    match name {
        "EdDSA" => Some(SigningAlgorithm::EdDSA),
        "RS256" => Some(SigningAlgorithm::RS256),
        "ES256" => Some(SigningAlgorithm::ES256),
        _ => None,
    }
}

pub(crate) fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
    Ok(bytes)
}

/// Generates a key pair of `algorithm` with a random `kid`.
pub fn generate(algorithm: SigningAlgorithm) -> anyhow::Result<KeyMaterial> {
    let rng = SystemRandom::new();
    let kid = URL_SAFE_NO_PAD.encode(random_bytes::<12>()?);
    let alg = algorithm_name(algorithm);
    let (private_der, public_jwk) = match algorithm {
        SigningAlgorithm::EdDSA => {
            let der = Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| anyhow::anyhow!("Ed25519 generation failed"))?;
            let pair = Ed25519KeyPair::from_pkcs8(der.as_ref())
                .map_err(|_| anyhow::anyhow!("Ed25519 key rejected"))?;
            let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            (
                der.as_ref().to_vec(),
                json!({ "kty": "OKP", "crv": "Ed25519", "x": x }),
            )
        }
        SigningAlgorithm::ES256 => {
            let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| anyhow::anyhow!("P-256 generation failed"))?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref(), &rng)
                    .map_err(|_| anyhow::anyhow!("P-256 key rejected"))?;
            // An uncompressed point: 0x04, then 32 bytes of x and 32 of y.
            let point = pair.public_key().as_ref();
            let (x, y) = point
                .get(1..33)
                .zip(point.get(33..65))
                .ok_or_else(|| anyhow::anyhow!("bad P-256 point"))?;
            let jwk = json!({ "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y) });
            (der.as_ref().to_vec(), jwk)
        }
        SigningAlgorithm::RS256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            use rsa::traits::PublicKeyParts;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
            let der = key.to_pkcs1_der()?.as_bytes().to_vec();
            let jwk = json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
            });
            (der, jwk)
        }
    };
    let mut public_jwk = public_jwk;
    if let Value::Object(fields) = &mut public_jwk {
        fields.insert("kid".into(), json!(kid));
        fields.insert("alg".into(), json!(alg));
        fields.insert("use".into(), json!("sig"));
    }
    Ok(KeyMaterial {
        kid,
        algorithm,
        private_der,
        public_jwk,
    })
}
