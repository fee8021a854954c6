//! The events of SPEC §6: one variant per type, each carrying exactly the `data` documented in
//! `docs/events.md`. Field order is the order of the keys in `data`.

use serde::{Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use super::session::EndReason;

/// One event, its type named by its variant: a misspelled type does not compile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// An account was created: signup, an administrator, or the bootstrap admin.
    #[serde(rename = "auth:user.registered")]
    UserRegistered { user_id: Uuid, username: String },
    /// A password login opened a session.
    #[serde(rename = "auth:user.login")]
    UserLogin { user_id: Uuid, session_id: Uuid },
    /// The user ended their session (`/logout`).
    #[serde(rename = "auth:user.logout")]
    UserLogout { user_id: Uuid, session_id: Uuid },
    /// Profile fields, account fields or roles changed; `fields` names them, never their values.
    #[serde(rename = "auth:user.updated")]
    UserUpdated {
        user_id: Uuid,
        fields: Vec<&'static str>,
    },
    /// An administrator deleted the account.
    #[serde(rename = "auth:user.deleted")]
    UserDeleted { user_id: Uuid },
    /// A session opened (signup or login).
    #[serde(rename = "auth:session.created")]
    SessionCreated { user_id: Uuid, session_id: Uuid },
    /// A session ended for a reason; one event per session.
    #[serde(rename = "auth:session.terminated")]
    SessionTerminated {
        user_id: Uuid,
        session_id: Uuid,
        #[serde(serialize_with = "reason_text")]
        reason: EndReason,
    },
    /// The user ended one of their sessions by id.
    #[serde(rename = "auth:session.deleted")]
    SessionDeleted { user_id: Uuid, session_id: Uuid },
    /// The user ended all their other sessions.
    #[serde(rename = "auth:sessions.bulk_terminated")]
    SessionsBulkTerminated {
        user_id: Uuid,
        session_ids: Vec<Uuid>,
        count: usize,
        #[serde(serialize_with = "reason_text")]
        reason: EndReason,
    },
    /// A client reported activity, pushing the idle deadline.
    #[serde(rename = "auth:session.activity_updated")]
    SessionActivityUpdated { user_id: Uuid, session_id: Uuid },
    /// A refresh token was spent and its successor issued.
    #[serde(rename = "auth:token.refreshed")]
    TokenRefreshed { user_id: Uuid, session_id: Uuid },
    /// A spent refresh token came back after the grace window.
    #[serde(rename = "auth:token.reuse_detected")]
    TokenReuseDetected { user_id: Uuid, session_id: Uuid },
    /// The password was set through a reset link.
    #[serde(rename = "auth:password.reset")]
    PasswordReset { user_id: Uuid },
    /// The user changed their password.
    #[serde(rename = "auth:password.changed")]
    PasswordChanged { user_id: Uuid },
    /// The user followed their verification link.
    #[serde(rename = "auth:email.verified")]
    EmailVerified { user_id: Uuid },
    /// Too many failed logins locked the account's identifier.
    #[serde(rename = "auth:account.locked")]
    AccountLocked {
        user_id: Uuid,
        locked_for_seconds: u64,
    },
    /// A TOTP factor was confirmed: the account now asks for a second factor at login.
    #[serde(rename = "auth:mfa.enabled")]
    MfaEnabled { user_id: Uuid, method: &'static str },
    /// The account's second factors were removed, by the user (`by: "user"`) or an
    /// administrator (`by: "admin"`).
    #[serde(rename = "auth:mfa.disabled")]
    MfaDisabled { user_id: Uuid, by: &'static str },
    /// A wrong second-factor code was presented (`method`: `totp` or `recovery_code`).
    #[serde(rename = "auth:mfa.failed")]
    MfaFailed { user_id: Uuid, method: &'static str },
    /// An administrator created an OAuth client (SPEC §11); never its secret.
    #[serde(rename = "auth:client.created")]
    ClientCreated {
        client_id: Uuid,
        name: String,
        territory: Option<String>,
    },
    /// An administrator deleted an OAuth client; its tokens stop being introspected as active.
    #[serde(rename = "auth:client.deleted")]
    ClientDeleted { client_id: Uuid },
    /// A client was given a new secret; the old one works until `previous_secret_expires_at`.
    #[serde(rename = "auth:client.secret_rotated")]
    ClientSecretRotated {
        client_id: Uuid,
        previous_secret_expires_at: chrono::DateTime<chrono::Utc>,
    },
    /// An API key was created (SPEC §11) for a user (by that user) or a client (by an
    /// administrator); never the key, only its display prefix.
    #[serde(rename = "auth:api_key.created")]
    ApiKeyCreated {
        api_key_id: Uuid,
        owner_type: &'static str,
        owner_id: Uuid,
        name: String,
        prefix: String,
        scopes: Vec<String>,
    },
    /// An API key was revoked (deleted): it stops authenticating at once on this replica.
    #[serde(rename = "auth:api_key.revoked")]
    ApiKeyRevoked {
        api_key_id: Uuid,
        owner_type: &'static str,
        owner_id: Uuid,
        name: String,
        prefix: String,
        scopes: Vec<String>,
    },
    /// A client exchanged a user's access token for a token for `audience` (RFC 8693); `jti`
    /// names the token issued (never the token itself).
    #[serde(rename = "auth:token.exchanged")]
    TokenExchanged {
        user_id: Uuid,
        client_id: Uuid,
        audience: String,
        jti: Uuid,
    },
    /// A passkey was registered.
    #[serde(rename = "auth:passkey.added")]
    PasskeyAdded { user_id: Uuid, passkey_id: Uuid },
    /// A passkey was removed by its owner (`by: "user"`), or with all second factors by an
    /// administrator's reset (`by: "admin"`).
    #[serde(rename = "auth:passkey.removed")]
    PasskeyRemoved {
        user_id: Uuid,
        passkey_id: Uuid,
        by: &'static str,
    },
}

fn reason_text<S: Serializer>(reason: &EndReason, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(reason.as_str())
}

impl Event {
    /// Every event type, in the order of `docs/events.md`; a unit test holds it to `kind()`.
    pub const ALL_KINDS: &'static [&'static str] = &[
        "auth:user.registered",
        "auth:user.login",
        "auth:user.logout",
        "auth:user.updated",
        "auth:user.deleted",
        "auth:session.created",
        "auth:session.terminated",
        "auth:session.deleted",
        "auth:sessions.bulk_terminated",
        "auth:session.activity_updated",
        "auth:token.refreshed",
        "auth:token.reuse_detected",
        "auth:password.reset",
        "auth:password.changed",
        "auth:email.verified",
        "auth:account.locked",
        "auth:mfa.enabled",
        "auth:mfa.disabled",
        "auth:mfa.failed",
        "auth:client.created",
        "auth:client.deleted",
        "auth:client.secret_rotated",
        "auth:token.exchanged",
        "auth:passkey.added",
        "auth:passkey.removed",
        "auth:api_key.created",
        "auth:api_key.revoked",
    ];

    /// The event's type, as in its envelope and the outbox row.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::UserRegistered { .. } => "auth:user.registered",
            Event::UserLogin { .. } => "auth:user.login",
            Event::UserLogout { .. } => "auth:user.logout",
            Event::UserUpdated { .. } => "auth:user.updated",
            Event::UserDeleted { .. } => "auth:user.deleted",
            Event::SessionCreated { .. } => "auth:session.created",
            Event::SessionTerminated { .. } => "auth:session.terminated",
            Event::SessionDeleted { .. } => "auth:session.deleted",
            Event::SessionsBulkTerminated { .. } => "auth:sessions.bulk_terminated",
            Event::SessionActivityUpdated { .. } => "auth:session.activity_updated",
            Event::TokenRefreshed { .. } => "auth:token.refreshed",
            Event::TokenReuseDetected { .. } => "auth:token.reuse_detected",
            Event::PasswordReset { .. } => "auth:password.reset",
            Event::PasswordChanged { .. } => "auth:password.changed",
            Event::EmailVerified { .. } => "auth:email.verified",
            Event::AccountLocked { .. } => "auth:account.locked",
            Event::MfaEnabled { .. } => "auth:mfa.enabled",
            Event::MfaDisabled { .. } => "auth:mfa.disabled",
            Event::MfaFailed { .. } => "auth:mfa.failed",
            Event::ClientCreated { .. } => "auth:client.created",
            Event::ClientDeleted { .. } => "auth:client.deleted",
            Event::ClientSecretRotated { .. } => "auth:client.secret_rotated",
            Event::TokenExchanged { .. } => "auth:token.exchanged",
            Event::PasskeyAdded { .. } => "auth:passkey.added",
            Event::PasskeyRemoved { .. } => "auth:passkey.removed",
            Event::ApiKeyCreated { .. } => "auth:api_key.created",
            Event::ApiKeyRevoked { .. } => "auth:api_key.revoked",
        }
    }

    /// The user (or, for a client's events, the client) the event is about: the outbox
    /// orders the events of one subject by it.
    pub fn user_id(&self) -> Uuid {
        match self {
            Event::UserRegistered { user_id, .. }
            | Event::UserLogin { user_id, .. }
            | Event::UserLogout { user_id, .. }
            | Event::UserUpdated { user_id, .. }
            | Event::UserDeleted { user_id }
            | Event::SessionCreated { user_id, .. }
            | Event::SessionTerminated { user_id, .. }
            | Event::SessionDeleted { user_id, .. }
            | Event::SessionsBulkTerminated { user_id, .. }
            | Event::SessionActivityUpdated { user_id, .. }
            | Event::TokenRefreshed { user_id, .. }
            | Event::TokenReuseDetected { user_id, .. }
            | Event::PasswordReset { user_id }
            | Event::PasswordChanged { user_id }
            | Event::EmailVerified { user_id }
            | Event::AccountLocked { user_id, .. }
            | Event::MfaEnabled { user_id, .. }
            | Event::MfaDisabled { user_id, .. }
            | Event::MfaFailed { user_id, .. }
            | Event::PasskeyAdded { user_id, .. }
            | Event::PasskeyRemoved { user_id, .. }
            | Event::TokenExchanged { user_id, .. } => *user_id,
            Event::ClientCreated { client_id, .. }
            | Event::ClientDeleted { client_id }
            | Event::ClientSecretRotated { client_id, .. } => *client_id,
            Event::ApiKeyCreated { owner_id, .. } | Event::ApiKeyRevoked { owner_id, .. } => {
                *owner_id
            }
        }
    }

    /// The envelope's `data`: the variant's fields.
    pub fn into_data(self) -> Value {
        match serde_json::to_value(&self) {
            Ok(Value::Object(mut tagged)) => tagged.remove("data").unwrap_or(Value::Null),
            // Uuids, strings and numbers always serialise to an object with its data.
            _ => Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// One event of each variant: a variant added to `kind()` but not here fails the length check.
    fn one_of_each() -> Vec<Event> {
        let (user_id, session_id) = (Uuid::nil(), Uuid::max());
        vec![
            Event::UserRegistered {
                user_id,
                username: "alice".to_owned(),
            },
            Event::UserLogin {
                user_id,
                session_id,
            },
            Event::UserLogout {
                user_id,
                session_id,
            },
            Event::UserUpdated {
                user_id,
                fields: vec!["bio"],
            },
            Event::UserDeleted { user_id },
            Event::SessionCreated {
                user_id,
                session_id,
            },
            Event::SessionTerminated {
                user_id,
                session_id,
                reason: EndReason::Evicted,
            },
            Event::SessionDeleted {
                user_id,
                session_id,
            },
            Event::SessionsBulkTerminated {
                user_id,
                session_ids: vec![session_id],
                count: 1,
                reason: EndReason::Terminated,
            },
            Event::SessionActivityUpdated {
                user_id,
                session_id,
            },
            Event::TokenRefreshed {
                user_id,
                session_id,
            },
            Event::TokenReuseDetected {
                user_id,
                session_id,
            },
            Event::PasswordReset { user_id },
            Event::PasswordChanged { user_id },
            Event::EmailVerified { user_id },
            Event::AccountLocked {
                user_id,
                locked_for_seconds: 900,
            },
            Event::MfaEnabled {
                user_id,
                method: "totp",
            },
            Event::MfaDisabled {
                user_id,
                by: "user",
            },
            Event::MfaFailed {
                user_id,
                method: "totp",
            },
            Event::ClientCreated {
                client_id: user_id,
                name: "billing".to_owned(),
                territory: None,
            },
            Event::ClientDeleted { client_id: user_id },
            Event::ClientSecretRotated {
                client_id: user_id,
                previous_secret_expires_at: chrono::DateTime::UNIX_EPOCH,
            },
            Event::TokenExchanged {
                user_id,
                client_id: user_id,
                audience: "orders".to_owned(),
                jti: session_id,
            },
            Event::PasskeyAdded {
                user_id,
                passkey_id: user_id,
            },
            Event::PasskeyRemoved {
                user_id,
                passkey_id: user_id,
                by: "user",
            },
            Event::ApiKeyCreated {
                api_key_id: user_id,
                owner_type: "user",
                owner_id: user_id,
                name: "ci".to_owned(),
                prefix: "ask_abcdefgh".to_owned(),
                scopes: vec!["auth:read".to_owned()],
            },
            Event::ApiKeyRevoked {
                api_key_id: user_id,
                owner_type: "client",
                owner_id: user_id,
                name: "ci".to_owned(),
                prefix: "ask_abcdefgh".to_owned(),
                scopes: Vec::new(),
            },
        ]
    }

    #[test]
    fn each_kind_is_listed_exactly_once_and_matches_its_serde_tag() {
        let events = one_of_each();
        assert_eq!(events.len(), Event::ALL_KINDS.len());
        for event in &events {
            let listed = Event::ALL_KINDS
                .iter()
                .filter(|kind| **kind == event.kind())
                .count();
            assert_eq!(listed, 1, "{} in ALL_KINDS", event.kind());
            assert_eq!(serde_json::to_value(event).unwrap()["type"], event.kind());
            assert_eq!(event.user_id(), Uuid::nil());
        }
    }

    #[test]
    fn data_is_the_json_the_call_sites_built_by_hand() {
        let (user_id, session_id) = (Uuid::nil(), Uuid::max());
        let pairs = [
            (
                Event::UserRegistered {
                    user_id,
                    username: "alice".to_owned(),
                },
                json!({ "user_id": user_id, "username": "alice" }),
            ),
            (
                Event::UserUpdated {
                    user_id,
                    fields: vec!["territories", "roles"],
                },
                json!({ "user_id": user_id, "fields": ["territories", "roles"] }),
            ),
            (
                Event::SessionTerminated {
                    user_id,
                    session_id,
                    reason: EndReason::PasswordReset,
                },
                json!({ "user_id": user_id, "session_id": session_id, "reason": "password_reset" }),
            ),
            (
                Event::SessionsBulkTerminated {
                    user_id,
                    session_ids: vec![session_id],
                    count: 1,
                    reason: EndReason::Terminated,
                },
                json!({ "user_id": user_id, "session_ids": [session_id], "count": 1,
                        "reason": "terminated" }),
            ),
            (
                Event::UserDeleted { user_id },
                json!({ "user_id": user_id }),
            ),
            (
                Event::AccountLocked {
                    user_id,
                    locked_for_seconds: 900,
                },
                json!({ "user_id": user_id, "locked_for_seconds": 900 }),
            ),
        ];
        for (event, data) in pairs {
            let kind = event.kind();
            assert_eq!(
                serde_json::to_string(&event.into_data()).unwrap(),
                serde_json::to_string(&data).unwrap(),
                "{kind}"
            );
        }
    }
}
