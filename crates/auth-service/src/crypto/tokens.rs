//! Opaque tokens (refresh, reset, verification): 256 random bits, only the SHA-256 stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// A freshly made token: the plaintext goes to the client, the hash to the database.
pub struct OpaqueToken {
    pub plaintext: SecretString,
    pub hash: Vec<u8>,
}

/// 32 random bytes, base64url without padding.
pub fn random_token() -> anyhow::Result<OpaqueToken> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
    let plaintext = URL_SAFE_NO_PAD.encode(bytes);
    Ok(OpaqueToken {
        hash: hash_token(&plaintext),
        plaintext: SecretString::from(plaintext),
    })
}

/// What the database keeps of a token.
pub fn hash_token(plaintext: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, plaintext.as_bytes())
        .as_ref()
        .to_vec()
}

/// The S256 code challenge of a PKCE verifier (RFC 7636 §4.2): BASE64URL(SHA-256(verifier)).
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref())
}

/// The successor of a refresh token: HMAC-SHA256 keyed with the spent token over the
/// successor's id. Only a holder of the spent token can compute it, so a retry inside the
/// grace window gets the same successor while the database keeps hashes only (SPEC §3).
pub fn successor_token(spent: &SecretString, successor_id: Uuid) -> OpaqueToken {
    let key = hmac::Key::new(hmac::HMAC_SHA256, spent.expose_secret().as_bytes());
    let tag = hmac::sign(&key, successor_id.as_bytes());
    let plaintext = URL_SAFE_NO_PAD.encode(tag.as_ref());
    OpaqueToken {
        hash: hash_token(&plaintext),
        plaintext: SecretString::from(plaintext),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_stored_as_their_hash() {
        let token = random_token().unwrap();

        assert_eq!(token.plaintext.expose_secret().len(), 43);
        assert_eq!(token.hash, hash_token(token.plaintext.expose_secret()));
        assert_eq!(token.hash.len(), 32);
    }

    #[test]
    fn the_successor_is_the_same_for_the_same_spent_token_only() {
        let spent = random_token().unwrap().plaintext;
        let other = random_token().unwrap().plaintext;
        let id = Uuid::now_v7();

        let first = successor_token(&spent, id);
        let again = successor_token(&spent, id);
        let forged = successor_token(&other, id);

        assert_eq!(first.hash, again.hash);
        assert_ne!(first.hash, forged.hash);
    }

    #[test]
    fn the_s256_challenge_is_the_base64url_sha256_of_the_verifier() {
        // As `openssl dgst -sha256 -binary | basenc --base64url` computes it (no padding).
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mJ92K27uTtpZhcYtMMMbKLnY1EWjBk"),
            "jrE20qC5HXMRPt1bb2cEvFWAyfLKu7_dFswEjJxZSs4"
        );
    }
}
