//! An administrator's change as sent (`PATCH /api/users/{id}`, SPEC §2) and its check into an
//! [`AdminPatch`]: emails and usernames parsed, profile fields bounded, a given hash of
//! bounded cost, a new password held against the policy.

use secrecy::SecretString;
use uuid::Uuid;

use super::{Admin, AdminPatch};
use crate::crypto::password::check_given_hash;
use crate::domain::user::UserPatch;
use crate::domain::{Email, ProfilePatch, Username};
use crate::error::{Error, FieldError};
use crate::services::sessions::CurrentSession;

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

impl Admin {
    /// Checks every field of `form` and reports every problem at once; a new password is held
    /// against the policy with the email and username it will stand beside.
    pub(super) async fn parse_patch(
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
