//! SQLite: roles, territories and memberships — every method is in `shared/directory.rs`;
//! here, how a change holds its rows.
//!
//! Every write transaction opens with a write statement, so it holds SQLite's write lock from
//! its start and what it reads afterwards cannot change under it.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::dialect::*;
use super::rows::{commit, grant_roles, join, missing, write_effects, Run};
use super::SqliteStore;
use crate::domain::authority::{Grant, Grants};
use crate::domain::directory::{Role, Territory, TerritoryPatch};
use crate::store::contract::DirectoryStore;
use crate::store::effects::{Effects, EffectsOf};
use crate::store::error::StoreResult;
use crate::store::records::MemberChange;
use crate::store::shared::directory::{directory_store, TERRITORY_COLUMNS};
use crate::store::shared::rows::{RoleRow, TerritoryRow};

/// The territory as it is, held until commit. SQLite: a no-op write first takes the write
/// lock, so what is read stays true until commit.
async fn lock_territory(tx: &mut Tx<'_>, code: &str) -> StoreResult<Option<TerritoryRow>> {
    sqlx::query("UPDATE territories SET updated_at = updated_at WHERE code = $1")
        .bind(code)
        .run(tx)
        .await?;
    let sql = format!("SELECT {TERRITORY_COLUMNS} FROM territories WHERE code = $1");
    sqlx::query_as(&sql)
        .bind(code)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)
}

/// SQLite: the transaction already holds the single write lock; nothing more to take.
async fn lock_membership(_tx: &mut Tx<'_>, _user_id: Uuid, _code: &str) -> StoreResult<()> {
    Ok(())
}

directory_store! {
    impl DirectoryStore for SqliteStore {}
}
