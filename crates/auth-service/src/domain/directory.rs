//! Roles and territories as administrators define them (SPEC §5), and a change to a territory.

use chrono::{DateTime, Utc};

/// A role users hold globally or in one territory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A territory (`dk`, `no`, `se` …) users belong to and hold roles in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Territory {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A change to a territory; `None` keeps a field, `Some(None)` clears the description.
#[derive(Debug, Clone, Default)]
pub struct TerritoryPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub is_active: Option<bool>,
}
