//! PostgreSQL: reading the audit log, and importing users.

use async_trait::async_trait;

use super::PgStore;
use crate::store::AuditStore;

#[async_trait]
impl AuditStore for PgStore {}
