//! An administrator's change (`PATCH /api/users/{id}`, SPEC §2): the form as sent, its check
//! into an [`AdminPatch`] (emails and usernames parsed, profile fields bounded, a given hash of
//! bounded cost, a new password held against the policy), and the update with its audit.

use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use super::Admin;
use crate::crypto::password::check_given_hash;
use crate::domain::user::UserPatch;
use crate::domain::{AuditAction, Email, EndReason, Event, ProfilePatch, User, Username};
use crate::error::{Error, FieldError};
use crate::services::context::RequestContext;
use crate::services::sessions::CurrentSession;
use crate::store::Effects;

/// The fields of a change as the caller sent them; absent fields stay, `Some(None)` clears a
/// profile field.
pub struct PatchForm {
    pub email: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub is_verified: Option<bool>,
    pub is_active: Option<bool>,
    pub roles: Option<Vec<String>>,
    pub password: Option<SecretString>,
    pub password_hash: Option<String>,
}

/// An administrator's change before hashing: a new password, or a hash imported as is.
pub struct AdminPatch {
    pub fields: UserPatch,
    pub password: Option<SecretString>,
}

impl Admin {
    /// Applies an administrator's change (SPEC §2). Deactivating a user or setting their
    /// password ends their sessions at once; no change may leave no active global
    /// administrator. A territory admin (SPEC §5) changes members of its territory only, never
    /// global roles, a global admin or another administrator's credentials.
    pub async fn update_user(
        &self,
        caller: &CurrentSession,
        id: Uuid,
        form: PatchForm,
        request: &RequestContext,
    ) -> Result<User, Error> {
        let ctx = &self.context;
        let patch = self.parse_patch(caller, id, form).await?;
        let scope = ctx.admin_scope(caller).await?;
        if let Some(target) = ctx.changeable(&scope, id).await? {
            let credentials = patch.password.is_some()
                || patch.fields.password_hash.is_some()
                || patch.fields.email.is_some();
            if patch.fields.roles.is_some()
                || (credentials
                    && !scope.may_change_credentials(&target.user, &target.grants, &caller.user))
            {
                return Err(Error::Forbidden);
            }
        }
        let mut fields = patch.fields;
        if let Some(password) = patch.password {
            let hash = ctx.hasher.hash(password).await.map_err(Error::Internal)?;
            fields.password_hash = Some(hash);
        }
        let changed = changed_fields(&fields);
        let actor = caller.user_id();
        let effects = |(before, after, ended): &(User, Option<User>, Vec<Uuid>)| {
            let after = after.as_ref();
            let audit = ctx.audit(
                AuditAction::UserUpdated,
                Some(actor),
                Some(before.id),
                json!({ "fields": changed, "before": snapshot(before, &changed),
                        "after": after.map(|a| snapshot(a, &changed)) }),
                request,
            );
            Effects {
                events: vec![ctx.event(Event::UserUpdated {
                    user_id: before.id,
                    fields: changed.clone(),
                })],
                audit: vec![audit],
            }
            .and(ctx.sessions_ended(before.id, ended, EndReason::Admin))
        };
        ctx.store
            .update_user(id, &fields, ctx.now(), ctx.territory(), &effects)
            .await?
            .ok_or(Error::UserNotFound)
    }

    /// Checks every field of `form` and reports every problem at once; a new password is held
    /// against the policy with the email and username it will stand beside.
    async fn parse_patch(
        &self,
        caller: &CurrentSession,
        id: Uuid,
        body: PatchForm,
    ) -> Result<AdminPatch, Error> {
        let mut errors = Vec::new();
        let email = body
            .email
            .map(|raw| Email::parse(&raw).map_err(|e| errors.push(e)).ok())
            .map(|parsed| parsed.map(|e| e.as_str().to_owned()));
        let username = body
            .username
            .map(|raw| Username::parse(&raw).map_err(|e| errors.push(e)).ok())
            .map(|parsed| parsed.map(|u| u.as_str().to_owned()));
        let profile = match ProfilePatch::parse(body.display_name, body.avatar_url, body.bio) {
            Ok(profile) => Some(profile),
            Err(Error::Invalid(problems)) => {
                errors.extend(problems);
                None
            }
            Err(other) => return Err(other),
        };
        if body.password.is_some() && body.password_hash.is_some() {
            errors.push(FieldError::new(
                "password_hash",
                "conflict",
                "give password or password_hash, not both",
            ));
        }
        if let Some(Err(refused)) = body.password_hash.as_deref().map(check_given_hash) {
            errors.push(FieldError::new(
                "password_hash",
                refused.code(),
                refused.message(),
            ));
        }
        let password = match body.password {
            Some(password) => {
                let user = self.changeable_user(caller, id).await?;
                let email = email.clone().flatten().unwrap_or(user.email);
                let username = username.clone().flatten().unwrap_or(user.username);
                match self
                    .context
                    .config
                    .password
                    .policy()
                    .check("password", &password, &email, &username)
                {
                    Ok(checked) => Some(checked.into_secret()),
                    Err(problems) => {
                        errors.extend(problems);
                        None
                    }
                }
            }
            None => None,
        };
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let profile = profile.unwrap_or_default();
        let mut roles = body.roles;
        if let Some(roles) = roles.as_mut() {
            roles.sort();
            roles.dedup();
        }
        Ok(AdminPatch {
            fields: UserPatch {
                email: email.flatten(),
                username: username.flatten(),
                display_name: profile.display_name,
                avatar_url: profile.avatar_url,
                bio: profile.bio,
                is_verified: body.is_verified,
                is_active: body.is_active,
                roles,
                password_hash: body.password_hash,
            },
            password,
        })
    }
}

/// The names of the fields a patch sets; secrets are named, never shown.
fn changed_fields(patch: &UserPatch) -> Vec<&'static str> {
    [
        patch.email.as_ref().map(|_| "email"),
        patch.username.as_ref().map(|_| "username"),
        patch.display_name.as_ref().map(|_| "display_name"),
        patch.avatar_url.as_ref().map(|_| "avatar_url"),
        patch.bio.as_ref().map(|_| "bio"),
        patch.is_verified.map(|_| "is_verified"),
        patch.is_active.map(|_| "is_active"),
        patch.roles.as_ref().map(|_| "roles"),
        patch.password_hash.as_ref().map(|_| "password"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The audited values of `fields` (the password appears only as its name).
fn snapshot(user: &User, fields: &[&str]) -> serde_json::Value {
    let mut values = serde_json::Map::new();
    for field in fields {
        let value = match *field {
            "email" => json!(user.email),
            "username" => json!(user.username),
            "display_name" => json!(user.display_name),
            "avatar_url" => json!(user.avatar_url),
            "bio" => json!(user.bio),
            "is_verified" => json!(user.is_verified),
            "is_active" => json!(user.is_active),
            "roles" => json!(user.roles),
            _ => continue,
        };
        values.insert((*field).to_owned(), value);
    }
    serde_json::Value::Object(values)
}
