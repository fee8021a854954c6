//! Roles, territories, memberships and the roles held in a territory (SPEC §2, §5).

use std::sync::Arc;

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::context::{Context, RequestContext};
use super::sessions::CurrentSession;
use crate::error::{Error, FieldError};
use crate::store::{AuditEntry, Effects, MemberChange, StoreError, TerritoryPatch};

pub use crate::store::{Role, Territory};

/// Roles every deployment has from the first migration; they cannot be deleted.
pub const BUILT_IN_ROLES: [&str; 3] = ["admin", "moderator", "user"];

const MAX_NAME: usize = 100;
const MAX_DESCRIPTION: usize = 500;

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
            .any(|p| p.trim().is_empty() || p.len() > MAX_NAME)
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

/// A territory an administrator defines (`POST /api/territories`).
pub struct NewTerritory {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
}

impl NewTerritory {
    /// Checks every field: the code is 2–10 of `a-z 0-9 -` (`dk`, `no`, `se`).
    pub fn parse(
        code: String,
        name: &str,
        description: Option<String>,
        is_active: Option<bool>,
    ) -> Result<Self, Error> {
        let mut errors = Vec::new();
        if !is_key(&code, 2..=10, "-") {
            errors.push(FieldError::new(
                "code",
                "invalid",
                "must be 2–10 lowercase letters, digits or `-`",
            ));
        }
        check_name(name, &mut errors);
        check_description(description.as_deref(), &mut errors);
        finish(
            errors,
            Self {
                code,
                name: name.trim().to_owned(),
                description,
                is_active: is_active.unwrap_or(true),
            },
        )
    }
}

/// Checks a territory change (`PATCH /api/territories/{code}`).
pub fn territory_patch(
    name: Option<String>,
    description: Option<Option<String>>,
    is_active: Option<bool>,
) -> Result<TerritoryPatch, Error> {
    let mut errors = Vec::new();
    if let Some(name) = &name {
        check_name(name, &mut errors);
    }
    check_description(description.clone().flatten().as_deref(), &mut errors);
    finish(
        errors,
        TerritoryPatch {
            name: name.map(|name| name.trim().to_owned()),
            description,
            is_active,
        },
    )
}

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

