//! Sessions and tokens: authenticating bearer tokens, refresh rotation with reuse detection,
//! listing and ending sessions, activity, logout and introspection.

mod cache;
mod refresh;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use self::cache::SessionCache;
use super::context::{Context, RequestContext};
use crate::crypto::jwt::{AccessClaims, KeyRing, Rejection};
use crate::crypto::tokens;
use crate::domain::api_key::ApiKey;
use crate::domain::mfa::ENROLLMENT_SCOPE;
use crate::domain::session::SessionState;
use crate::domain::{AuditAction, EndReason, Event, Session, User};
use crate::error::Error;
use crate::store::Effects;

/// An authenticated caller: a verified access token whose session is active, and the user
/// as stored now (read in the same query as the session).
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub claims: AccessClaims,
    pub user: User,
    /// An enrollment-only session (SPEC §10 `auth.require_mfa_for_roles`): it may enroll a
    /// second factor and little else, and holds no role.
    pub enrollment_only: bool,
    /// The API key the caller presented (SPEC §11), when it is not a session's token: `sid`
    /// and `jti` then name the key, and what it may call is its scopes' (`services/api_keys`).
    pub api_key: Option<ApiKey>,
}

impl CurrentSession {
    pub fn user_id(&self) -> Uuid {
        self.claims.sub
    }

    pub fn session_id(&self) -> Uuid {
        self.claims.sid
    }

    /// Whether the user holds `role` globally or in this deployment's territory, as stored
    /// now (read with the session): a revoked role stops working at once, not when the access
    /// token that still lists it expires.
    /// An enrollment-only session holds none (SPEC §10).
    pub fn has_role(&self, role: &str) -> bool {
        !self.enrollment_only && self.user.roles.iter().any(|held| held == role)
    }
}

#[derive(Clone)]
pub struct Sessions {
    context: Arc<Context>,
    /// What bearer checks read, trusted briefly (`cache.rs`, issue 20).
    cache: Arc<SessionCache>,
}

impl Sessions {
    pub fn new(context: Arc<Context>) -> Self {
        let cache = Arc::new(SessionCache::new(context.config.auth.session_cache_ttl));
        for result in ["hit", "miss"] {
            metrics::counter!("auth_session_cache_total", "result" => result).increment(0);
        }
        Self { context, cache }
    }

