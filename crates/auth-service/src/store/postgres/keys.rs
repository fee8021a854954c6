//! PostgreSQL: signing keys.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{db_error, PgStore};
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
impl KeyStore for PgStore {
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
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND revoked_at IS NULL")
            .bind(key.created_at)
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
        .bind(key.created_at)
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
        .bind(now)
        .bind(WIPED)
        .execute(&self.pool)
        .await
        .map_err(db_error)?
        .rows_affected();
        Ok(revoked > 0)
    }

    async fn seal_signing_key(&self, kid: &str, sealed: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "UPDATE signing_keys SET private_key = $2, sealed = TRUE WHERE kid = $1 AND NOT sealed",
        )
        .bind(kid)
        .bind(sealed)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn wipe_signing_key(&self, kid: &str) -> StoreResult<()> {
        sqlx::query("UPDATE signing_keys SET private_key = $2 WHERE kid = $1")
            .bind(kid)
            .bind(WIPED)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// PostgreSQL: replicas on other machines could not share a generated file.
    fn generated_key_file(&self) -> Option<PathBuf> {
        None
    }
}

/// What a wiped private half holds.
const WIPED: &[u8] = &[];
