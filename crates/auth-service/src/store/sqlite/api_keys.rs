//! SQLite: API keys — every method but the batched use record is in `shared/api_keys.rs`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::*;
use super::rows::{commit, Run};
use super::SqliteStore;
use crate::domain::api_key::{ApiKey, KeyOwner, StoredApiKey};
use crate::store::contract::ApiKeyStore;
use crate::store::effects::{Effects, EffectsOf};
use crate::store::error::StoreResult;
use crate::store::shared::api_keys::{api_key_store, owner_column, ApiKeyRow, API_KEY_FIELDS};

/// SQLite: the writer's turn already serialises creations, so the count holds as read.
async fn lock_key_owner(_tx: &mut Tx<'_>, _owner: KeyOwner) -> StoreResult<()> {
    Ok(())
}

api_key_store! {
    impl ApiKeyStore for SqliteStore {
        /// SQLite takes the list as one JSON array (`json_each`); a use never moves
        /// `last_used_at` back.
        async fn record_api_key_uses(&self, uses: &[(Uuid, DateTime<Utc>)]) -> StoreResult<()> {
            if uses.is_empty() {
                return Ok(());
            }
            let list: Vec<serde_json::Value> = uses
                .iter()
                .map(|(key_id, at)| serde_json::json!({ "id": id(*key_id).to_string(), "at": ts(*at) }))
                .collect();
            let (_turn, mut tx) = self.begin_write().await?;
            sqlx::query(
                "UPDATE api_keys SET last_used_at = u.at \
                 FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.at') AS at \
                       FROM json_each($1)) AS u \
                 WHERE api_keys.id = u.id \
                   AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < u.at)",
            )
            .bind(serde_json::Value::Array(list).to_string())
            .run(&mut tx)
            .await?;
            commit(tx, &Effects::none()).await
        }
    }
}
