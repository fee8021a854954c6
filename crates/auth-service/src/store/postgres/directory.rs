//! PostgreSQL: roles, territories and memberships.

use async_trait::async_trait;

use super::PgStore;
use crate::store::DirectoryStore;

#[async_trait]
impl DirectoryStore for PgStore {}
