//! Passkeys (SPEC §10): registered credentials and ceremony states — the same text on both
//! databases.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::store::records::{StoredPasskey, TakenCeremony};

/// A passkey as read back; `Id` is the wing's `DbUuid`.
#[derive(sqlx::FromRow)]
pub(crate) struct PasskeyRow<Id> {
    id: Id,
    user_id: Id,
    name: String,
    credential: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl<Id: Into<Uuid>> From<PasskeyRow<Id>> for StoredPasskey {
    fn from(row: PasskeyRow<Id>) -> Self {
        StoredPasskey {
            id: row.id.into(),
            user_id: row.user_id.into(),
            name: row.name,
            credential: row.credential,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// A ceremony taken back; `Id` is the wing's `DbUuid`.
#[derive(sqlx::FromRow)]
pub(crate) struct CeremonyRow<Id> {
    user_id: Option<Id>,
    state: String,
}

impl<Id: Into<Uuid>> From<CeremonyRow<Id>> for TakenCeremony {
    fn from(row: CeremonyRow<Id>) -> Self {
        TakenCeremony {
            user_id: row.user_id.map(Into::into),
            state: row.state,
        }
    }
}

pub(crate) const PASSKEY_COLUMNS: &str = "id, user_id, name, credential, created_at, last_used_at";

/// Expands `PasskeyStore` for a wing; methods written inside the block are the wing's own.
/// See `shared/mod.rs` for the names the bodies expect in scope.
macro_rules! passkey_store {
    (impl PasskeyStore for $store:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl PasskeyStore for $store {
            $($own)*

            async fn passkeys(&self, user_id: Uuid) -> StoreResult<Vec<StoredPasskey>> {
                let rows: Vec<PasskeyRow<DbUuid>> = sqlx::query_as(&format!(
                    "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 \
                     ORDER BY created_at, id"
                ))
                .bind(id(user_id))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(StoredPasskey::from).collect())
            }

            async fn passkey_by_credential(
                &self,
                credential_id: &[u8],
            ) -> StoreResult<Option<StoredPasskey>> {
                let row: Option<PasskeyRow<DbUuid>> = sqlx::query_as(&format!(
                    "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1"
                ))
                .bind(credential_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.map(StoredPasskey::from))
            }

            async fn add_passkey(
                &self,
                passkey: &NewPasskey,
                recovery_codes: &[Vec<u8>],
                effects: &Effects,
            ) -> StoreResult<()> {
                let (_turn, mut tx) = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO passkeys (id, user_id, credential_id, name, credential, \
                       sign_count, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6)",
                )
                .bind(id(passkey.id))
                .bind(id(passkey.user_id))
                .bind(&passkey.credential_id)
                .bind(&passkey.name)
                .bind(&passkey.credential)
                .bind(ts(passkey.created_at))
                .run(&mut tx)
                .await?;
                if !recovery_codes.is_empty() {
                    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                        .bind(id(passkey.user_id))
                        .run(&mut tx)
                        .await?;
                    for code in recovery_codes {
                        sqlx::query(
                            "INSERT INTO recovery_codes (id, user_id, code_hash, created_at) \
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(id(Uuid::now_v7()))
                        .bind(id(passkey.user_id))
                        .bind(code)
                        .bind(ts(passkey.created_at))
                        .run(&mut tx)
                        .await?;
                    }
                }
                commit(tx, effects).await
            }

            async fn rename_passkey(
                &self,
                user_id: Uuid,
                passkey_id: Uuid,
                name: &str,
                effects: &Effects,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let renamed = sqlx::query(
                    "UPDATE passkeys SET name = $3 WHERE id = $1 AND user_id = $2",
                )
                .bind(id(passkey_id))
                .bind(id(user_id))
                .bind(name)
                .run(&mut tx)
                .await?;
                commit_found(tx, renamed, effects).await
            }

            async fn remove_passkey(
                &self,
                user_id: Uuid,
                passkey_id: Uuid,
                last_factor: bool,
                effects: &Effects,
            ) -> StoreResult<PasskeyRemoval> {
                let (_turn, mut tx) = self.begin_write().await?;
                // One factor removal of a user at a time (the user's row lock on PostgreSQL,
                // the writer's turn on SQLite), so the count below sees a removal that raced.
                sqlx::query("UPDATE users SET id = id WHERE id = $1")
                    .bind(id(user_id))
                    .run(&mut tx)
                    .await?;
                let removed = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
                    .bind(id(passkey_id))
                    .bind(id(user_id))
                    .run(&mut tx)
                    .await?;
                if removed == 0 {
                    return Ok(PasskeyRemoval::NotFound);
                }
                if !last_factor {
                    let left: i64 = sqlx::query_scalar(
                        "SELECT (SELECT count(*) FROM passkeys WHERE user_id = $1) \
                              + (SELECT count(*) FROM totp_factors \
                                 WHERE user_id = $1 AND confirmed_at IS NOT NULL)",
                    )
                    .bind(id(user_id))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    if left == 0 {
                        return Ok(PasskeyRemoval::WasLastFactor);
                    }
                }
                if last_factor {
                    for table in ["recovery_codes", "mfa_challenges", "passkey_ceremonies"] {
                        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                            .bind(id(user_id))
                            .run(&mut tx)
                            .await?;
                    }
                }
                commit(tx, effects).await?;
                Ok(PasskeyRemoval::Removed)
            }

            async fn record_passkey_use(
                &self,
                passkey_id: Uuid,
                credential: &str,
                counter: u32,
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let stored = sqlx::query(
                    "UPDATE passkeys SET credential = $2, sign_count = $3, last_used_at = $4 \
                     WHERE id = $1 AND (sign_count < $3 OR $3 = 0)",
                )
                .bind(id(passkey_id))
                .bind(credential)
                .bind(i64::from(counter))
                .bind(ts(now))
                .run(&mut tx)
                .await?;
                commit_found(tx, stored, &Effects::default()).await
            }

            async fn issue_ceremony(&self, ceremony: &Ceremony) -> StoreResult<()> {
                let (_turn, mut tx) = self.begin_write().await?;
                sqlx::query("DELETE FROM passkey_ceremonies WHERE expires_at <= $1")
                    .bind(ts(ceremony.created_at))
                    .run(&mut tx)
                    .await?;
                if let Some(hash) = &ceremony.mfa_token_hash {
                    sqlx::query("DELETE FROM passkey_ceremonies WHERE mfa_token_hash = $1")
                        .bind(hash)
                        .run(&mut tx)
                        .await?;
                }
                sqlx::query(
                    "INSERT INTO passkey_ceremonies (id, purpose, user_id, mfa_token_hash, \
                       state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id(ceremony.id))
                .bind(ceremony.purpose)
                .bind(ceremony.user_id.map(id))
                .bind(ceremony.mfa_token_hash.as_deref())
                .bind(&ceremony.state)
                .bind(ts(ceremony.created_at))
                .bind(ts(ceremony.expires_at))
                .run(&mut tx)
                .await?;
                tx.commit().await.map_err(db_error)
            }

            async fn take_ceremony(
                &self,
                ceremony_id: Uuid,
                purpose: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<Option<TakenCeremony>> {
                let (_turn, mut tx) = self.begin_write().await?;
                // Single use: the finishing step deletes what it reads, in one statement.
                let row: Option<CeremonyRow<DbUuid>> = sqlx::query_as(
                    "DELETE FROM passkey_ceremonies \
                     WHERE id = $1 AND purpose = $2 AND expires_at > $3 \
                     RETURNING user_id, state",
                )
                .bind(id(ceremony_id))
                .bind(purpose)
                .bind(ts(now))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(row.map(TakenCeremony::from))
            }

            async fn take_mfa_ceremony(
                &self,
                mfa_token_hash: &[u8],
                now: DateTime<Utc>,
            ) -> StoreResult<Option<TakenCeremony>> {
                let (_turn, mut tx) = self.begin_write().await?;
                let row: Option<CeremonyRow<DbUuid>> = sqlx::query_as(
                    "DELETE FROM passkey_ceremonies \
                     WHERE mfa_token_hash = $1 AND purpose = 'mfa' AND expires_at > $2 \
                     RETURNING user_id, state",
                )
                .bind(mfa_token_hash)
                .bind(ts(now))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(row.map(TakenCeremony::from))
            }
        }
    };
}
pub(crate) use passkey_store;
