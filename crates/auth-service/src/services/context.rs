//! What every use case shares: store, clock, configuration, hasher, keys, limiter, mailer; and the pieces
//! common to several of them (issuing tokens, building events and audit entries).

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::keys::Keys;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::jwt::{enrollment_audience, AccessClaims};
use crate::crypto::passkeys::RelyingParty;
use crate::crypto::password::PasswordHasher;
use crate::crypto::tokens::{self, OpaqueToken};
use crate::domain::client::{roles_apply, Client};
use crate::domain::mfa::{self, ENROLLMENT_SCOPE};
use crate::domain::{AuditAction, Device, EndReason, Event, User};
use crate::error::Error;
use crate::limits::Limiter;
use crate::mail::Mailer;
use crate::store::{AuditEntry, Effects, NewRefreshToken, NewSession, OutboxEvent, Store};

/// Work done after the answer (`Context::spawn_after_answer`); its name is the `task` label of
/// `auth_background_dropped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAnswer {
    ResetLink,
    VerificationLink,
}

impl AfterAnswer {
    pub const ALL: [AfterAnswer; 2] = [AfterAnswer::ResetLink, AfterAnswer::VerificationLink];

    pub fn as_str(self) -> &'static str {
        match self {
            AfterAnswer::ResetLink => "reset_link",
            AfterAnswer::VerificationLink => "verification_link",
        }
    }
}

/// Puts every use-case counter with a closed set of labels at 0, so rates and alerts on them
/// have a series before the first login, failure or dropped task (issue 16).
pub(super) fn register_metrics() {
    for operation in ["login", "signup"] {
        for status in ["success", "failure"] {
            metrics::counter!("auth_operations_total", "operation" => operation, "status" => status)
                .increment(0);
        }
    }
    for kind in ["access", "refresh"] {
        metrics::counter!("auth_tokens_generated_total", "type" => kind).increment(0);
    }
    for task in AfterAnswer::ALL {
        metrics::counter!("auth_background_dropped_total", "task" => task.as_str()).increment(0);
    }
}

/// Who is asking, as far as the transport can tell.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// The answer to signup, login and refresh.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: SecretString,
    pub refresh_expires_in: u64,
    pub session_id: Uuid,
    pub user: User,
    /// An enrollment-only session (SPEC §10 `auth.require_mfa_for_roles`).
    pub mfa_enrollment: bool,
    /// The access token's `scope`: `mfa_enrollment` for an enrollment-only session, the
    /// scopes an authorization code granted (SPEC §11), else none.
    pub scope: Option<String>,
}

pub struct Context {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub config: Arc<Config>,
    pub hasher: PasswordHasher,
    pub keys: Keys,
    pub limiter: Limiter,
    pub mailer: Mailer,
    /// Names this replica in event envelopes.
    pub pod_id: String,
    /// Bounds the work done after an answer has gone out (mailing links).
    pub background: Arc<Semaphore>,
    /// The WebAuthn relying party of passkeys (SPEC §10).
    pub relying_party: Arc<RelyingParty>,
}

/// Tasks that may run after their answer, at once; more are dropped and counted, so a flood
/// of forgot-password requests cannot pile up tasks waiting for the database.
pub const BACKGROUND_TASKS: usize = 64;

impl Context {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn territory(&self) -> Option<&str> {
        self.config.server.territory.as_deref()
    }

    /// A client's roles where they apply on this deployment, among the roles that exist now
    /// (a deleted role is not handed out): for its tokens and its API keys (SPEC §11).
    pub async fn client_roles_now(&self, client: &Client) -> Result<Vec<String>, Error> {
        if client.roles.is_empty() || !roles_apply(client.territory.as_deref(), self.territory()) {
            return Ok(Vec::new());
        }
        let known = self.store.roles().await?;
        Ok(client
            .roles
            .iter()
            .filter(|role| known.iter().any(|r| &r.name == *role))
            .cloned()
            .collect())
    }

    fn duration(value: std::time::Duration) -> chrono::Duration {
        chrono::Duration::from_std(value).unwrap_or(chrono::Duration::MAX)
    }

