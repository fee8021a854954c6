//! Sessions and tokens: authenticating bearer tokens, refresh rotation with reuse detection,
//! listing and ending sessions, activity, logout and introspection.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use super::context::{Context, RequestContext, TokenPair};
use crate::crypto::jwt::{AccessClaims, KeyRing, Rejection};
use crate::crypto::tokens;
use crate::domain::{AuditAction, EndReason, Event, Session, User};
use crate::error::Error;
use crate::store::{Effects, Rotation};

/// An authenticated caller: a verified access token whose session is active, and the user
/// as stored now (read in the same query as the session).
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub claims: AccessClaims,
    pub user: User,
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
    pub fn has_role(&self, role: &str) -> bool {
        self.user.roles.iter().any(|held| held == role)
    }
}

#[derive(Clone)]
pub struct Sessions {
    context: Arc<Context>,
}

impl Sessions {
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
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
            Ok(claims) => claims,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let kid = KeyRing::kid_of(token).unwrap_or_default();
        let state = ctx
            .store
            .session_state(claims.sid, &kid, ctx.territory())
            .await?;
        let Some(state) = state else {
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
        Ok(Ok(CurrentSession {
            claims,
            user: state.user,
        }))
    }

    /// Spends a refresh token and answers its successor (SPEC §3 rotation, grace and reuse).
    pub async fn refresh(
        &self,
        presented: &SecretString,
        request: &RequestContext,
    ) -> Result<TokenPair, Error> {
        let ctx = &self.context;
        // SPEC §3: never spend the presented token and then fail for want of a signing key.
        ctx.keys.ready_to_sign().await?;
        let now = ctx.now();
        let hash = tokens::hash_token(presented.expose_secret());
        let successor_id = Uuid::now_v7();
        let successor = tokens::successor_token(presented, successor_id);
        // The store files the successor under the presented token's session.
        let mut row = ctx.refresh_row(Uuid::nil(), &successor, now);
        row.id = successor_id;
        let events = |session_id: Uuid, user_id: Uuid| {
            vec![ctx.event(Event::TokenRefreshed {
                user_id,
                session_id,
            })]
        };
        // The session is known only inside the store; the event names it from the row.
        let rotation = ctx
            .store
            .rotate_refresh_token(
                &hash,
                &row,
                now,
                ctx.idle_deadline(now),
                ctx.territory(),
                &events,
            )
            .await?;
        match rotation {
            Rotation::Rotated {
                session_id,
                user_id,
                user,
            } => {
                let user = self
                    .active(user.map(|user| *user), user_id, session_id)
                    .await?;
                ctx.token_pair(
                    user,
                    session_id,
                    successor.plaintext,
                    ctx.refresh_ttl_seconds(),
                )
            }
            Rotation::Spent {
                session_id,
                user_id,
                spent_at,
                live_successor: Some(next),
                session_active,
            } if session_active && now - spent_at <= grace(ctx) => {
                // SPEC §3: a retry of the token just rotated (two tabs at once) gets the same
                // successor again, and only while that successor is the session's live token.
                let again = tokens::successor_token(presented, next);
                let stored = ctx.store.user(user_id, ctx.territory()).await?;
                let user = self.active(stored, user_id, session_id).await?;
                let elapsed = u64::try_from((now - spent_at).num_seconds()).unwrap_or(0);
                let remaining = ctx.refresh_ttl_seconds().saturating_sub(elapsed);
                ctx.token_pair(user, session_id, again.plaintext, remaining)
            }
            Rotation::Spent {
                spent_at,
                session_active: true,
                live_successor: None,
                ..
            } if now - spent_at <= grace(ctx) => {
                // Inside the grace window, but the successor has been spent in turn: an older
                // token. It is answered nothing (never a spent token, never a walk down the
                // family to the live one), and the session, whose live token is elsewhere,
                // goes on.
                Err(Error::InvalidRefreshToken)
            }
            Rotation::Spent {
                session_id,
                user_id,
                ..
            } => {
                let effects = Effects {
                    events: vec![ctx.event(Event::TokenReuseDetected {
                        user_id,
                        session_id,
                    })],
                    audit: vec![ctx.audit(
                        AuditAction::RefreshReuse,
                        None,
                        Some(user_id),
                        json!({ "session_id": session_id }),
                        request,
                    )],
                };
                let ended = ctx.sessions_ended(user_id, &[session_id], EndReason::Reuse);
                if !ctx
                    .store
                    .end_session(
                        session_id,
                        EndReason::Reuse,
                        now,
                        &effects.clone().and(ended),
                    )
                    .await?
                {
                    ctx.store.record_effects(&effects).await?;
                }
                tracing::warn!(session.id = %session_id, user.id = %user_id, "refresh token reuse: session ended");
                Err(Error::RefreshTokenReused)
            }
            Rotation::Lapsed {
                session_id,
                user_id,
            } => {
                if let Some(session) = ctx.store.session(session_id).await? {
                    if let Some(reason) = session.lapsed(now).filter(|_| session.ended_at.is_none())
                    {
                        self.end(session_id, user_id, reason, request).await?;
                    }
                }
                Err(Error::InvalidRefreshToken)
            }
            Rotation::Unknown => Err(Error::InvalidRefreshToken),
        }
    }

    /// The stored user of a session being refreshed; an inactive or deleted (`None`) user
    /// ends the session.
    async fn active(
        &self,
        stored: Option<User>,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<User, Error> {
        match stored {
            Some(user) if user.is_active => Ok(user),
            _ => {
                self.end(
                    session_id,
                    user_id,
                    EndReason::Admin,
                    &RequestContext::default(),
                )
                .await?;
                Err(Error::InvalidRefreshToken)
            }
        }
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
    /// the token expires.
    pub async fn validate(&self, token: &str) -> Result<Result<AccessClaims, Rejection>, Error> {
        Ok(self.authenticate(token).await?.map(|current| AccessClaims {
            roles: current.user.roles,
            username: current.user.username,
            ..current.claims
        }))
    }

    /// RFC 7662: the claims of an active token, or `None`.
    pub async fn introspect(&self, token: &str) -> Result<Option<AccessClaims>, Error> {
        Ok(self.validate(token).await?.ok())
    }
}

fn grace(ctx: &Context) -> chrono::Duration {
    chrono::Duration::from_std(ctx.config.auth.refresh_grace_period)
        .unwrap_or(chrono::Duration::zero())
}
