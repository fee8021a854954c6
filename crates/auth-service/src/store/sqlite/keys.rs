//! SQLite: signing keys.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::ConnectOptions;

use super::{db_error, ts, SqliteStore};
use crate::store::{KeyStore, StoreResult, StoredKey};

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    algorithm: String,
    public_key: String,
    private_key: Vec<u8>,
    sealed: bool,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, algorithm, public_key, private_key, sealed, created_at, retired_at, revoked_at \
             FROM signing_keys ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|row| StoredKey {
                kid: row.kid,
                algorithm: row.algorithm,
                public_jwk: row.public_key,
                private_key: row.private_key,
                sealed: row.sealed,
                created_at: row.created_at,
                retired_at: row.retired_at,
                revoked_at: row.revoked_at,
            })
            .collect())
    }

    async fn activate_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        let (_turn, mut tx) = self.begin_write().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND revoked_at IS NULL")
            .bind(ts(key.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, public_key, private_key, sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.public_jwk)
        .bind(&key.private_key)
        .bind(key.sealed)
        .bind(ts(key.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn revoke_signing_key(&self, kid: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let revoked = sqlx::query(
            "UPDATE signing_keys SET revoked_at = $2, private_key = $3 \
             WHERE kid = $1 AND revoked_at IS NULL",
        )
        .bind(kid)
        .bind(ts(now))
        .bind(WIPED)
        .execute(&self.pool)
        .await
        .map_err(db_error)?
        .rows_affected();
        Ok(revoked > 0)
    }

    async fn seal_signing_key(&self, kid: &str, sealed: &[u8]) -> StoreResult<()> {
        let (_turn, mut tx) = self.begin_write().await?;
        sqlx::query(
            "UPDATE signing_keys SET private_key = $2, sealed = TRUE WHERE kid = $1 AND NOT sealed",
        )
        .bind(kid)
        .bind(sealed)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn wipe_signing_key(&self, kid: &str) -> StoreResult<()> {
        let (_turn, mut tx) = self.begin_write().await?;
        sqlx::query("UPDATE signing_keys SET private_key = $2 WHERE kid = $1")
            .bind(kid)
            .bind(WIPED)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    /// SQLite: beside the database file (`auth.db` → `auth.key`), so the key lives and is
    /// backed up with the database's directory but not inside the database.
    fn generated_key_file(&self) -> Option<PathBuf> {
        let options = self.pool.connect_options();
        let in_memory = options
            .to_url_lossy()
            .query_pairs()
            .any(|(name, value)| name == "mode" && value == "memory");
        let database = options.get_filename();
        if in_memory || database.as_os_str().is_empty() {
            return None;
        }
        let key_file = database.with_extension("key");
        (key_file != database).then_some(key_file)
    }
}

/// What a wiped private half holds.
const WIPED: &[u8] = &[];
