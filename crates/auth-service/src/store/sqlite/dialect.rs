//! What SQLite does its own way, under the names the shared store code (`store/shared/`)
//! expands against; `postgres/dialect.rs` gives the same names PostgreSQL's meaning. UUIDs
//! and timestamps are TEXT; timestamps are written in one fixed-width UTC format so that
//! comparing the text compares the times.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Sqlite, SqliteConnection};
use uuid::fmt::Hyphenated;
use uuid::Uuid;

use crate::store::error::{StoreError, Unique};
use crate::store::fence::FencedTx;

pub(super) type Db = Sqlite;
/// A write transaction; it raises the store's write fence once committed (`store/fence.rs`).
pub(super) type Tx<'c> = FencedTx<'c, Sqlite>;
/// The bound parameters of a query.
pub(super) type DbArgs<'q> = sqlx::sqlite::SqliteArguments<'q>;
pub(super) type Conn = SqliteConnection;
/// A UUID column as read back: hyphenated lowercase TEXT.
pub(super) type DbUuid = Hyphenated;
/// A list column as read back: `json_group_array` gives a JSON array.
pub(super) type DbList = Json<Vec<String>>;

/// A JSON column as read back: TEXT.
pub(super) type DbJson = String;

/// A UUID as bound: hyphenated lowercase TEXT, which sorts like the UUID's bytes.
pub(super) fn id(uuid: Uuid) -> Hyphenated {
    uuid.hyphenated()
}

/// A timestamp as bound: `2026-01-02T03:04:05.123456Z`.
pub(super) fn ts(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A JSON document as bound: its text.
pub(super) fn json(value: &serde_json::Value) -> String {
    value.to_string()
}

/// Driver errors, with unique violations named from SQLite's message (it reports no
/// constraint name).
pub(super) fn db_error(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        if db.is_unique_violation() {
            let message = db.message();
            return StoreError::Conflict(if message.contains("users.email") {
                Unique::Email
            } else if message.contains("users_username_key") {
                Unique::Username
            } else {
                Unique::Other
            });
        }
    }
    StoreError::from_sqlx(error)
}
