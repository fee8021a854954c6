//! API keys (SPEC §11): the same text on both databases, but for the batched `last_used_at`
//! write, whose one statement binds a list the way each database takes one (the wings'
//! `record_api_key_uses`). Scopes are space-separated text, as clients' are.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::api_key::{ApiKey, KeyOwner, StoredApiKey};

/// The columns of a key, in [`ApiKeyRow`]'s order.
pub(crate) const API_KEY_FIELDS: &str =
    "id, user_id, client_id, name, prefix, key_hash, scopes, created_at, expires_at, last_used_at";

/// A key as read back; `Id` is the wing's `DbUuid`.
#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow<Id> {
    id: Id,
    user_id: Option<Id>,
    client_id: Option<Id>,
    name: String,
    prefix: String,
    key_hash: Vec<u8>,
    scopes: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl<Id: Into<Uuid>> ApiKeyRow<Id> {
    /// The key and its stored hash; `None` for a row with no owner, which the table's CHECK
    /// rules out.
    pub(crate) fn into_stored(self) -> Option<StoredApiKey> {
        let owner = match (self.user_id, self.client_id) {
            (Some(user), None) => KeyOwner::User(user.into()),
            (None, Some(client)) => KeyOwner::Client(client.into()),
            _ => return None,
        };
        Some(StoredApiKey {
            key: ApiKey {
                id: self.id.into(),
                owner,
                name: self.name,
                prefix: self.prefix,
                scopes: self.scopes.split_whitespace().map(str::to_owned).collect(),
                created_at: self.created_at,
                expires_at: self.expires_at,
                last_used_at: self.last_used_at,
            },
            hash: self.key_hash,
        })
    }
}

/// The owner's column and id: `user_id` or `client_id`.
pub(crate) fn owner_column(owner: KeyOwner) -> (&'static str, Uuid) {
    match owner {
        KeyOwner::User(id) => ("user_id", id),
        KeyOwner::Client(id) => ("client_id", id),
    }
}

/// Expands `ApiKeyStore` for a wing; methods written inside the block are the wing's own. See
/// `shared/mod.rs` for the names the bodies expect in scope; the wing's `lock_key_owner`
/// makes concurrent creations for one owner take turns, so the count the limit reads holds.
macro_rules! api_key_store {
    (impl ApiKeyStore for $store:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl ApiKeyStore for $store {
            $($own)*

            async fn create_api_key(
                &self,
                key: &ApiKey,
                hash: &[u8],
                limit: u64,
                effects: &Effects,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let (column, owner_id) = owner_column(key.owner);
                lock_key_owner(&mut tx, key.owner).await?;
                let held: i64 = sqlx::query_scalar(&format!(
                    "SELECT count(*) FROM api_keys WHERE {column} = $1"
                ))
                .bind(id(owner_id))
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                if u64::try_from(held).unwrap_or(u64::MAX) >= limit {
                    tx.rollback().await.map_err(db_error)?;
                    return Ok(false);
                }
                sqlx::query(&format!(
                    "INSERT INTO api_keys (id, {column}, name, prefix, key_hash, scopes, \
                     created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(id(key.id))
                .bind(id(owner_id))
                .bind(&key.name)
                .bind(&key.prefix)
                .bind(hash)
                .bind(key.scopes.join(" "))
                .bind(ts(key.created_at))
                .bind(key.expires_at.map(ts))
                .run(&mut tx)
                .await?;
                commit(tx, effects).await?;
                Ok(true)
            }

            async fn api_key_by_hash(&self, hash: &[u8]) -> StoreResult<Option<StoredApiKey>> {
                let sql = format!("SELECT {API_KEY_FIELDS} FROM api_keys WHERE key_hash = $1");
                let row: Option<ApiKeyRow<DbUuid>> = sqlx::query_as(&sql)
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(row.and_then(ApiKeyRow::into_stored))
            }

            async fn api_keys_of(&self, owner: KeyOwner) -> StoreResult<Vec<ApiKey>> {
                let (column, owner_id) = owner_column(owner);
                let sql =
                    format!("SELECT {API_KEY_FIELDS} FROM api_keys WHERE {column} = $1 ORDER BY id");
                let rows: Vec<ApiKeyRow<DbUuid>> = sqlx::query_as(&sql)
                    .bind(id(owner_id))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(rows
                    .into_iter()
                    .filter_map(|row| row.into_stored().map(|stored| stored.key))
                    .collect())
            }

            async fn revoke_api_key(
                &self,
                owner: KeyOwner,
                key_id: Uuid,
                effects: EffectsOf<'_, ApiKey>,
            ) -> StoreResult<Option<ApiKey>> {
                let (_turn, mut tx) = self.begin_write().await?;
                let (column, owner_id) = owner_column(owner);
                let sql = format!(
                    "DELETE FROM api_keys WHERE id = $1 AND {column} = $2 RETURNING {API_KEY_FIELDS}"
                );
                let row: Option<ApiKeyRow<DbUuid>> = sqlx::query_as(&sql)
                    .bind(id(key_id))
                    .bind(id(owner_id))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let Some(key) = row.and_then(ApiKeyRow::into_stored).map(|stored| stored.key)
                else {
                    tx.rollback().await.map_err(db_error)?;
                    return Ok(None);
                };
                commit(tx, &effects(&key)).await?;
                Ok(Some(key))
            }
        }
    };
}
pub(crate) use api_key_store;
