//! PostgreSQL: signing keys — all but `generated_key_file` is in `shared/keys.rs`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::dialect::*;
use super::rows::Run;
use super::PgStore;
use crate::store::contract::KeyStore;
use crate::store::error::StoreResult;
use crate::store::records::StoredKey;
use crate::store::shared::keys::{key_store, WIPED};
use crate::store::shared::rows::KeyRow;

key_store! {
    impl KeyStore for PgStore {
        /// PostgreSQL: replicas on other machines could not share a generated file.
        fn generated_key_file(&self) -> Option<PathBuf> {
            None
        }
    }
}
