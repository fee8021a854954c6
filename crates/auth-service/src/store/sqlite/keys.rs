//! SQLite: signing keys — all but `generated_key_file` is in `shared/keys.rs`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use sqlx::ConnectOptions;

use super::dialect::*;
use super::rows::Run;
use super::SqliteStore;
use crate::store::contract::KeyStore;
use crate::store::error::StoreResult;
use crate::store::records::StoredKey;
use crate::store::shared::keys::{key_store, WIPED};
use crate::store::shared::rows::KeyRow;

key_store! {
    impl KeyStore for SqliteStore {
        /// SQLite: beside the database file (`auth.db` → `auth.key`), so the key lives and is
        /// backed up with the database's directory but not inside the database.
        fn generated_key_file(&self) -> Option<PathBuf> {
            let options = self.pool.connect_options();
            let in_memory = options
                .to_url_lossy()
                .query_pairs()
                .any(|(name, value)| name == "mode" && value == "memory");
            let database = options.get_filename();
            if in_memory || database.as_os_str().is_empty() {
                return None;
            }
            let key_file = database.with_extension("key");
            (key_file != database).then_some(key_file)
        }
    }
}
