//! SQLite: roles, territories and memberships.

use async_trait::async_trait;

use super::SqliteStore;
use crate::store::DirectoryStore;

#[async_trait]
impl DirectoryStore for SqliteStore {}
