//! Territories and memberships: checking territory input, creating and changing territories,
//! adding and removing members, and the roles a user holds in a territory.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{check_description, check_name, finish, is_key, Directory};
use crate::domain::directory::{Territory, TerritoryPatch};
use crate::domain::AuditAction;
use crate::error::{Error, FieldError};
use crate::services::authority::global_only;
use crate::services::context::RequestContext;
use crate::services::sessions::CurrentSession;
use crate::store::{Effects, MemberChange, StoreError};

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

/// A membership change that found no user or no territory.
fn member_error(change: MemberChange) -> Result<bool, Error> {
    match change {
        MemberChange::Done { changed } => Ok(changed),
        MemberChange::UnknownUser => Err(Error::UserNotFound),
        MemberChange::UnknownTerritory => Err(Error::TerritoryNotFound),
    }
}

impl Directory {
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
        global_only(&self.context.admin_scope(caller).await?)?;
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
                AuditAction::TerritoryCreated,
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
        global_only(&self.context.admin_scope(caller).await?)?;
        let effects = |(before, after): &(Territory, Territory)| {
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
                    AuditAction::TerritoryUpdated,
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
        let scope = ctx.admin_scope(caller).await?;
        ctx.enrolable(&scope, user_id, code).await?;
        let effects = self.user_updated(user_id, &["territories"]).and(Effects {
            events: Vec::new(),
            audit: vec![ctx.audit(
                AuditAction::TerritoryMemberAdded,
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
        let scope = ctx.admin_scope(caller).await?;
        if scope.territory().is_some_and(|own| own != code) {
            return Err(Error::Forbidden);
        }
        ctx.changeable(&scope, user_id).await?;
        let effects = |roles: &[String]| {
            let fields: &[&'static str] = if roles.is_empty() {
                &["territories"]
            } else {
                &["territories", "roles"]
            };
            self.user_updated(user_id, fields).and(Effects {
                events: Vec::new(),
                audit: vec![ctx.audit(
                    AuditAction::TerritoryMemberRemoved,
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
        let scope = ctx.admin_scope(caller).await?;
        ctx.enrolable(&scope, user_id, code).await?;
        roles.sort();
        roles.dedup();
        let effects = |(joined, before): &(bool, Vec<String>)| {
            let joined = *joined;
            if !joined && before == roles.as_slice() {
                return Effects::none();
            }
            let fields: &[&'static str] = if joined {
                &["territories", "roles"]
            } else {
                &["roles"]
            };
            self.user_updated(user_id, fields).and(Effects {
                events: Vec::new(),
                audit: vec![ctx.audit(
                    AuditAction::TerritoryRolesSet,
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
