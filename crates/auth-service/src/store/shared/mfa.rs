//! Second factors (SPEC §10): the TOTP factor, recovery codes and login challenges — the same
//! text on both databases.

use crate::store::records::TotpFactor;

/// A TOTP factor as read back.
#[derive(sqlx::FromRow)]
pub(crate) struct TotpRow {
    pub secret: Vec<u8>,
    pub confirmed: bool,
    pub last_used_step: Option<i64>,
}

impl From<TotpRow> for TotpFactor {
    fn from(row: TotpRow) -> Self {
        TotpFactor {
            sealed_secret: row.secret,
            confirmed: row.confirmed,
            last_used_step: row.last_used_step,
        }
    }
}

/// Expands `MfaStore` for a wing; methods written inside the block are the wing's own. See
/// `shared/mod.rs` for the names the bodies expect in scope.
macro_rules! mfa_store {
    (impl MfaStore for $store:ty { $($own:tt)* }) => {
        /// Inserts a user's recovery codes (hashes) inside a transaction.
        async fn insert_recovery_codes(
            tx: &mut Tx<'_>,
            user_id: Uuid,
            codes: &[Vec<u8>],
            now: DateTime<Utc>,
        ) -> StoreResult<()> {
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(id(user_id))
                .run(tx)
                .await?;
            for code in codes {
                sqlx::query(
                    "INSERT INTO recovery_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(id(Uuid::now_v7()))
                .bind(id(user_id))
                .bind(code)
                .bind(ts(now))
                .run(tx)
                .await?;
            }
            Ok(())
        }

        #[async_trait::async_trait]
        impl MfaStore for $store {
            $($own)*

            async fn totp_factor(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>> {
                let row: Option<TotpRow> = sqlx::query_as(
                    "SELECT secret, confirmed_at IS NOT NULL AS confirmed, last_used_step \
                     FROM totp_factors WHERE user_id = $1",
                )
                .bind(id(user_id))
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.map(TotpFactor::from))
            }

            async fn stage_totp(
                &self,
                user_id: Uuid,
                sealed_secret: &[u8],
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                // A confirmed factor is never replaced here: the WHERE leaves its row alone.
                let staged = sqlx::query(
                    "INSERT INTO totp_factors (user_id, secret, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
                       created_at = excluded.created_at, last_used_step = NULL \
                     WHERE totp_factors.confirmed_at IS NULL",
                )
                .bind(id(user_id))
                .bind(sealed_secret)
                .bind(ts(now))
                .run(&mut tx)
                .await?;
                commit_found(tx, staged, &Effects::default()).await
            }

            async fn confirm_totp(
                &self,
                user_id: Uuid,
                step: i64,
                codes: &[Vec<u8>],
                now: DateTime<Utc>,
                effects: &Effects,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let confirmed = sqlx::query(
                    "UPDATE totp_factors SET confirmed_at = $2, last_used_step = $3 \
                     WHERE user_id = $1 AND confirmed_at IS NULL",
                )
                .bind(id(user_id))
                .bind(ts(now))
                .bind(step)
                .run(&mut tx)
                .await?;
                if confirmed == 0 {
                    return Ok(false);
                }
                insert_recovery_codes(&mut tx, user_id, codes, now).await?;
                commit(tx, effects).await?;
                Ok(true)
            }

            async fn spend_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                // Compare-and-set: of two requests with one code, exactly one raises the step.
                let spent = sqlx::query(
                    "UPDATE totp_factors SET last_used_step = $2 WHERE user_id = $1 \
                     AND confirmed_at IS NOT NULL AND (last_used_step IS NULL OR last_used_step < $2)",
                )
                .bind(id(user_id))
                .bind(step)
                .run(&mut tx)
                .await?;
                commit_found(tx, spent, &Effects::default()).await
            }

            async fn spend_recovery_code(
                &self,
                user_id: Uuid,
                hash: &[u8],
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let spent = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $3 \
                     WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                )
                .bind(id(user_id))
                .bind(hash)
                .bind(ts(now))
                .run(&mut tx)
                .await?;
                commit_found(tx, spent, &Effects::default()).await
            }

            async fn replace_recovery_codes(
                &self,
                user_id: Uuid,
                codes: &[Vec<u8>],
                now: DateTime<Utc>,
                effects: &Effects,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                // A confirmed TOTP factor or a passkey: either is a second factor.
                let enrolled: Option<DbUuid> = sqlx::query_scalar(
                    "SELECT user_id FROM totp_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL \
                     UNION SELECT user_id FROM passkeys WHERE user_id = $1",
                )
                .bind(id(user_id))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                if enrolled.is_none() {
                    return Ok(false);
                }
                insert_recovery_codes(&mut tx, user_id, codes, now).await?;
                commit(tx, effects).await?;
                Ok(true)
            }

            async fn remove_second_factors(
                &self,
                user_id: Uuid,
                effects: EffectsOf<'_, [Uuid]>,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let totp = sqlx::query("DELETE FROM totp_factors WHERE user_id = $1")
                    .bind(id(user_id))
                    .run(&mut tx)
                    .await?;
                let passkeys: Vec<DbUuid> =
                    sqlx::query_scalar("DELETE FROM passkeys WHERE user_id = $1 RETURNING id")
                        .bind(id(user_id))
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?;
                if totp == 0 && passkeys.is_empty() {
                    return Ok(false);
                }
                let mut passkeys: Vec<Uuid> = passkeys.into_iter().map(Uuid::from).collect();
                passkeys.sort();
                for table in ["recovery_codes", "mfa_challenges", "passkey_ceremonies"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                        .bind(id(user_id))
                        .run(&mut tx)
                        .await?;
                }
                commit(tx, &effects(&passkeys)).await?;
                Ok(true)
            }

            async fn remove_totp_factor(
                &self,
                user_id: Uuid,
                effects: &Effects,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let removed = sqlx::query(
                    "DELETE FROM totp_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL",
                )
                .bind(id(user_id))
                .run(&mut tx)
                .await?;
                commit_found(tx, removed, effects).await
            }

            async fn issue_mfa_challenge(&self, challenge: &NewMfaChallenge) -> StoreResult<()> {
                let (_turn, mut tx) = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO mfa_challenges (id, user_id, token_hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id(challenge.id))
                .bind(id(challenge.user_id))
                .bind(&challenge.hash)
                .bind(ts(challenge.created_at))
                .bind(ts(challenge.expires_at))
                .run(&mut tx)
                .await?;
                // Lapsed challenges of the user are of no further use.
                sqlx::query(
                    "DELETE FROM mfa_challenges WHERE user_id = $1 AND expires_at <= $2",
                )
                .bind(id(challenge.user_id))
                .bind(ts(challenge.created_at))
                .run(&mut tx)
                .await?;
                tx.commit().await.map_err(db_error)
            }

            async fn mfa_challenge_user(
                &self,
                hash: &[u8],
                now: DateTime<Utc>,
            ) -> StoreResult<Option<Uuid>> {
                let user: Option<DbUuid> = sqlx::query_scalar(
                    "SELECT user_id FROM mfa_challenges \
                     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
                )
                .bind(hash)
                .bind(ts(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(user.map(Uuid::from))
            }

            async fn spend_mfa_challenge(&self, hash: &[u8], now: DateTime<Utc>) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let spent = sqlx::query(
                    "UPDATE mfa_challenges SET used_at = $2 \
                     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
                )
                .bind(hash)
                .bind(ts(now))
                .run(&mut tx)
                .await?;
                commit_found(tx, spent, &Effects::default()).await
            }
        }
    };
}
pub(crate) use mfa_store;
