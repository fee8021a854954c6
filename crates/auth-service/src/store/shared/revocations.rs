//! Token introspection and revocation (SPEC §11, RFC 7662, RFC 7009): the same text on both
//! databases.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::token::RefreshTokenState;

/// A refresh token with its session and user, as `refresh_token_state` reads it.
#[derive(sqlx::FromRow)]
pub(crate) struct RefreshTokenRow<Id> {
    session_id: Id,
    user_id: Id,
    username: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    spent: bool,
    session_ended: bool,
    session_expires_at: DateTime<Utc>,
    session_idle_expires_at: DateTime<Utc>,
    user_active: bool,
}

impl<Id: Into<Uuid>> From<RefreshTokenRow<Id>> for RefreshTokenState {
    fn from(row: RefreshTokenRow<Id>) -> Self {
        RefreshTokenState {
            session_id: row.session_id.into(),
            user_id: row.user_id.into(),
            username: row.username,
            issued_at: row.created_at,
            expires_at: row.expires_at,
            spent: row.spent,
            session_ended: row.session_ended,
            session_expires_at: row.session_expires_at,
            session_idle_expires_at: row.session_idle_expires_at,
            user_active: row.user_active,
        }
    }
}

/// Expands `RevocationStore` for a wing; methods written inside the block are the wing's own.
/// See `shared/mod.rs` for the names the bodies expect in scope.
macro_rules! revocation_store {
    (impl RevocationStore for $store:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl RevocationStore for $store {
            $($own)*

            async fn refresh_token_state(
                &self,
                hash: &[u8],
            ) -> StoreResult<Option<RefreshTokenState>> {
                let row: Option<RefreshTokenRow<DbUuid>> = sqlx::query_as(
                    "SELECT rt.session_id, s.user_id, u.username, rt.created_at, rt.expires_at, \
                       rt.spent_at IS NOT NULL AS spent, s.ended_at IS NOT NULL AS session_ended, \
                       s.expires_at AS session_expires_at, \
                       s.idle_expires_at AS session_idle_expires_at, \
                       (u.is_active AND u.deleted_at IS NULL) AS user_active \
                     FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id \
                     JOIN users u ON u.id = s.user_id WHERE rt.token_hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.map(RefreshTokenState::from))
            }

            async fn record_token_revocation(
                &self,
                token: &RevokedToken,
                now: DateTime<Utc>,
                effects: &Effects,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                // Opportunistic cleanup: a row outlives its token by nothing.
                sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
                    .bind(ts(now))
                    .run(&mut tx)
                    .await?;
                let inserted = sqlx::query(
                    "INSERT INTO revoked_tokens (jti, client_id, revoked_at, expires_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
                )
                .bind(id(token.jti))
                .bind(id(token.client_id))
                .bind(ts(now))
                .bind(ts(token.expires_at))
                .run(&mut tx)
                .await?;
                if inserted == 0 {
                    // Revoked before: the cleanup alone is kept.
                    commit(tx, &Effects::none()).await?;
                    return Ok(false);
                }
                commit(tx, effects).await?;
                Ok(true)
            }

            async fn token_revoked(&self, jti: Uuid) -> StoreResult<bool> {
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)")
                    .bind(id(jti))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)
            }
        }
    };
}
pub(crate) use revocation_store;
