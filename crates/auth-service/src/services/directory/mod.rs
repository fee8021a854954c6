//! Roles, territories, memberships and the roles held in a territory (SPEC §2, §5). This file
//! holds the `Directory` service and the input checks shared by `roles.rs` and `territories.rs`.

pub mod roles;
pub mod territories;

use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use super::context::{Context, RequestContext};
use super::sessions::CurrentSession;
use crate::domain::{AuditAction, Event};
use crate::error::{Error, FieldError};
use crate::store::{AuditEntry, Effects};

pub use crate::domain::directory::{Role, Territory};

/// Roles every deployment has from the first migration; they cannot be deleted.
pub const BUILT_IN_ROLES: [&str; 3] = ["admin", "moderator", "user"];

const MAX_NAME: usize = 100;
const MAX_DESCRIPTION: usize = 500;

fn is_key(value: &str, length: std::ops::RangeInclusive<usize>, extra: &str) -> bool {
    length.contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c))
}

fn check_name(name: &str, errors: &mut Vec<FieldError>) {
    let length = name.trim().chars().count();
    if length == 0 || length > MAX_NAME {
        errors.push(FieldError::new(
            "name",
            "invalid",
            "must be 1–100 characters",
        ));
    }
}

fn check_description(description: Option<&str>, errors: &mut Vec<FieldError>) {
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        errors.push(FieldError::new(
            "description",
            "too_long",
            "must be at most 500 characters",
        ));
    }
}

fn finish<T>(errors: Vec<FieldError>, value: T) -> Result<T, Error> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(Error::Invalid(errors))
    }
}

#[derive(Clone)]
pub struct Directory {
    context: Arc<Context>,
}

impl Directory {
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }

    /// An audit entry about a role or territory rather than a user.
    fn audit_of(
        &self,
        action: AuditAction,
        caller: &CurrentSession,
        target: (&'static str, &str),
        details: Value,
        request: &RequestContext,
    ) -> AuditEntry {
        let mut entry = self
            .context
            .audit(action, Some(caller.user_id()), None, details, request);
        entry.target_type = Some(target.0);
        entry.target_id = Some(target.1.to_owned());
        entry
    }

    /// The `auth:user.updated` event of a change to a user's territories or roles.
    fn user_updated(&self, user_id: Uuid, fields: &[&'static str]) -> Effects {
        Effects {
            events: vec![self.context.event(Event::UserUpdated {
                user_id,
                fields: fields.to_vec(),
            })],
            audit: Vec::new(),
        }
    }
}
