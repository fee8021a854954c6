//! Refresh (SPEC §3) in named steps: the rotation in the store, then one step per outcome —
//! rotated, a retry inside the grace window, reuse, a lapsed session, an unknown token.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use super::Sessions;
use crate::crypto::tokens;
use crate::domain::{AuditAction, EndReason, Event, User};
use crate::error::Error;
use crate::services::context::{Context, RequestContext, TokenPair};
use crate::store::{Effects, Rotation};

impl Sessions {
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
        let events = |&(session_id, user_id): &(Uuid, Uuid)| {
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
                amr,
                scope,
            } => {
                let user = self
                    .active(user.map(|user| *user), user_id, session_id)
                    .await?;
                ctx.scoped_token_pair(
                    user,
                    session_id,
                    successor.plaintext,
                    ctx.refresh_ttl_seconds(),
                    amr,
                    scope,
                )
            }
            Rotation::Spent {
                session_id,
                user_id,
                spent_at,
                live_successor: Some(next),
                session_active,
            } if session_active && now - spent_at <= grace(ctx) => {
                self.retried(presented, (session_id, user_id), spent_at, next)
                    .await
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
            } => self.reused(session_id, user_id, request).await,
            Rotation::Lapsed {
                session_id,
                user_id,
            } => self.lapsed(session_id, user_id, request).await,
            Rotation::Unknown => Err(Error::InvalidRefreshToken),
        }
    }

    /// SPEC §3: a retry of the token just rotated (two tabs at once) gets the same successor
    /// again, and only while that successor is the session's live token.
    async fn retried(
        &self,
        presented: &SecretString,
        (session_id, user_id): (Uuid, Uuid),
        spent_at: DateTime<Utc>,
        next: Uuid,
    ) -> Result<TokenPair, Error> {
        let ctx = &self.context;
        let again = tokens::successor_token(presented, next);
        let stored = ctx.store.user(user_id, ctx.territory()).await?;
        let user = self.active(stored, user_id, session_id).await?;
        let elapsed = u64::try_from((ctx.now() - spent_at).num_seconds()).unwrap_or(0);
        let remaining = ctx.refresh_ttl_seconds().saturating_sub(elapsed);
        let (amr, scope) = self.grant(session_id).await?;
        ctx.scoped_token_pair(user, session_id, again.plaintext, remaining, amr, scope)
    }

    /// SPEC §10: a refreshed token says how its session was authenticated, as the first did;
    /// SPEC §11: and the scopes of the authorization code that started it, if one did.
    async fn grant(&self, session_id: Uuid) -> Result<(Vec<String>, Option<String>), Error> {
        let session = self.context.store.session(session_id).await?;
        Ok(session.map(|s| (s.amr, s.scope)).unwrap_or_default())
    }

    /// A spent token presented again past the grace window: the whole session ends
    /// (`auth:token.reuse_detected`, audited), and the caller is told so.
    async fn reused(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        request: &RequestContext,
    ) -> Result<TokenPair, Error> {
        let ctx = &self.context;
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
        let all = effects.clone().and(ended);
        if !ctx
            .store
            .end_session(session_id, EndReason::Reuse, ctx.now(), &all)
            .await?
        {
            // Already ended: the reuse is still recorded.
            ctx.store.record_effects(&effects).await?;
        }
        tracing::warn!(session.id = %session_id, user.id = %user_id, "refresh token reuse: session ended");
        Err(Error::RefreshTokenReused)
    }

    /// An expired token, or one of a session that lapsed: a session that lapsed without being
    /// ended yet is ended now, with its reason.
    async fn lapsed(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        request: &RequestContext,
    ) -> Result<TokenPair, Error> {
        let ctx = &self.context;
        if let Some(session) = ctx.store.session(session_id).await? {
            if let Some(reason) = session
                .lapsed(ctx.now())
                .filter(|_| session.ended_at.is_none())
            {
                self.end(session_id, user_id, reason, request).await?;
            }
        }
        Err(Error::InvalidRefreshToken)
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
}

fn grace(ctx: &Context) -> chrono::Duration {
    chrono::Duration::from_std(ctx.config.auth.refresh_grace_period)
        .unwrap_or(chrono::Duration::zero())
}