    pub fn idle_deadline(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + Self::duration(self.config.auth.session_idle_timeout)
    }

    /// A new session for `user_id` with its first refresh token.
    pub fn new_session(
        &self,
        user_id: Uuid,
        amr: &[&str],
        request: &RequestContext,
    ) -> Result<(NewSession, NewRefreshToken, OpaqueToken), Error> {
        let now = self.now();
        let session = NewSession {
            id: Uuid::now_v7(),
            user_id,
            ip_address: request.ip.map(|ip| ip.to_string()),
            user_agent: request.user_agent.clone(),
            device: request
                .user_agent
                .as_deref()
                .map(Device::from_user_agent)
                .unwrap_or_default(),
            created_at: now,
            expires_at: now + Self::duration(self.config.auth.session_lifetime),
            idle_expires_at: self.idle_deadline(now),
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
            scope: None,
        };
        let token = tokens::random_token().map_err(Error::Internal)?;
        let row = self.refresh_row(session.id, &token, now);
        Ok((session, row, token))
    }

    pub fn refresh_row(
        &self,
        session_id: Uuid,
        token: &OpaqueToken,
        now: DateTime<Utc>,
    ) -> NewRefreshToken {
        NewRefreshToken {
            id: Uuid::now_v7(),
            session_id,
            hash: token.hash.clone(),
            created_at: now,
            expires_at: now + Self::duration(self.config.auth.refresh_token_ttl),
        }
    }

    /// Signs an access token for `user` in `session_id` and pairs it with the refresh token.
    /// SPEC §10 `auth.require_mfa_for_roles`: for an enrollment-only session the token carries
    /// no roles, the `scope` `mfa_enrollment` and an audience of its own, so no other verifier
    /// takes it for a login.
    pub fn token_pair(
        &self,
        user: User,
        session_id: Uuid,
        refresh: SecretString,
        refresh_expires_in: u64,
        amr: Vec<String>,
    ) -> Result<TokenPair, Error> {
        self.scoped_token_pair(user, session_id, refresh, refresh_expires_in, amr, None)
    }

    /// [`Self::token_pair`] for a session an authorization code started: its access tokens
    /// carry the scopes the code granted (SPEC §11), unless it is enrollment-only.
    pub fn scoped_token_pair(
        &self,
        user: User,
        session_id: Uuid,
        refresh: SecretString,
        refresh_expires_in: u64,
        amr: Vec<String>,
        granted: Option<String>,
    ) -> Result<TokenPair, Error> {
        let now = self.now().timestamp();
        let ttl = self.config.auth.access_token_ttl.as_secs();
        let mfa_enrollment = self.enrollment_only(&user, &amr);
        let (aud, roles, scope) = if mfa_enrollment {
            let aud = enrollment_audience(&self.config.auth.audience);
            (aud, Vec::new(), Some(ENROLLMENT_SCOPE.to_owned()))
        } else {
            (
                self.config.auth.audience.clone(),
                user.roles.clone(),
                granted,
            )
        };
        let claims = AccessClaims {
            iss: self.config.issuer().to_owned(),
            aud,
            sub: user.id,
            sid: session_id,
            jti: Uuid::now_v7(),
            iat: now,
            nbf: now,
            exp: now + i64::try_from(ttl).unwrap_or(i64::MAX / 2),
            email: user.email.clone(),
            username: user.username.clone(),
            roles,
            territory: self.config.server.territory.clone(),
            verified: user.is_verified,
            amr,
            scope,
            act: None,
        };
        let access_token = self.keys.sign(&claims)?;
        metrics::counter!("auth_tokens_generated_total", "type" => "access").increment(1);
        metrics::counter!("auth_tokens_generated_total", "type" => "refresh").increment(1);
        Ok(TokenPair {
            access_token,
            expires_in: ttl,
            refresh_token: refresh,
            refresh_expires_in,
            session_id,
            user,
            mfa_enrollment,
            scope: claims.scope,
        })
    }

    /// Whether a session of `user` authenticated with `amr` is enrollment-only (SPEC §10).
    pub fn enrollment_only(&self, user: &User, amr: &[String]) -> bool {
        mfa::enrollment_only(&self.config.auth.require_mfa_for_roles, &user.roles, amr)
    }

