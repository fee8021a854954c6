//! SQLite: single-use tokens and the password and verification changes they unlock — every
//! method is in `shared/accounts.rs`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::*;
use super::rows::{commit, credentials_by_id, end_user_sessions, void_links, Run};
use super::SqliteStore;
use crate::domain::user::Credentials;
use crate::domain::{EndReason, User};
use crate::store::contract::AccountStore;
use crate::store::effects::{Effects, EffectsOf};
use crate::store::error::StoreResult;
use crate::store::records::{NewOneTimeToken, TokenPurpose};
use crate::store::shared::accounts::account_store;

account_store! {
    impl AccountStore for SqliteStore {}
}
