//! Accounts: signup (in `signup.rs`), login, the caller's own profile and GetUser.

pub mod challenge;
pub mod login;
pub mod passkey;
pub mod signup;

use std::sync::Arc;

use uuid::Uuid;

use super::admin::{Admin, ADMIN_ROLE};
use super::context::{Context, RequestContext};
use super::sessions::CurrentSession;
use crate::domain::{Event, ProfilePatch, User};
use crate::error::Error;
use crate::store::Effects;

#[derive(Clone)]
pub struct Accounts {
    context: Arc<Context>,
}

impl Accounts {
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }

    /// The caller's own user.
    pub async fn me(&self, user_id: Uuid) -> Result<User, Error> {
        self.context
            .store
            .user(user_id, self.context.territory())
            .await?
            .ok_or(Error::Unauthorized)
    }

    /// A user for the caller (GetUser): their own, or with the `admin` role anyone's. Another
    /// user asked for by a non-admin is `forbidden` whether or not it exists, so ids cannot be
    /// probed; an administrator's lookups count against the per-address lookup limit.
    pub async fn user_for(
        &self,
        caller: &CurrentSession,
        id: Option<Uuid>,
        request: &RequestContext,
    ) -> Result<User, Error> {
        match id {
            None => Ok(caller.user.clone()),
            Some(id) if id == caller.user_id() => Ok(caller.user.clone()),
            Some(_) if !caller.has_role(ADMIN_ROLE) => Err(Error::Forbidden),
            Some(id) => {
                Admin::new(self.context.clone())
                    .user(caller, id, request)
                    .await
            }
        }
    }

    /// Changes the caller's profile and answers the updated user.
    pub async fn update_me(&self, user_id: Uuid, patch: ProfilePatch) -> Result<User, Error> {
        let ctx = &self.context;
        if !patch.is_empty() {
            let fields: Vec<&'static str> = [
                patch.display_name.as_ref().map(|_| "display_name"),
                patch.avatar_url.as_ref().map(|_| "avatar_url"),
                patch.bio.as_ref().map(|_| "bio"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let effects = Effects {
                events: vec![ctx.event(Event::UserUpdated { user_id, fields })],
                audit: Vec::new(),
            };
            if !ctx
                .store
                .update_profile(user_id, &patch, ctx.now(), &effects)
                .await?
            {
                return Err(Error::Unauthorized);
            }
        }
        self.me(user_id).await
    }
}

pub(super) fn count(operation: &'static str, success: bool) {
    let status = if success { "success" } else { "failure" };
    metrics::counter!("auth_operations_total", "operation" => operation, "status" => status)
        .increment(1);
}
