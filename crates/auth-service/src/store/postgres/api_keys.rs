//! PostgreSQL: API keys — every method but the batched use record is in `shared/api_keys.rs`;
//! here, how a creation holds its owner.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::*;
use super::rows::{commit, Run};
use super::PgStore;
use crate::domain::api_key::{ApiKey, KeyOwner, StoredApiKey};
use crate::store::contract::ApiKeyStore;
use crate::store::effects::{Effects, EffectsOf};
use crate::store::error::StoreResult;
use crate::store::shared::api_keys::{api_key_store, owner_column, ApiKeyRow, API_KEY_FIELDS};

/// PostgreSQL: the owner's row lock (`FOR UPDATE`) makes concurrent creations for one owner
/// take turns, so the per-owner limit counts what is committed.
async fn lock_key_owner(tx: &mut Tx<'_>, owner: KeyOwner) -> StoreResult<()> {
    let sql = match owner {
        KeyOwner::User(_) => "SELECT 1 FROM users WHERE id = $1 FOR UPDATE",
        KeyOwner::Client(_) => "SELECT 1 FROM clients WHERE id = $1 FOR UPDATE",
    };
    sqlx::query(sql).bind(id(owner.id())).run(tx).await?;
    Ok(())
}

api_key_store! {
    impl ApiKeyStore for PgStore {
        /// PostgreSQL takes the list as two arrays (`unnest`); a use never moves
        /// `last_used_at` back.
        async fn record_api_key_uses(&self, uses: &[(Uuid, DateTime<Utc>)]) -> StoreResult<()> {
            if uses.is_empty() {
                return Ok(());
            }
            let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) = uses.iter().copied().unzip();
            let (_turn, mut tx) = self.begin_write().await?;
            sqlx::query(
                "UPDATE api_keys SET last_used_at = u.at \
                 FROM unnest($1::uuid[], $2::timestamptz[]) AS u (id, at) \
                 WHERE api_keys.id = u.id \
                   AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < u.at)",
            )
            .bind(ids)
            .bind(times)
            .run(&mut tx)
            .await?;
            commit(tx, &Effects::none()).await
        }
    }
}
