//! PostgreSQL: roles, territories and memberships — every method is in
//! `shared/directory.rs`; here, how a change holds its rows.
//!
//! A territory update reads the row `FOR UPDATE`; memberships change in single statements whose
//! row and key locks order concurrent calls.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::dialect::*;
use super::rows::{commit, grant_roles, join, missing, write_effects, Run};
use super::PgStore;
use crate::domain::authority::{Grant, Grants};
use crate::domain::directory::{Role, Territory, TerritoryPatch};
use crate::store::contract::DirectoryStore;
use crate::store::effects::{Effects, EffectsOf};
use crate::store::error::StoreResult;
use crate::store::records::MemberChange;
use crate::store::shared::directory::{directory_store, TERRITORY_COLUMNS};
use crate::store::shared::rows::{RoleRow, TerritoryRow};

/// The territory as it is, held until commit. PostgreSQL: a row lock (`FOR UPDATE`).
async fn lock_territory(tx: &mut Tx<'_>, code: &str) -> StoreResult<Option<TerritoryRow>> {
    let sql = format!("SELECT {TERRITORY_COLUMNS} FROM territories WHERE code = $1 FOR UPDATE");
    sqlx::query_as(&sql)
        .bind(code)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)
}

/// PostgreSQL: the membership row lock makes concurrent replacements take turns.
async fn lock_membership(tx: &mut Tx<'_>, user_id: Uuid, code: &str) -> StoreResult<()> {
    sqlx::query(
        "SELECT 1 FROM user_territories WHERE user_id = $1 AND territory_code = $2 FOR UPDATE",
    )
    .bind(id(user_id))
    .bind(code)
    .run(tx)
    .await?;
    Ok(())
}

directory_store! {
    impl DirectoryStore for PgStore {}
}