    pub fn refresh_ttl_seconds(&self) -> u64 {
        self.config.auth.refresh_token_ttl.as_secs()
    }

    /// An event in the envelope of SPEC §6, its outbox row keyed by the user it is about.
    pub fn event(&self, event: Event) -> OutboxEvent {
        let id = Uuid::now_v7();
        let occurred_at = self.now();
        let kind = event.kind();
        let user_id = event.user_id();
        let mut envelope = json!({
            "id": id,
            "type": kind,
            "occurred_at": occurred_at,
            "pod_id": self.pod_id,
            "territory": self.config.server.territory,
        });
        envelope["data"] = event.into_data();
        OutboxEvent {
            id,
            event_type: kind,
            user_id: Some(user_id),
            occurred_at,
            envelope,
        }
    }

    /// An audit entry about `user_id`, done by `actor_id`, from `request`.
    pub fn audit(
        &self,
        action: AuditAction,
        actor_id: Option<Uuid>,
        user_id: Option<Uuid>,
        details: Value,
        request: &RequestContext,
    ) -> AuditEntry {
        AuditEntry {
            id: Uuid::now_v7(),
            occurred_at: self.now(),
            actor_id,
            user_id,
            action: action.as_str(),
            target_type: user_id.map(|_| "user"),
            target_id: user_id.map(|id| id.to_string()),
            details,
            ip_address: request.ip.map(|ip| ip.to_string()),
            request_id: request.request_id.clone(),
        }
    }

    /// Runs `work` after the answer, if a background slot is free; otherwise drops it, logs
    /// `task` and counts `auth_background_dropped_total`.
    pub fn spawn_after_answer(
        self: &Arc<Self>,
        task: AfterAnswer,
        work: impl std::future::Future<Output = Result<(), Error>> + Send + 'static,
    ) {
        let what = task.as_str();
        let Ok(permit) = self.background.clone().try_acquire_owned() else {
            metrics::counter!("auth_background_dropped_total", "task" => what).increment(1);
            tracing::warn!(task = what, "too much background work; dropped");
            return;
        };
        tokio::spawn(async move {
            if let Err(error) = work.await {
                tracing::warn!(task = what, error = %error, "background work failed");
            }
            drop(permit);
        });
    }

    /// The effects of an identifier getting locked: audited, and an event when it names a user.
    pub fn locked_out(
        &self,
        user_id: Option<Uuid>,
        lockout: std::time::Duration,
        request: &RequestContext,
    ) -> Effects {
        let details = json!({ "locked_for_seconds": lockout.as_secs() });
        Effects {
            events: user_id
                .map(|user_id| {
                    self.event(Event::AccountLocked {
                        user_id,
                        locked_for_seconds: lockout.as_secs(),
                    })
                })
                .into_iter()
                .collect(),
            audit: vec![self.audit(AuditAction::Lockout, None, user_id, details, request)],
        }
    }

    /// What a login records (SPEC §6): `auth:user.login` and `auth:session.created`, and the
    /// `login_success` audit entry with the session and `details`.
    pub fn login_effects(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        mut details: Value,
        request: &RequestContext,
    ) -> Effects {
        details["session_id"] = json!(session_id);
        Effects {
            events: vec![
                self.event(Event::UserLogin {
                    user_id,
                    session_id,
                }),
                self.event(Event::SessionCreated {
                    user_id,
                    session_id,
                }),
            ],
            audit: vec![self.audit(
                AuditAction::LoginSuccess,
                Some(user_id),
                Some(user_id),
                details,
                request,
            )],
        }
    }

    /// The effects of sessions ending: one `auth:session.terminated` per session.
    pub fn sessions_ended(&self, user_id: Uuid, ids: &[Uuid], reason: EndReason) -> Effects {
        Effects {
            events: ids
                .iter()
                .map(|&session_id| {
                    self.event(Event::SessionTerminated {
                        user_id,
                        session_id,
                        reason,
                    })
                })
                .collect(),
            audit: Vec::new(),
        }
    }
}
