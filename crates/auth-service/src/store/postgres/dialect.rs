//! What PostgreSQL does its own way, under the names the shared store code (`store/shared/`)
//! expands against; `sqlite/dialect.rs` gives the same names SQLite's meaning.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

use crate::store::error::{StoreError, Unique};
use crate::store::fence::FencedTx;

pub(super) type Db = Postgres;
/// A write transaction; it raises the store's write fence once committed (`store/fence.rs`).
pub(super) type Tx<'c> = FencedTx<'c, Postgres>;
/// The bound parameters of a query.
pub(super) type DbArgs<'q> = sqlx::postgres::PgArguments;
pub(super) type Conn = PgConnection;
/// A UUID column as read back: PostgreSQL has a native `uuid` type.
pub(super) type DbUuid = Uuid;
/// A list column as read back: `ARRAY(… ORDER BY …)` is a sorted `text[]`.
pub(super) type DbList = Vec<String>;

/// A JSON column as read back: `jsonb`, decoded as a document.
pub(super) type DbJson = serde_json::Value;

/// A UUID as bound: the native `uuid`.
pub(super) fn id(uuid: Uuid) -> Uuid {
    uuid
}

/// A timestamp as bound: the native `timestamptz`.
pub(super) fn ts(time: DateTime<Utc>) -> DateTime<Utc> {
    time
}

/// A JSON document as bound: the native `jsonb`.
pub(super) fn json(value: &serde_json::Value) -> &serde_json::Value {
    value
}

/// Driver errors, with unique violations named by the constraint that refused them.
pub(super) fn db_error(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        if db.is_unique_violation() {
            return StoreError::Conflict(match db.constraint() {
                Some("users_email_key") => Unique::Email,
                Some("users_username_key") => Unique::Username,
                _ => Unique::Other,
            });
        }
    }
    StoreError::from_sqlx(error)
}
