//! Signing keys — the same text on both databases, but for where a generated sealing key
//! may be kept (`generated_key_file`).

/// What a wiped private half holds.
pub(crate) const WIPED: &[u8] = &[];

/// Expands `KeyStore` for a wing; methods written inside the block are the wing's own. See
/// `shared/mod.rs` for the names the bodies expect in scope.
macro_rules! key_store {
    (impl KeyStore for $store:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl KeyStore for $store {
            $($own)*

            async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
                let rows: Vec<KeyRow> = sqlx::query_as(
                    "SELECT kid, algorithm, public_key, private_key, sealed, created_at, retired_at, revoked_at \
                     FROM signing_keys ORDER BY created_at",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(StoredKey::from).collect())
            }

            async fn activate_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
                let (_turn, mut tx) = self.begin_write().await?;
                sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND revoked_at IS NULL")
                    .bind(ts(key.created_at))
                    .run(&mut tx)
                    .await?;
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
                .run(&mut tx)
                .await?;
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
                .run(&mut *self.connection().await?)
                .await?;
                // No effects name this change: the bearer check reads the key's revocation.
                self.fence.raise();
                Ok(revoked > 0)
            }

            async fn seal_signing_key(&self, kid: &str, sealed: &[u8]) -> StoreResult<()> {
                let (_turn, mut tx) = self.begin_write().await?;
                sqlx::query(
                    "UPDATE signing_keys SET private_key = $2, sealed = TRUE WHERE kid = $1 AND NOT sealed",
                )
                .bind(kid)
                .bind(sealed)
                .run(&mut tx)
                .await?;
                tx.commit().await.map_err(db_error)
            }

            async fn wipe_signing_key(&self, kid: &str) -> StoreResult<()> {
                let (_turn, mut tx) = self.begin_write().await?;
                sqlx::query("UPDATE signing_keys SET private_key = $2 WHERE kid = $1")
                    .bind(kid)
                    .bind(WIPED)
                    .run(&mut tx)
                    .await?;
                tx.commit().await.map_err(db_error)
            }
        }
    };
}
pub(crate) use key_store;