/// A membership change that found no user or no territory.
fn member_error(change: MemberChange) -> Result<bool, Error> {
    match change {
        MemberChange::Done { changed } => Ok(changed),
        MemberChange::UnknownUser => Err(Error::UserNotFound),
        MemberChange::UnknownTerritory => Err(Error::TerritoryNotFound),
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
        action: &'static str,
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
    fn user_updated(&self, user_id: Uuid, fields: &[&str]) -> Effects {
        Effects {
            events: vec![self.context.event(
                "auth:user.updated",
                Some(user_id),
                json!({ "user_id": user_id, "fields": fields }),
            )],
            audit: Vec::new(),
        }
    }

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
        let role = Role {
            name: input.name,
            description: input.description,
            permissions: input.permissions,
            created_at: self.context.now(),
        };
        let effects = Effects {
            events: Vec::new(),
            audit: vec![self.audit_of(
                "role_created",
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
        if BUILT_IN_ROLES.contains(&name) {
            return Err(Error::BuiltInRole);
        }
        let effects = |holders: &[Uuid]| {
            let audit = self.audit_of(
                "role_deleted",
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

    /// Every territory, by code.
    pub async fn territories(&self) -> Result<Vec<Territory>, Error> {
        Ok(self.context.store.territories().await?)
    }

    /// Creates a territory; the primary key decides "taken".
    pub async fn create_territory(
        &self,
        caller: &CurrentSession,
        input: NewTerritory,
        request: &RequestContext,
    ) -> Result<Territory, Error> {
        let now = self.context.now();
        let territory = Territory {
            code: input.code,
            name: input.name,
            description: input.description,
            is_active: input.is_active,
            created_at: now,
            updated_at: now,
        };
        let effects = Effects {
            events: Vec::new(),
            audit: vec![self.audit_of(
                "territory_created",
                caller,
                ("territory", &territory.code),
                json!({ "after": { "name": territory.name, "description": territory.description,
                                   "is_active": territory.is_active } }),
                request,
            )],
        };
        match self
            .context
            .store
            .create_territory(&territory, &effects)
            .await
        {
            Ok(()) => Ok(territory),
            Err(StoreError::Conflict(_)) => Err(Error::TerritoryExists),
            Err(error) => Err(error.into()),
        }
    }

    /// Changes a territory; the audit entry holds the changed fields before and after.
    pub async fn update_territory(
        &self,
        caller: &CurrentSession,
        code: &str,
        patch: &TerritoryPatch,
        request: &RequestContext,
    ) -> Result<Territory, Error> {
        let effects = |before: &Territory, after: &Territory| {
            let (mut old, mut new) = (Map::new(), Map::new());
            let mut changed = |field: &str, was: Value, is: Value| {
                if was != is {
                    old.insert(field.to_owned(), was);
                    new.insert(field.to_owned(), is);
                }
            };
            changed("name", json!(before.name), json!(after.name));
            changed(
                "description",
                json!(before.description),
                json!(after.description),
            );
            changed("is_active", json!(before.is_active), json!(after.is_active));
            Effects {
                events: Vec::new(),
                audit: vec![self.audit_of(
                    "territory_updated",
                    caller,
                    ("territory", code),
                    json!({ "before": old, "after": new }),
                    request,
                )],
            }
        };
        let now = self.context.now();
        self.context
            .store
            .update_territory(code, patch, now, &effects)
            .await?
            .ok_or(Error::TerritoryNotFound)
    }

    /// Makes a user a member of a territory; a member already is left as is.
    pub async fn add_member(
        &self,
        caller: &CurrentSession,
        user_id: Uuid,
        code: &str,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let effects = self.user_updated(user_id, &["territories"]).and(Effects {
            events: Vec::new(),
            audit: vec![ctx.audit(
                "territory_member_added",
                Some(caller.user_id()),
                Some(user_id),
                json!({ "territory": code }),
                request,
            )],
        });
        let change = ctx
            .store
            .add_member(user_id, code, ctx.now(), &effects)
            .await?;
        member_error(change).map(|_| ())
    }

    /// Ends a membership and the roles held in that territory; a non-member is left as is.
    pub async fn remove_member(
        &self,
        caller: &CurrentSession,
        user_id: Uuid,
        code: &str,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let effects = |roles: &[String]| {
            let fields: &[&str] = if roles.is_empty() {
                &["territories"]
            } else {
                &["territories", "roles"]
            };
            self.user_updated(user_id, fields).and(Effects {
                events: Vec::new(),
                audit: vec![ctx.audit(
                    "territory_member_removed",
                    Some(caller.user_id()),
                    Some(user_id),
                    json!({ "territory": code, "roles_removed": roles }),
                    request,
                )],
            })
        };
        let change = ctx.store.remove_member(user_id, code, &effects).await?;
        member_error(change).map(|_| ())
    }

    /// Replaces the roles a user holds in a territory, making them a member first if needed;
    /// returns the roles now held there.
    pub async fn set_territory_roles(
        &self,
        caller: &CurrentSession,
        user_id: Uuid,
        code: &str,
        mut roles: Vec<String>,
        request: &RequestContext,
    ) -> Result<Vec<String>, Error> {
        let ctx = &self.context;
        roles.sort();
        roles.dedup();
        let effects = |joined: bool, before: &[String]| {
            if !joined && before == roles.as_slice() {
                return Effects::none();
            }
            let fields: &[&str] = if joined {
                &["territories", "roles"]
            } else {
                &["roles"]
            };
            self.user_updated(user_id, fields).and(Effects {
                events: Vec::new(),
                audit: vec![ctx.audit(
                    "territory_roles_set",
                    Some(caller.user_id()),
                    Some(user_id),
                    json!({ "territory": code, "joined": joined,
                            "before": before, "after": roles }),
                    request,
                )],
            })
        };
        let change = ctx
            .store
            .set_territory_roles(user_id, code, &roles, ctx.now(), &effects)
            .await?;
        member_error(change)?;
        Ok(roles)
    }
}
