//! The API key format (SPEC §11, docs/security.md "API keys"): `ask_<random>_<checksum>`,
//! where `random` is 32 base62 characters from the OS random source (≥ 190 bits) and
//! `checksum` the CRC-32 (IEEE) of those 32 ASCII characters, in base62, left-padded with `0`
//! to 6 characters. A secret scanner recognises a key offline from the checksum; this service
//! refuses a malformed key or a bad checksum before it asks the database.

use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;

use super::tokens::hash_token;

/// What every key starts with.
pub const KEY_PREFIX: &str = "ask_";
/// Random characters in a key.
const RANDOM_CHARS: usize = 32;
/// Characters of the checksum.
const CHECKSUM_CHARS: usize = 6;
/// Random characters shown in a key's display prefix.
const SHOWN_CHARS: usize = 8;
/// The whole length: `ask_` + 32 + `_` + 6.
pub const KEY_LENGTH: usize = KEY_PREFIX.len() + RANDOM_CHARS + 1 + CHECKSUM_CHARS;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new key: the key goes to its owner once, the hash and the prefix to the database.
pub struct NewKey {
    pub key: SecretString,
    pub hash: Vec<u8>,
    pub prefix: String,
}

/// A fresh key from the OS random source. Bytes ≥ 248 (= 4 × 62) are drawn again, so each
/// character is uniform over the 62.
pub fn generate() -> anyhow::Result<NewKey> {
    let random = SystemRandom::new();
    let mut chars = String::with_capacity(RANDOM_CHARS);
    let mut pool = [0u8; 64];
    while chars.len() < RANDOM_CHARS {
        random
            .fill(&mut pool)
            .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
        for byte in pool.iter().filter(|byte| **byte < 248) {
            if chars.len() == RANDOM_CHARS {
                break;
            }
            chars.push(char::from(BASE62[usize::from(*byte % 62)]));
        }
    }
    let key = format!("{KEY_PREFIX}{chars}_{}", checksum(&chars));
    Ok(NewKey {
        hash: hash_token(&key),
        prefix: format!("{KEY_PREFIX}{}", &chars[..SHOWN_CHARS]),
        key: SecretString::from(key),
    })
}

/// Whether `token` is meant as an API key (it says so by its prefix), valid or not: such a
/// bearer is judged as a key and never as a JWT.
pub fn looks_like_key(token: &str) -> bool {
    token.starts_with(KEY_PREFIX)
}

/// The SHA-256 the database keeps of a well-formed key with a good checksum; `None` for
/// anything else, which is refused without a lookup.
pub fn stored_hash(token: &str) -> Option<Vec<u8>> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    if token.len() != KEY_LENGTH {
        return None;
    }
    let (random, sum) = rest.split_once('_')?;
    let base62 = |text: &str| text.bytes().all(|b| b.is_ascii_alphanumeric());
    if random.len() != RANDOM_CHARS || !base62(random) || !base62(sum) {
        return None;
    }
    (checksum(random) == sum).then(|| hash_token(token))
}

/// The CRC-32 of `random`, in base62, 6 characters.
fn checksum(random: &str) -> String {
    let mut value = u64::from(crc32fast::hash(random.as_bytes()));
    let mut digits = [b'0'; CHECKSUM_CHARS];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|b| char::from(*b)).collect()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_key_has_its_shape_its_checksum_and_is_stored_as_its_hash() {
        let new = generate().unwrap();
        let key = new.key.expose_secret();

        assert_eq!(key.len(), KEY_LENGTH);
        assert!(key.starts_with("ask_") && new.prefix.len() == 12);
        assert!(key.starts_with(&new.prefix));
        assert_eq!(stored_hash(key), Some(new.hash.clone()));
        assert_eq!(new.hash, hash_token(key));
    }

    #[test]
    fn a_changed_character_or_a_wrong_shape_is_refused() {
        let new = generate().unwrap();
        let key = new.key.expose_secret();
        let mut tampered = key.to_owned().into_bytes();
        tampered[10] = if tampered[10] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(tampered).unwrap();

        assert_eq!(stored_hash(&tampered), None);
        assert_eq!(stored_hash(&key[..key.len() - 1]), None);
        assert_eq!(stored_hash(&format!("{key}0")), None);
        assert_eq!(stored_hash(&key.replace("ask_", "asq_")), None);
        assert_eq!(stored_hash("ask_"), None);
    }

    #[test]
    fn the_checksum_is_the_documented_crc32_in_base62() {
        // docs/security.md's worked example.
        let random = "0123456789abcdefghijABCDEFGHIJxy";
        assert_eq!(crc32fast::hash(random.as_bytes()), 0x1649_0ba7);
        assert_eq!(checksum(random), "0PImn9");
        assert_eq!(checksum("").as_str(), "000000");
    }
}