    /// Verifies an access token and its session (SPEC §3): ended sessions fail at once.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<Result<CurrentSession, Rejection>, Error> {
        let ctx = &self.context;
        let now = ctx.now();
        let mut verified = ctx.keys.ring().verify(token, now);
        if verified == Err(Rejection::UnknownKey) {
            if let Some(kid) = KeyRing::kid_of(token) {
                if ctx.keys.reload_for(&kid).await {
                    verified = ctx.keys.ring().verify(token, now);
                }
            }
        }
        let claims = match verified {
            // SPEC §11: an exchanged token acts for the user elsewhere, never here (its
            // audience is never this service's; this holds should the audience change).
            Ok(claims) if claims.act.is_some() => return Ok(Err(Rejection::WrongAudience)),
            Ok(claims) => claims,
            Err(rejection) => return Ok(Err(rejection)),
        };
        self.with_session(token, claims, now).await
    }

    /// A verified token's session: alive, of the token's user, its key not revoked; a lapsed
    /// session is ended on the way.
    async fn with_session(
        &self,
        token: &str,
        claims: AccessClaims,
        now: DateTime<Utc>,
    ) -> Result<Result<CurrentSession, Rejection>, Error> {
        let ctx = &self.context;
        let kid = KeyRing::kid_of(token).unwrap_or_default();
        let Some(state) = self.session_state(claims.sid, &kid, now).await? else {
            return Ok(Err(Rejection::SessionEnded));
        };
        if state.key_revoked {
            return Ok(Err(Rejection::KeyRevoked));
        }
        if state.user.id != claims.sub {
            return Ok(Err(Rejection::SessionEnded));
        }
        if let Some(reason) = state.lapsed(now) {
            if !state.ended {
                self.end(claims.sid, claims.sub, reason, &RequestContext::default())
                    .await?;
            }
            return Ok(Err(Rejection::SessionEnded));
        }
        // SPEC §10: the token says so when it was issued enrollment-only; the roles held now
        // say so when a listed role came after it.
        let enrollment_only = claims.scope.as_deref() == Some(ENROLLMENT_SCOPE)
            || claims.aud != ctx.config.auth.audience
            || ctx.enrollment_only(&state.user, &claims.amr);
        Ok(Ok(CurrentSession {
            claims,
            user: state.user,
            enrollment_only,
            api_key: None,
        }))
    }

    /// The state a bearer check needs: from the cache when an entry may be trusted, else
    /// from the store (and kept). The fence's epoch is read before the store is, so a change
    /// that commits meanwhile leaves the entry untrusted (`cache.rs`).
    async fn session_state(
        &self,
        session_id: Uuid,
        kid: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionState>, Error> {
        let ctx = &self.context;
        let epoch = ctx.store.write_epoch();
        if let Some(state) = self.cache.get(session_id, kid, epoch, now) {
            metrics::counter!("auth_session_cache_total", "result" => "hit").increment(1);
            return Ok(Some(state));
        }
        metrics::counter!("auth_session_cache_total", "result" => "miss").increment(1);
        let state = ctx
            .store
            .session_state(session_id, kid, ctx.territory())
            .await?;
        if let Some(state) = &state {
            self.cache.put(session_id, kid, state, epoch, now);
        }
        Ok(state)
    }

    /// Ends one session with its events; false when it was not active.
    pub async fn end(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        reason: EndReason,
        request: &RequestContext,
    ) -> Result<bool, Error> {
        let ctx = &self.context;
        let mut effects = ctx.sessions_ended(user_id, &[session_id], reason);
        if reason == EndReason::Logout {
            effects.events.push(ctx.event(Event::UserLogout {
                user_id,
                session_id,
            }));
            effects.audit.push(ctx.audit(
                AuditAction::Logout,
                Some(user_id),
                Some(user_id),
                json!({ "session_id": session_id }),
                request,
            ));
        }
        Ok(ctx
            .store
            .end_session(session_id, reason, ctx.now(), &effects)
            .await?)
    }

    /// Logout with a bearer token, or with a refresh token when there is none.
    pub async fn logout(
        &self,
        current: Option<&CurrentSession>,
        refresh: Option<&SecretString>,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let (session_id, user_id) = match (current, refresh) {
            (Some(current), _) => (current.session_id(), current.user_id()),
            (None, Some(token)) => ctx
                .store
                .refresh_token_session(&tokens::hash_token(token.expose_secret()))
                .await?
                .ok_or(Error::Unauthorized)?,
            (None, None) => return Err(Error::Unauthorized),
        };
        self.end(session_id, user_id, EndReason::Logout, request)
            .await?;
        Ok(())
    }

    /// The caller's current session.
    pub async fn current(&self, current: &CurrentSession) -> Result<Session, Error> {
        self.context
            .store
            .session(current.session_id())
            .await?
            .ok_or(Error::Unauthorized)
    }

    /// The caller's active sessions, newest first.
    pub async fn list(&self, current: &CurrentSession) -> Result<Vec<Session>, Error> {
        let ctx = &self.context;
        Ok(ctx
            .store
            .active_sessions(current.user_id(), ctx.now())
            .await?)
    }

    /// Ends one of the caller's sessions; another user's or an unknown id is "not found".
    pub async fn end_own(
        &self,
        current: &CurrentSession,
        session_id: Uuid,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let session = ctx.store.session(session_id).await?;
        match session {
            Some(session)
                if session.user_id == current.user_id() && session.lapsed(ctx.now()).is_none() =>
            {
                let mut effects =
                    ctx.sessions_ended(session.user_id, &[session.id], EndReason::Terminated);
                effects.events.push(ctx.event(Event::SessionDeleted {
                    user_id: session.user_id,
                    session_id: session.id,
                }));
                effects.audit.push(ctx.audit(
                    AuditAction::SessionTerminated,
                    Some(current.user_id()),
                    Some(session.user_id),
                    json!({ "session_id": session.id }),
                    request,
                ));
                if ctx
                    .store
                    .end_session(session.id, EndReason::Terminated, ctx.now(), &effects)
                    .await?
                {
                    Ok(())
                } else {
                    Err(Error::SessionNotFound)
                }
            }
            _ => Err(Error::SessionNotFound),
        }
    }

    /// Ends every session of the caller except the current one; returns how many ended.
    pub async fn end_all_others(&self, current: &CurrentSession) -> Result<u64, Error> {
        let ctx = &self.context;
        let user_id = current.user_id();
        let effects = |ids: &[Uuid]| {
            let mut effects = ctx.sessions_ended(user_id, ids, EndReason::Terminated);
            effects
                .events
                .push(ctx.event(Event::SessionsBulkTerminated {
                    user_id,
                    session_ids: ids.to_vec(),
                    count: ids.len(),
                    reason: EndReason::Terminated,
                }));
            effects
        };
        Ok(ctx
            .store
            .end_sessions_except(
                user_id,
                Some(current.session_id()),
                EndReason::Terminated,
                ctx.now(),
                &effects,
            )
            .await?)
    }

    /// Records activity on the current session, pushing its idle deadline forward.
    pub async fn record_activity(&self, current: &CurrentSession) -> Result<(), Error> {
        let ctx = &self.context;
        let now = ctx.now();
        let effects = Effects {
            events: vec![ctx.event(Event::SessionActivityUpdated {
                user_id: current.user_id(),
                session_id: current.session_id(),
            })],
            audit: Vec::new(),
        };
        if ctx
            .store
            .record_activity(current.session_id(), now, ctx.idle_deadline(now), &effects)
            .await?
        {
            Ok(())
        } else {
            Err(Error::Unauthorized)
        }
    }

    /// The claims of a valid token, or why it was refused (ValidateToken). The roles and
    /// username are the ones stored now (SPEC §5): a removed role is gone at once, not when
    /// the token expires. An enrollment-only session is no login for another service
    /// (SPEC §10): refused as `mfa_enrollment_required`.
    pub async fn validate(&self, token: &str) -> Result<Result<AccessClaims, Rejection>, Error> {
        Ok(self.authenticate(token).await?.and_then(|current| {
            if current.enrollment_only {
                return Err(Rejection::MfaEnrollmentRequired);
            }
            Ok(AccessClaims {
                roles: current.user.roles,
                username: current.user.username,
                ..current.claims
            })
        }))
    }

    /// A token made by token exchange (SPEC §11), checked online like a user's: its session
    /// must be alive (ending the session ends it), its roles are the ones stored now.
    pub async fn validate_delegated(
        &self,
        token: &str,
    ) -> Result<Result<AccessClaims, Rejection>, Error> {
        let ctx = &self.context;
        let now = ctx.now();
        let mut verified = ctx.keys.ring().verify_delegated(token, now);
        if verified == Err(Rejection::UnknownKey) {
            if let Some(kid) = KeyRing::kid_of(token) {
                if ctx.keys.reload_for(&kid).await {
                    verified = ctx.keys.ring().verify_delegated(token, now);
                }
            }
        }
        let claims = match verified {
            Ok(claims) => claims,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let exchanged = claims.clone();
        Ok(self
            .with_session(token, claims, now)
            .await?
            .and_then(|current| {
                // Its `aud` is another's by design; what still matters of SPEC §10 is the
                // roles held now.
                if ctx.enrollment_only(&current.user, &current.claims.amr) {
                    return Err(Rejection::MfaEnrollmentRequired);
                }
                Ok(AccessClaims {
                    roles: current.user.roles,
                    username: current.user.username,
                    ..exchanged
                })
            }))
    }

    /// RFC 7662: the claims of an active token, or `None`.
    pub async fn introspect(&self, token: &str) -> Result<Option<AccessClaims>, Error> {
        Ok(self.validate(token).await?.ok())
    }
}
