//! Sealing of private signing keys at rest (SPEC §3) with ChaCha20-Poly1305, and the key file
//! that holds the sealing key when it is not configured directly.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use super::keys::random_bytes;

/// Seals and opens private keys; `kid` is bound as associated data so a sealed key cannot be
/// swapped onto another row.
pub struct Sealer {
    key: LessSafeKey,
    /// Where the key came from, for messages: `auth.key_encryption_key` or the key file.
    source: String,
}

impl Sealer {
    /// From 32 bytes in base64 (standard or URL-safe), read from `source`.
    pub fn from_base64(encoded: &str, source: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim()))
            .map_err(|_| anyhow::anyhow!("{source}: not base64"))?;
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| anyhow::anyhow!("{source}: must be 32 bytes"))?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            source: source.to_owned(),
        })
    }

    /// Where the key came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `nonce || ciphertext || tag`.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(kid.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| anyhow::anyhow!("sealing the signing key failed"))?;
        Ok([nonce_bytes.as_slice(), &buffer].concat())
    }

    pub fn open(&self, kid: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        let refused = || {
            anyhow::anyhow!(
                "signing key {kid} was sealed with another key than {}: configure the key that \
                 sealed it (auth.key_encryption_key or auth.key_file)",
                self.source
            )
        };
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN).ok_or_else(refused)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer)
            .map_err(|_| refused())?;
        Ok(plain.to_vec())
    }
}

/// The sealing key in the file at `path`; `None` when there is no such file.
pub fn read_key_file(path: &Path) -> anyhow::Result<Option<Sealer>> {
    let source = format!("the key file {}", path.display());
    match std::fs::read_to_string(path) {
        Ok(text) => Sealer::from_base64(&text, &source).map(Some),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => anyhow::bail!("cannot read {source}: {error}"),
    }
}

/// Creates the key file at `path` with a random key, readable by its owner only. Atomic: the
/// file appears complete or not at all, and when another process created it first, its key
/// is the one returned (two starts never seal with different keys).
pub fn create_key_file(path: &Path) -> anyhow::Result<Sealer> {
    let encoded = format!("{}\n", STANDARD.encode(random_bytes::<32>()?));
    let draft = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("key"),
        URL_SAFE_NO_PAD.encode(random_bytes::<6>()?)
    ));
    let cannot = |error: std::io::Error| {
        anyhow::anyhow!("cannot create the key file {}: {error}", path.display())
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&draft).and_then(|mut file| {
        file.write_all(encoded.as_bytes())?;
        file.sync_all()
    });
    // A hard link never replaces an existing file, unlike a rename.
    let linked = written.and_then(|()| std::fs::hard_link(&draft, path));
    let _ = std::fs::remove_file(&draft);
    match linked {
        Ok(()) => Sealer::from_base64(&encoded, &format!("the key file {}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path)?
            .ok_or_else(|| anyhow::anyhow!("the key file {} vanished", path.display())),
        Err(error) => Err(cannot(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_key_and_kid() {
        let sealer = Sealer::from_base64(&STANDARD.encode([7u8; 32]), "one").unwrap();
        let other = Sealer::from_base64(&STANDARD.encode([8u8; 32]), "other").unwrap();

        let sealed = sealer.seal("kid-1", b"private").unwrap();

        assert_eq!(sealer.open("kid-1", &sealed).unwrap(), b"private");
        assert!(sealer.open("kid-2", &sealed).is_err());
        let refused = other.open("kid-1", &sealed).unwrap_err().to_string();
        assert!(
            refused.contains("sealed with another key than other"),
            "{refused}"
        );
    }

    #[test]
    fn a_sealing_key_must_be_32_bytes() {
        let refused = Sealer::from_base64(&STANDARD.encode([1u8; 16]), "auth.key_encryption_key");

        assert!(refused.is_err());
    }

    #[test]
    fn a_key_file_is_created_once_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.key");

        assert!(read_key_file(&path).unwrap().is_none());
        let created = create_key_file(&path).unwrap();
        let sealed = created.seal("kid", b"private").unwrap();
        let again = create_key_file(&path).unwrap();
        let read = read_key_file(&path).unwrap().unwrap();

        assert_eq!(again.open("kid", &sealed).unwrap(), b"private");
        assert_eq!(read.open("kid", &sealed).unwrap(), b"private");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no drafts left"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
