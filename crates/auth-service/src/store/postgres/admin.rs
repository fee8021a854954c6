//! PostgreSQL: administration of users — every method is in `shared/admin.rs`; here, how
//! administrators' changes take turns.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::*;
use super::rows::{
    commit, credentials_by_id, end_user_sessions, grant_roles, insert_user, join, void_links, Run,
};
use super::PgStore;
use crate::domain::user::UserPatch;
use crate::domain::{EndReason, User};
use crate::store::contract::AdminStore;
use crate::store::effects::{Effects, EffectsOf};
use crate::store::error::{StoreError, StoreResult};
use crate::store::records::{NewUser, UserQuery};
use crate::store::shared::admin::{admin_store, like_pattern};

/// PostgreSQL: a transaction-scoped advisory lock serialises administrators' changes to users.
async fn take_admin_turn(tx: &mut Tx<'_>) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('auth-service:user-admin'))")
        .run(tx)
        .await?;
    Ok(())
}

admin_store! {
    impl AdminStore for PgStore {}
}
