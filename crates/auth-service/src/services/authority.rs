//! Who may administer what (SPEC §5), as the administration use cases ask it: the caller's
//! scope, and the users within its reach. The rules themselves are `domain::authority`; this
//! file reads what they need.

use uuid::Uuid;

use super::context::Context;
use super::sessions::CurrentSession;
use crate::domain::authority::{AdminScope, Grants};
use crate::domain::User;
use crate::error::Error;

/// A user an administrator acts on, with every role they hold.
pub struct Target {
    pub user: User,
    pub grants: Grants,
}

impl Context {
    /// The caller's scope of administration on this deployment; `forbidden` for a caller who
    /// administers nothing here. Read from the grants stored now, not from the token.
    pub async fn admin_scope(&self, caller: &CurrentSession) -> Result<AdminScope, Error> {
        let grants = self.store.grants(caller.user_id()).await?;
        AdminScope::of(&grants, self.territory()).ok_or(Error::Forbidden)
    }

    /// A user who is not deleted, with their grants; `None` when there is no such user.
    pub async fn target(&self, id: Uuid) -> Result<Option<Target>, Error> {
        let Some(user) = self.store.user(id, self.territory()).await? else {
            return Ok(None);
        };
        let grants = self.store.grants(id).await?;
        Ok(Some(Target { user, grants }))
    }

    /// A user a territory admin may change (a member of its territory, no global admin), or
    /// `forbidden` — the same for a user outside its reach and for no user at all, so ids
    /// cannot be probed. A global admin is not asked: the store answers "not found" for it.
    pub async fn changeable(&self, scope: &AdminScope, id: Uuid) -> Result<Option<Target>, Error> {
        if *scope == AdminScope::Global {
            return Ok(None);
        }
        match self.target(id).await? {
            Some(target) if scope.may_change(&target.user, &target.grants) => Ok(Some(target)),
            _ => Err(Error::Forbidden),
        }
    }

    /// For membership and territory-role changes: the territory must be the scope's own, and
    /// the user one it may enrol (see [`AdminScope::may_enrol`]); otherwise `forbidden`.
    pub async fn enrolable(&self, scope: &AdminScope, id: Uuid, code: &str) -> Result<(), Error> {
        if *scope == AdminScope::Global {
            return Ok(());
        }
        match self.target(id).await? {
            Some(target) if scope.may_enrol(&target.user, &target.grants, code) => Ok(()),
            _ => Err(Error::Forbidden),
        }
    }
}

/// `forbidden` unless the caller is a global administrator (roles and territories themselves).
pub fn global_only(scope: &AdminScope) -> Result<(), Error> {
    match scope {
        AdminScope::Global => Ok(()),
        AdminScope::Territory(_) => Err(Error::Forbidden),
    }
}
