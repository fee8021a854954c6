//! Administration of users: the first administrator, and (SPEC §2) the `/api/users` use cases.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

pub mod patch;

use super::context::{Context, RequestContext};
use super::sessions::CurrentSession;
use crate::domain::authority::AdminScope;
use crate::domain::user::DEFAULT_ROLE;
use crate::domain::{AuditAction, Email, EndReason, Event, Login, NewAccount, User, Username};
use crate::error::Error;
use crate::limits::Scope;
use crate::store::{Effects, NewUser, StoreError, UserQuery};

pub use crate::domain::authority::ADMIN_ROLE;

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
            events: vec![ctx.event(Event::UserRegistered {
                user_id: user.id,
                username: user.username.clone(),
            })],
            audit: vec![ctx.audit(
                AuditAction::AdminBootstrap,
                None,
                Some(user.id),
                json!({ "roles": [DEFAULT_ROLE, ADMIN_ROLE] }),
                &RequestContext::default(),
            )],
        };
        let roles = [DEFAULT_ROLE.to_owned(), ADMIN_ROLE.to_owned()];
        match ctx.store.create_user(&user, &roles, None, &effects).await {
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
    /// Creates a user; the unique indexes decide "taken", the roles must exist. A territory
    /// admin's new user joins its territory and holds the default role only.
    pub async fn create_user(
        &self,
        caller: &CurrentSession,
        input: CreateUser,
        request: &RequestContext,
    ) -> Result<User, Error> {
        let ctx = &self.context;
        let scope = ctx.admin_scope(caller).await?;
        let account = input.account;
        let mut roles = input.roles.unwrap_or_else(|| vec![DEFAULT_ROLE.to_owned()]);
        roles.sort();
        roles.dedup();
        if scope != AdminScope::Global && roles != [DEFAULT_ROLE] {
            return Err(Error::Forbidden);
        }
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
            events: vec![ctx.event(Event::UserRegistered {
                user_id: user.id,
                username: user.username.clone(),
            })],
            audit: vec![ctx.audit(
                AuditAction::UserCreated,
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
        ctx.store
            .create_user(&user, &roles, scope.territory(), &effects)
            .await?;
        ctx.store
            .user(user.id, ctx.territory())
            .await?
            .ok_or(Error::UserNotFound)
    }

    /// A user who is not deleted and within the caller's reach (SPEC §5), by id; anyone else
    /// is `user_not_found`, so ids cannot be probed.
    pub async fn user(
        &self,
        caller: &CurrentSession,
        id: Uuid,
        request: &RequestContext,
    ) -> Result<User, Error> {
        let scope = self.lookup_scope(caller, request).await?;
        let ctx = &self.context;
        let found = ctx.store.user(id, ctx.territory()).await?;
        found
            .filter(|user| scope.sees(user))
            .ok_or(Error::UserNotFound)
    }

    /// A user the caller may change (see [`Admin::update_user`]): for a territory admin
    /// `forbidden` outside its reach, for a global admin `user_not_found` when missing.
    pub async fn changeable_user(&self, caller: &CurrentSession, id: Uuid) -> Result<User, Error> {
        let ctx = &self.context;
        let scope = ctx.admin_scope(caller).await?;
        if let Some(target) = ctx.changeable(&scope, id).await? {
            return Ok(target.user);
        }
        ctx.store
            .user(id, ctx.territory())
            .await?
            .ok_or(Error::UserNotFound)
    }

    /// A user who is not deleted and within the caller's reach, by username or email.
    pub async fn find(
        &self,
        caller: &CurrentSession,
        login: &Login,
        request: &RequestContext,
    ) -> Result<User, Error> {
        let scope = self.lookup_scope(caller, request).await?;
        let ctx = &self.context;
        let found = ctx.store.credentials(login, ctx.territory()).await?;
        found
            .map(|credentials| credentials.user)
            .filter(|user| scope.sees(user))
            .ok_or(Error::UserNotFound)
    }

    /// Every administrative lookup counts against the per-address lookup limit (SPEC §4),
    /// then answers within the caller's scope.
    async fn lookup_scope(
        &self,
        caller: &CurrentSession,
        request: &RequestContext,
    ) -> Result<AdminScope, Error> {
        self.context.limit_by_ip(Scope::LookupIp, request).await?;
        self.context.admin_scope(caller).await
    }
}

/// A page of users and the cursor of the next one.
pub struct UserPage {
    pub users: Vec<User>,
    pub next_cursor: Option<String>,
}

impl Admin {
    /// Keyset pagination over `(created_at, id)`: stable under concurrent inserts, no offsets.
    /// A territory admin lists the members of its territory.
    pub async fn list_users(
        &self,
        caller: &CurrentSession,
        search: Option<&str>,
        limit: u32,
        cursor: Option<&str>,
        request: &RequestContext,
    ) -> Result<UserPage, Error> {
        let scope = self.lookup_scope(caller, request).await?;
        let ctx = &self.context;
        let after = cursor.map(decode_cursor).transpose()?;
        let query = UserQuery {
            search: search.filter(|q| !q.is_empty()),
            after,
            limit: limit + 1,
            territory: ctx.territory(),
            member_of: scope.territory(),
        };
        let mut users = ctx.store.list_users(&query).await?;
        let more = users.len() > limit as usize;
        users.truncate(limit as usize);
        let next_cursor = more
            .then(|| users.last().map(|u| encode_cursor(u.created_at, u.id)))
            .flatten();
        Ok(UserPage { users, next_cursor })
    }

    /// Soft-deletes a user: their email and username become free, their sessions end.
    pub async fn delete_user(
        &self,
        caller: &CurrentSession,
        id: Uuid,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let scope = ctx.admin_scope(caller).await?;
        ctx.changeable(&scope, id).await?;
        let actor = caller.user_id();
        let effects = |(before, _, ended): &(User, Option<User>, Vec<Uuid>)| {
            Effects {
                events: vec![ctx.event(Event::UserDeleted { user_id: before.id })],
                audit: vec![ctx.audit(
                    AuditAction::UserDeleted,
                    Some(actor),
                    Some(before.id),
                    json!({ "before": { "email": before.email, "username": before.username } }),
                    request,
                )],
            }
            .and(ctx.sessions_ended(before.id, ended, EndReason::Admin))
        };
        if ctx
            .store
            .delete_user(id, ctx.now(), ctx.territory(), &effects)
            .await?
        {
            Ok(())
        } else {
            Err(Error::UserNotFound)
        }
    }
}

fn encode_cursor(created_at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", created_at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), Error> {
    let invalid = || {
        Error::invalid(
            "cursor",
            "invalid_cursor",
            "is not a cursor this service issued",
        )
    };
    let text = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(invalid)?;
    let (micros, id) = text.split_once('|').ok_or_else(invalid)?;
    let created_at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((created_at, id))
}
