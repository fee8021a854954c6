//! Limiter keys as SHA-256 digests, for both stores.

use std::fmt::Write as _;

use ring::digest::{digest, SHA256};

/// SHA-256 of a limiter key. Identifiers are emails and usernames: hashed, they never appear
/// in clear in Redis (or its dumps and `MONITOR`), every key has the same short length
/// whatever a client sends, and no input can inject a `:` or other separator into a key. It
/// is pseudonymisation, not secrecy: a known email can still be hashed and looked up.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct KeyDigest([u8; 32]);

impl KeyDigest {
    pub(super) fn of(key: &str) -> Self {
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest(&SHA256, key.as_bytes()).as_ref());
        Self(bytes)
    }

    pub(super) fn hex(&self) -> String {
        self.0
            .iter()
            .fold(String::with_capacity(64), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hashed_to_fixed_length_lowercase_hex() {
        let digest = KeyDigest::of("abc");

        assert_eq!(
            digest.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
