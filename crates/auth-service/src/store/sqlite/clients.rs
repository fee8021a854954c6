//! SQLite: OAuth 2 clients — every method is in `shared/clients.rs`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::*;
use super::rows::{commit, commit_found, Run};
use super::SqliteStore;
use crate::domain::client::{Client, ClientSettings, StoredClient};
use crate::store::contract::ClientStore;
use crate::store::effects::Effects;
use crate::store::error::StoreResult;
use crate::store::shared::clients::{client_store, joined, ttl_column, ClientRow, CLIENT_FIELDS};

client_store! {
    impl ClientStore for SqliteStore {}
}
