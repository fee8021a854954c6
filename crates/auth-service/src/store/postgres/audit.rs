//! PostgreSQL: reading the audit log, and importing users.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::{db_error, write_effects, PgStore};
use crate::store::{
    AuditFilter, AuditRecord, AuditStore, Effects, NewUser, StoreError, StoreResult, TakenLogins,
};

/// Rows per multi-row INSERT: 8 parameters each stays far below PostgreSQL's 65 535.
const BATCH: usize = 500;

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: Uuid,
    occurred_at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    user_id: Option<Uuid>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    details: Json<serde_json::Value>,
    ip_address: Option<String>,
    request_id: Option<String>,
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> Self {
        Self {
            id: row.id,
            occurred_at: row.occurred_at,
            actor_id: row.actor_id,
            user_id: row.user_id,
            action: row.action,
            target_type: row.target_type,
            target_id: row.target_id,
            details: row.details.0,
            ip_address: row.ip_address,
            request_id: row.request_id,
        }
    }
}

#[async_trait]
impl AuditStore for PgStore {
    async fn audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        // PostgreSQL compares UUIDs bytewise, which for UUIDv7 is by time.
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT id, occurred_at, actor_id, user_id, action, target_type, target_id, details, \
             ip_address, request_id FROM audit_log WHERE TRUE",
        );
        if let Some(user_id) = filter.user_id {
            query.push(" AND user_id = ").push_bind(user_id);
        }
        if let Some(action) = &filter.action {
            query.push(" AND action = ").push_bind(action.as_str());
        }
        if let Some(code) = &filter.member_of {
            query
                .push(
                    " AND user_id IN (SELECT user_id FROM user_territories WHERE territory_code = ",
                )
                .push_bind(code.as_str())
                .push(")");
        }
        if let Some(before) = filter.before {
            query.push(" AND id < ").push_bind(before);
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(filter.limit));
        let rows: Vec<AuditRow> = query
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }

    async fn taken_logins(
        &self,
        emails: &[String],
        usernames: &[String],
    ) -> StoreResult<TakenLogins> {
        let emails = sqlx::query_scalar(
            "SELECT email FROM users WHERE deleted_at IS NULL AND email = ANY($1)",
        )
        .bind(emails)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let usernames = sqlx::query_scalar(
            "SELECT username FROM users WHERE deleted_at IS NULL \
             AND lower(username) IN (SELECT lower(name) FROM unnest($1::text[]) AS name)",
        )
        .bind(usernames)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(TakenLogins { emails, usernames })
    }

    async fn import_users(
        &self,
        users: &[NewUser],
        role: &str,
        effects: &Effects,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let known: i64 = sqlx::query_scalar("SELECT count(*) FROM roles WHERE name = $1")
            .bind(role)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        if known == 0 {
            return Err(StoreError::UnknownRole(role.to_owned()));
        }
        for batch in users.chunks(BATCH) {
            let mut insert = QueryBuilder::<Postgres>::new(
                "INSERT INTO users (id, email, username, password_hash, display_name, \
                 is_verified, created_at, updated_at) ",
            );
            insert.push_values(batch, |mut row, user| {
                row.push_bind(user.id)
                    .push_bind(user.email.as_str())
                    .push_bind(user.username.as_str())
                    .push_bind(user.password_hash.as_str())
                    .push_bind(user.display_name.as_deref())
                    .push_bind(user.is_verified)
                    .push_bind(user.created_at)
                    .push_bind(user.created_at);
            });
            insert.build().execute(&mut *tx).await.map_err(db_error)?;
            let mut grant = QueryBuilder::<Postgres>::new(
                "INSERT INTO user_roles (user_id, role_name, granted_at) ",
            );
            grant.push_values(batch, |mut row, user| {
                row.push_bind(user.id)
                    .push_bind(role)
                    .push_bind(user.created_at);
            });
            grant.build().execute(&mut *tx).await.map_err(db_error)?;
        }
        write_effects(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(users.len() as u64)
    }
}
