//! Roles: checking a new role, listing, creating and deleting roles.

use serde_json::json;
use uuid::Uuid;

use super::{check_description, finish, is_key, Directory, BUILT_IN_ROLES, MAX_NAME};
use crate::domain::directory::Role;
use crate::domain::AuditAction;
use crate::error::{Error, FieldError};
use crate::services::authority::global_only;
use crate::services::context::RequestContext;
use crate::services::sessions::CurrentSession;
use crate::store::{Effects, StoreError};

/// A role an administrator defines (`POST /api/roles`).
pub struct NewRole {
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
}

impl NewRole {
    /// Checks every field: the name is 2–50 of `a-z 0-9 _ -`, permissions are non-empty.
    pub fn parse(
        name: String,
        description: Option<String>,
        permissions: Option<Vec<String>>,
    ) -> Result<Self, Error> {
        let mut errors = Vec::new();
        if !is_key(&name, 2..=50, "_-") {
            errors.push(FieldError::new(
                "name",
                "invalid",
                "must be 2–50 lowercase letters, digits, `_` or `-`",
            ));
        }
        check_description(description.as_deref(), &mut errors);
        let mut permissions = permissions.unwrap_or_default();
        if permissions
            .iter()
            .any(|p| p.trim().is_empty() || p.chars().count() > MAX_NAME)
        {
            errors.push(FieldError::new(
                "permissions",
                "invalid",
                "each permission must be 1–100 characters",
            ));
        }
        permissions.sort();
        permissions.dedup();
        finish(
            errors,
            Self {
                name,
                description,
                permissions,
            },
        )
    }
}

impl Directory {
    /// Every role, by name.
    pub async fn roles(&self) -> Result<Vec<Role>, Error> {
        Ok(self.context.store.roles().await?)
    }

    /// Creates a role; the primary key decides "taken".
    pub async fn create_role(
        &self,
        caller: &CurrentSession,
        input: NewRole,
        request: &RequestContext,
    ) -> Result<Role, Error> {
        global_only(&self.context.admin_scope(caller).await?)?;
        let role = Role {
            name: input.name,
            description: input.description,
            permissions: input.permissions,
            created_at: self.context.now(),
        };
        let effects = Effects {
            events: Vec::new(),
            audit: vec![self.audit_of(
                AuditAction::RoleCreated,
                caller,
                ("role", &role.name),
                json!({ "after": { "name": role.name, "description": role.description,
                                   "permissions": role.permissions } }),
                request,
            )],
        };
        match self.context.store.create_role(&role, &effects).await {
            Ok(()) => Ok(role),
            Err(StoreError::Conflict(_)) => Err(Error::RoleExists),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes a role that is not built in, with every grant of it.
    pub async fn delete_role(
        &self,
        caller: &CurrentSession,
        name: &str,
        request: &RequestContext,
    ) -> Result<(), Error> {
        global_only(&self.context.admin_scope(caller).await?)?;
        if BUILT_IN_ROLES.contains(&name) {
            return Err(Error::BuiltInRole);
        }
        let effects = |holders: &[Uuid]| {
            let audit = self.audit_of(
                AuditAction::RoleDeleted,
                caller,
                ("role", name),
                json!({ "holders": holders }),
                request,
            );
            holders
                .iter()
                .fold(Effects::none(), |effects, id| {
                    effects.and(self.user_updated(*id, &["roles"]))
                })
                .and(Effects {
                    events: Vec::new(),
                    audit: vec![audit],
                })
        };
        if self.context.store.delete_role(name, &effects).await? {
            Ok(())
        } else {
            Err(Error::RoleNotFound)
        }
    }
}
