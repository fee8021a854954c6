//! Which key seals the private signing keys (SPEC §3: always sealed): the configured
//! key-encryption key, a named key file, or a key file generated beside the embedded database.

use crate::config::{Config, KeySource};
use crate::crypto::sealing::{self, Sealer};
use crate::store::{Store, StoredKey};

/// The sealer the configuration names for `store`, generating the key file beside an
/// embedded database on its first start.
pub async fn sealer(config: &Config, store: &dyn Store) -> anyhow::Result<Sealer> {
    let stored = store.signing_keys().await?;
    resolve(config, store, &stored)
}

pub(super) fn resolve(
    config: &Config,
    store: &dyn Store,
    stored: &[StoredKey],
) -> anyhow::Result<Sealer> {
    match config.auth.key_source(&config.database)? {
        KeySource::Configured(key) => Sealer::from_base64(key.expose(), "auth.key_encryption_key"),
        KeySource::File(path) => sealing::read_key_file(path)?.ok_or_else(|| {
            anyhow::anyhow!(
                "auth.key_file: {} does not exist (create it with `openssl rand -base64 32`)",
                path.display()
            )
        }),
        KeySource::Generated => {
            let Some(path) = store.generated_key_file() else {
                anyhow::bail!(
                    "auth.key_encryption_key: this database keeps no key file: set \
                     APP__AUTH__KEY_ENCRYPTION_KEY or APP__AUTH__KEY_FILE"
                );
            };
            if let Some(sealer) = sealing::read_key_file(&path)? {
                return Ok(sealer);
            }
            // A new key could not open keys sealed before: the file was lost, not never made.
            if stored
                .iter()
                .any(|key| key.sealed && key.has_private_half())
            {
                anyhow::bail!(
                    "the signing keys in the database are sealed, but the key file {} is \
                     missing: restore it from the backup of the database, or name the key \
                     that sealed them in auth.key_file or auth.key_encryption_key",
                    path.display()
                );
            }
            let sealer = sealing::create_key_file(&path)?;
            tracing::info!(path = %path.display(), "generated the key file that seals the signing keys");
            Ok(sealer)
        }
    }
}

/// Fails when a stored private half was sealed with another key: starting would leave this
/// replica unable to sign, or sealing new keys with a key the others do not have.
pub(super) fn check_opens(sealer: &Sealer, stored: &[StoredKey]) -> anyhow::Result<()> {
    for key in stored {
        if key.sealed && key.has_private_half() && key.revoked_at.is_none() {
            sealer.open(&key.kid, &key.private_key)?;
        }
    }
    Ok(())
}
