//! PostgreSQL: reading the audit log, and importing users — all but `taken_logins` is in
//! `shared/audit.rs`.

use sqlx::QueryBuilder;

use super::dialect::*;
use super::rows::commit;
use super::PgStore;
use crate::domain::audit::AuditRecord;
use crate::store::contract::AuditStore;
use crate::store::effects::Effects;
use crate::store::error::{StoreError, StoreResult};
use crate::store::records::{AuditFilter, NewUser, TakenLogins};
use crate::store::shared::audit::{audit_store, BATCH};
use crate::store::shared::rows::AuditRow;

audit_store! {
    impl AuditStore for PgStore {
        /// PostgreSQL: the lists travel as array parameters.
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
    }
}
