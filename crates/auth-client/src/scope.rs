//! The scope guard (SPEC §11): [`RequireScope`] lets a caller in when its token was granted a
//! scope, the way [`crate::RequireRole`] does for a role. Scopes are what a service identity
//! (a client's token) or an API key may do, so this is the guard for service-to-service routes.

use std::marker::PhantomData;
use std::ops::Deref;

use ::axum::extract::{FromRef, FromRequestParts};
use ::axum::http::request::Parts;

use crate::axum::{verified_offline, verified_online};
use crate::claims::Claims;
use crate::error::AuthError;
use crate::verifier::Verifier;

/// A scope name for [`RequireScope`].
///
/// ```
/// use auth_client::Scope;
///
/// /// May read orders.
/// pub struct OrdersRead;
///
/// impl Scope for OrdersRead {
///     const NAME: &'static str = "orders:read";
/// }
/// ```
pub trait Scope: Send + Sync + 'static {
    /// The scope as it appears in the token's space-separated `scope` claim.
    const NAME: &'static str;
}

/// How [`RequireScope`] checks the token: [`Offline`] (the default) or [`Online`].
pub trait Check: Send + Sync + 'static + sealed::Sealed {
    /// Whether auth-service is asked ([`Verifier::verify_online`]).
    const ONLINE: bool;
}

/// Verify the token here against the cached keys (no request per call). API keys are refused:
/// only auth-service can check them.
#[derive(Debug, Clone, Copy)]
pub struct Offline;

/// Also ask auth-service (one request per call): a deactivated client's token is refused at
/// once, and API keys (`ask_…`) are accepted.
#[derive(Debug, Clone, Copy)]
pub struct Online;

impl Check for Offline {
    const ONLINE: bool = false;
}

impl Check for Online {
    const ONLINE: bool = true;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Offline {}
    impl Sealed for super::Online {}
}

/// The caller, authenticated and granted scope `S`; otherwise 403 `forbidden` with reason
/// `missing_scope` and `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`
/// (RFC 6750 §3.1), or 401 when not authenticated at all.
///
/// Any caller whose token carries the scope passes: a client's token (client credentials), an
/// exchanged token, and with [`Online`] an API key. A user's login token has no scopes.
///
/// ```no_run
/// use auth_client::{Online, RequireScope, Scope};
///
/// pub struct OrdersRead;
/// impl Scope for OrdersRead {
///     const NAME: &'static str = "orders:read";
/// }
///
/// /// Verified offline: a client's token with `orders:read`.
/// async fn list_orders(caller: RequireScope<OrdersRead>) -> String {
///     format!("orders for {}", caller.sub)
/// }
///
/// /// Verified online: the same, plus API keys with `orders:read`.
/// async fn export_orders(caller: RequireScope<OrdersRead, Online>) -> String {
///     format!("export for {}", caller.sub)
/// }
/// ```
///
/// For a scope known only at run time, extract [`crate::AuthCaller`] and call
/// [`Claims::require_scope`], which returns the same rejection.
pub struct RequireScope<S: Scope, C: Check = Offline> {
    /// The caller's claims.
    pub claims: Claims,
    marker: PhantomData<fn() -> (S, C)>,
}

impl<S: Scope, C: Check> std::fmt::Debug for RequireScope<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireScope")
            .field("scope", &S::NAME)
            .field("online", &C::ONLINE)
            .field("claims", &self.claims)
            .finish()
    }
}

impl<S: Scope, C: Check> Deref for RequireScope<S, C> {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.claims
    }
}

impl<St, S, C> FromRequestParts<St> for RequireScope<S, C>
where
    Verifier: FromRef<St>,
    St: Send + Sync,
    S: Scope,
    C: Check,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, AuthError> {
        let claims = if C::ONLINE {
            verified_online(parts, state).await?
        } else {
            verified_offline(parts, state).await?
        };
        claims.require_scope(S::NAME)?;
        Ok(Self {
            claims,
            marker: PhantomData,
        })
    }
}
