//! SQLite: reading the audit log, and importing users — all but `taken_logins` is in
//! `shared/audit.rs`.

use sqlx::QueryBuilder;

use super::dialect::*;
use super::rows::commit;
use super::SqliteStore;
use crate::domain::audit::AuditRecord;
use crate::store::contract::AuditStore;
use crate::store::effects::Effects;
use crate::store::error::{StoreError, StoreResult};
use crate::store::records::{AuditFilter, NewUser, TakenLogins};
use crate::store::shared::audit::{audit_store, BATCH};
use crate::store::shared::rows::AuditRow;

audit_store! {
    impl AuditStore for SqliteStore {
        async fn taken_logins(
            &self,
            emails: &[String],
            usernames: &[String],
        ) -> StoreResult<TakenLogins> {
            // SQLite has no array parameters: the lists travel as one JSON array each.
            let as_json = |values: &[String]| {
                serde_json::to_string(values).map_err(|error| StoreError::Other(error.into()))
            };
            let emails = sqlx::query_scalar(
                "SELECT email FROM users WHERE deleted_at IS NULL \
                 AND email IN (SELECT value FROM json_each($1))",
            )
            .bind(as_json(emails)?)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            let usernames = sqlx::query_scalar(
                "SELECT username FROM users WHERE deleted_at IS NULL \
                 AND lower(username) IN (SELECT lower(value) FROM json_each($1))",
            )
            .bind(as_json(usernames)?)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            Ok(TakenLogins { emails, usernames })
        }
    }
}
