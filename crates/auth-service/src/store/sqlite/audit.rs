//! SQLite: reading the audit log, and importing users.

use async_trait::async_trait;

use super::SqliteStore;
use crate::store::AuditStore;

#[async_trait]
impl AuditStore for SqliteStore {}
