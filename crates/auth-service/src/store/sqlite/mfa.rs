//! SQLite: second factors — every method is in `shared/mfa.rs`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::*;
use super::rows::{commit, commit_found, Run};
use super::SqliteStore;
use crate::store::contract::MfaStore;
use crate::store::effects::{Effects, EffectsOf};
use crate::store::error::StoreResult;
use crate::store::records::{NewMfaChallenge, TotpFactor};
use crate::store::shared::mfa::{mfa_store, TotpRow};

mfa_store! {
    impl MfaStore for SqliteStore {}
}
