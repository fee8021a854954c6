//! Administration of users: the first administrator, and (SPEC §2) the `/api/users` use cases.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use super::context::{Context, RequestContext};
use super::sessions::CurrentSession;
use crate::domain::user::DEFAULT_ROLE;
use crate::domain::{Email, Login, NewAccount, User, Username};
use crate::error::Error;
use crate::store::{Effects, NewUser, StoreError};

pub const ADMIN_ROLE: &str = "admin";

/// What bootstrapping did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    Created(Uuid),
    AlreadyThere,
}

#[derive(Clone)]
pub struct Admin {
    context: Arc<Context>,
}

impl Admin {
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }

    /// Creates a verified administrator unless a user with that email or username exists
    /// (so every start, and several replicas starting at once, may call it). The password
    /// must fit the length bounds; one that fails the rest of the policy is accepted with a
    /// warning, since an operator chose it.
    pub async fn create_admin(
        &self,
        email: &str,
        username: &str,
        password: &SecretString,
    ) -> Result<Bootstrap, Error> {
        let ctx = &self.context;
        let email = Email::parse(email).map_err(|e| Error::Invalid(vec![e]))?;
        let username = Username::parse(username).map_err(|e| Error::Invalid(vec![e]))?;
        let policy = ctx.config.password.policy();
        if let Err(errors) = policy.check("password", password, email.as_str(), username.as_str()) {
            if errors
                .iter()
                .any(|e| e.code == "too_long" || e.code == "too_short")
            {
                return Err(Error::Invalid(errors));
            }
            let rules: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
            tracing::warn!(
                ?rules,
                "the bootstrap admin's password breaks the password policy"
            );
        }
        for login in [
            Login::Email(email.as_str().to_owned()),
            Login::Username(username.as_str().to_owned()),
        ] {
            if ctx.store.credentials(&login, None).await?.is_some() {
                return Ok(Bootstrap::AlreadyThere);
            }
        }
        let hash = ctx
            .hasher
            .hash(SecretString::from(password.expose_secret().to_owned()))
            .await
            .map_err(Error::Internal)?;
        let now = ctx.now();
        let user = NewUser {
            id: Uuid::now_v7(),
            email: email.as_str().to_owned(),
            username: username.as_str().to_owned(),
            password_hash: hash,
            display_name: None,
            is_verified: true,
            created_at: now,
        };
        let effects = Effects {
            events: vec![ctx.event(
                "auth:user.registered",
                Some(user.id),
                json!({ "user_id": user.id, "username": user.username }),
            )],
            audit: vec![ctx.audit(
                "admin_bootstrap",
                None,
                Some(user.id),
                json!({ "roles": [DEFAULT_ROLE, ADMIN_ROLE] }),
                &RequestContext::default(),
            )],
        };
        let roles = [DEFAULT_ROLE.to_owned(), ADMIN_ROLE.to_owned()];
        match ctx.store.create_user(&user, &roles, &effects).await {
            Ok(()) => Ok(Bootstrap::Created(user.id)),
            // Another replica won the race.
            Err(StoreError::Conflict(_)) => Ok(Bootstrap::AlreadyThere),
            Err(error) => Err(error.into()),
        }
    }
}

/// What an administrator gives to create a user (SPEC §2, `POST /api/users`).
pub struct CreateUser {
    pub account: NewAccount,
    /// Global roles; the default role when absent.
    pub roles: Option<Vec<String>>,
    pub is_verified: bool,
}

impl Admin {
    /// Creates a user; the unique indexes decide "taken", the roles must exist.
    pub async fn create_user(
        &self,
        caller: &CurrentSession,
        input: CreateUser,
        request: &RequestContext,
    ) -> Result<User, Error> {
        let ctx = &self.context;
        let account = input.account;
        let mut roles = input.roles.unwrap_or_else(|| vec![DEFAULT_ROLE.to_owned()]);
        roles.sort();
        roles.dedup();
        let hash = ctx
            .hasher
            .hash(SecretString::from(account.password.expose().to_owned()))
            .await
            .map_err(Error::Internal)?;
        let user = NewUser {
            id: Uuid::now_v7(),
            email: account.email.as_str().to_owned(),
            username: account.username.as_str().to_owned(),
            password_hash: hash,
            display_name: account.display_name,
            is_verified: input.is_verified,
            created_at: ctx.now(),
        };
        let effects = Effects {
            events: vec![ctx.event(
                "auth:user.registered",
                Some(user.id),
                json!({ "user_id": user.id, "username": user.username }),
            )],
            audit: vec![ctx.audit(
                "user_created",
                Some(caller.user_id()),
                Some(user.id),
                json!({ "after": {
                    "email": user.email,
                    "username": user.username,
                    "roles": roles,
                    "is_verified": user.is_verified,
                } }),
                request,
            )],
        };
        ctx.store.create_user(&user, &roles, &effects).await?;
        self.user(user.id).await
    }

    /// A user who is not deleted, by id.
    pub async fn user(&self, id: Uuid) -> Result<User, Error> {
        let ctx = &self.context;
        ctx.store
            .user(id, ctx.territory())
            .await?
            .ok_or(Error::UserNotFound)
    }

    /// A user who is not deleted, by username or email.
    pub async fn find(&self, login: &Login) -> Result<User, Error> {
        let ctx = &self.context;
        ctx.store
            .credentials(login, ctx.territory())
            .await?
            .map(|credentials| credentials.user)
            .ok_or(Error::UserNotFound)
    }
}
