//! SQLite: passkeys — every method is in `shared/passkeys.rs`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::*;
use super::rows::{commit, commit_found, Run};
use super::SqliteStore;
use crate::store::contract::PasskeyStore;
use crate::store::effects::Effects;
use crate::store::error::StoreResult;
use crate::store::records::{Ceremony, NewPasskey, PasskeyRemoval, StoredPasskey, TakenCeremony};
use crate::store::shared::passkeys::{passkey_store, CeremonyRow, PasskeyRow, PASSKEY_COLUMNS};

passkey_store! {
    impl PasskeyStore for SqliteStore {}
}
