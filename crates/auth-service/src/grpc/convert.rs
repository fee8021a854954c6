//! `auth.v1` messages to and from the use cases' types. Parsing at the door: proto3 cannot tell
//! an absent string from an empty one, so a required field left empty is `validation_failed`
//! with code `required`, as a missing JSON field is over HTTP. Secrets become `SecretString`
//! here and are never logged. Every string of a request passes through [`Fields`], which also
//! refuses a NUL character in any of them (PostgreSQL cannot store it in text), as HTTP does.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::pb;
use crate::crypto::jwt::Rejection;
use crate::domain::mfa::MfaMethod;
use crate::domain::User;
use crate::error::{Error, FieldError};
use crate::services::accounts::challenge::MfaChallenge;
use crate::services::accounts::login::LoginForm;
use crate::services::accounts::signup::{Signup, SignupForm};
use crate::services::api_keys::KeyHolder;
use crate::services::mfa::Factor;
use crate::services::oauth::Introspected;
use crate::services::TokenPair;

/// Collects every problem of a message's strings — an empty required one, a NUL in any —
/// then refuses them at once.
#[derive(Default)]
struct Fields(Vec<FieldError>);

impl Fields {
    /// A string that may be empty.
    fn text(&mut self, field: &str, value: String) -> String {
        if value.contains('\0') {
            self.0.push(FieldError::new(
                field,
                "invalid",
                "must not contain a NUL character",
            ));
        }
        value
    }

    fn optional(&mut self, field: &str, value: Option<String>) -> Option<String> {
        value.map(|value| self.text(field, value))
    }

    /// A string that must not be empty.
    fn take(&mut self, field: &str, value: String) -> String {
        if value.is_empty() {
            self.0.push(FieldError::new(
                field,
                "required",
                format!("missing field `{field}`"),
            ));
        }
        self.text(field, value)
    }

    fn secret(&mut self, field: &str, value: String) -> SecretString {
        SecretString::from(self.take(field, value))
    }

    fn check(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self.0))
        }
    }
}

/// The one required string of a message.
pub fn required(field: &str, value: String) -> Result<String, Error> {
    let mut fields = Fields::default();
    let value = fields.take(field, value);
    fields.check().map(|()| value)
}

/// An optional user id: empty means none.
pub fn optional_id(field: &str, value: &str) -> Result<Option<Uuid>, Error> {
    if value.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(value)
        .map(Some)
        .map_err(|_| Error::invalid(field, "invalid", "must be a UUID"))
}

pub fn signup_form(message: pb::SignUpRequest) -> Result<SignupForm, Error> {
    let mut fields = Fields::default();
    let form = SignupForm {
        email: fields.take("email", message.email),
        username: fields.take("username", message.username),
        password: fields.secret("password", message.password),
        display_name: fields.optional("display_name", message.display_name),
    };
    fields.check().map(|()| form)
}

pub fn login_form(message: pb::LoginRequest) -> Result<LoginForm, Error> {
    use pb::login_request::Identifier;
    let mut fields = Fields::default();
    let (email, username) = match message.identifier {
        Some(Identifier::Email(email)) => (Some(fields.take("email", email)), None),
        Some(Identifier::Username(username)) => (None, Some(fields.take("username", username))),
        None => (Some(fields.take("email", String::new())), None),
    };
    let password = fields.secret("password", message.password);
    fields.check().map(|()| LoginForm {
        email,
        username,
        password,
    })
}

/// The token and the new password of a reset.
pub fn reset(message: pb::ResetPasswordRequest) -> Result<(SecretString, SecretString), Error> {
    let mut fields = Fields::default();
    let token = fields.secret("token", message.token);
    let new_password = fields.secret("new_password", message.new_password);
    fields.check().map(|()| (token, new_password))
}

/// The `mfa_token` and the second factor of a `VerifyMfa`; an unknown method is
/// `validation_failed` as over HTTP.
pub fn verify_mfa(message: pb::VerifyMfaRequest) -> Result<(SecretString, Factor), Error> {
    let mut fields = Fields::default();
    let mfa_token = fields.secret("mfa_token", message.mfa_token);
    let method = fields.take("method", message.method);
    let code = fields.secret("code", message.code);
    fields.check()?;
    let method = MfaMethod::parse(&method)
        .ok_or_else(|| Error::invalid("method", "unknown", "must be `totp` or `recovery_code`"))?;
    Ok((mfa_token, Factor { method, code }))
}

/// A refresh token given in a message, if any.
pub fn refresh_token(value: String) -> Result<Option<SecretString>, Error> {
    let mut fields = Fields::default();
    let value = fields.text("refresh_token", value);
    fields
        .check()
        .map(|()| (!value.is_empty()).then(|| SecretString::from(value)))
}

fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn unix(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

/// A user as every answer shows it: never a password hash.
pub fn user(user: User) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email,
        username: user.username,
        display_name: user.display_name,
        avatar_url: user.avatar_url,
        bio: user.bio,
        is_verified: user.is_verified,
        is_active: user.is_active,
        roles: user.roles,
        territories: user.territories,
        created_at: Some(timestamp(user.created_at)),
        updated_at: Some(timestamp(user.updated_at)),
    }
}

pub fn tokens(pair: TokenPair) -> pb::TokenResponse {
    pb::TokenResponse {
        access_token: pair.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: pair.expires_in,
        refresh_token: pair.refresh_token.expose_secret().to_owned(),
        refresh_expires_in: pair.refresh_expires_in,
        session_id: pair.session_id.to_string(),
        user: Some(user(pair.user)),
        mfa_enrollment_required: pair.mfa_enrollment,
        ..pb::TokenResponse::default()
    }
}

/// Login's answer for an account with a second factor (SPEC §10): the challenge, no tokens.
pub fn challenge(challenge: MfaChallenge) -> pb::TokenResponse {
    pb::TokenResponse {
        mfa_required: true,
        mfa_token: challenge.mfa_token.expose_secret().to_owned(),
        methods: challenge.methods.into_iter().map(str::to_owned).collect(),
        expires_in: challenge.expires_in,
        ..pb::TokenResponse::default()
    }
}

pub fn signup(signup: Signup) -> pb::SignUpResponse {
    match signup {
        Signup::SignedIn(pair) => {
            let tokens = tokens(*pair);
            pb::SignUpResponse {
                user: tokens.user.clone(),
                tokens: Some(tokens),
            }
        }
        Signup::VerificationRequired(account) => pb::SignUpResponse {
            user: Some(user(*account)),
            tokens: None,
        },
    }
}

pub fn validation(verdict: Result<Introspected, Rejection>) -> pb::ValidateTokenResponse {
    match verdict {
        Ok(Introspected::User(claims)) => pb::ValidateTokenResponse {
            valid: true,
            user_id: claims.sub.to_string(),
            session_id: claims.sid.to_string(),
            username: claims.username,
            roles: claims.roles,
            territory: claims.territory,
            expires_at: Some(unix(claims.exp)),
            issued_at: Some(unix(claims.iat)),
            reason: String::new(),
            amr: claims.amr,
            ..pb::ValidateTokenResponse::default()
        },
        // SPEC §11: a client's token names its client and scope, and no user or session.
        Ok(Introspected::Client(claims)) => pb::ValidateTokenResponse {
            valid: true,
            client_id: claims.client_id,
            scope: claims.scope,
            roles: claims.roles,
            territory: claims.territory,
            expires_at: Some(unix(claims.exp)),
            issued_at: Some(unix(claims.iat)),
            ..pb::ValidateTokenResponse::default()
        },
        // SPEC §11: an API key names its owner, its scopes and the owner's roles now.
        Ok(Introspected::ApiKey(caller)) => {
            let roles = caller.roles().to_vec();
            let key = caller.key;
            let (user_id, username, client_id) = match caller.owner {
                KeyHolder::User(user) => (user.id.to_string(), user.username, String::new()),
                KeyHolder::Client { client, .. } => {
                    (String::new(), String::new(), client.id.to_string())
                }
            };
            pb::ValidateTokenResponse {
                valid: true,
                user_id,
                username,
                client_id,
                scope: key.scopes.join(" "),
                roles,
                expires_at: key.expires_at.map(|at| unix(at.timestamp())),
                issued_at: Some(unix(key.created_at.timestamp())),
                token_type: "api_key".to_owned(),
                ..pb::ValidateTokenResponse::default()
            }
        }
        Err(rejection) => pb::ValidateTokenResponse {
            reason: rejection.to_string(),
            ..pb::ValidateTokenResponse::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(error: Error) -> Vec<(String, String)> {
        match error {
            Error::Invalid(errors) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn every_empty_required_field_is_named() {
        let error = signup_form(pb::SignUpRequest::default()).err().unwrap();

        assert_eq!(
            fields(error),
            [
                ("email".into(), "required".into()),
                ("username".into(), "required".into()),
                ("password".into(), "required".into()),
            ]
        );
    }

    #[test]
    fn a_login_needs_an_identifier_and_a_password() {
        let missing = login_form(pb::LoginRequest::default()).err().unwrap();
        let by_username = login_form(pb::LoginRequest {
            identifier: Some(pb::login_request::Identifier::Username("alice".into())),
            password: "pw".into(),
        })
        .ok()
        .unwrap();

        assert_eq!(
            fields(missing),
            [
                ("email".into(), "required".into()),
                ("password".into(), "required".into()),
            ]
        );
        assert_eq!(by_username.username.as_deref(), Some("alice"));
        assert_eq!(by_username.email, None);
    }

    #[test]
    fn a_rejected_token_has_a_reason_and_no_claims() {
        let answer = validation(Err(Rejection::SessionEnded));

        assert!(!answer.valid);
        assert_eq!(answer.reason, "session_ended");
        assert!(answer.user_id.is_empty() && answer.expires_at.is_none());
    }
}
