//! SQLite: token introspection and revocation — every method is in `shared/revocations.rs`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::*;
use super::rows::{commit, Run};
use super::SqliteStore;
use crate::domain::token::{RefreshTokenState, RevokedToken};
use crate::store::contract::RevocationStore;
use crate::store::effects::Effects;
use crate::store::error::StoreResult;
use crate::store::shared::revocations::{revocation_store, RefreshTokenRow};

revocation_store! {
    impl RevocationStore for SqliteStore {}
}
