//! What a call carries besides its message — the caller (client address behind trusted
//! proxies, user agent, request id) and its bearer token — and the frame every RPC runs in:
//! its span, the request id echoed in `x-request-id`, errors turned into statuses.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::ConnectInfo;

use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::status::status_of;
use crate::caller::{self, TrustedProxies};
use crate::error::Error;
use crate::services::sessions::{CurrentSession, Sessions};
use crate::services::RequestContext;

/// The socket peer of a call: set by the accept loop (`http::serve`) as axum's `ConnectInfo`;
/// tonic's own server would have set its `TcpConnectInfo`.
fn peer<T>(request: &Request<T>) -> Option<SocketAddr> {
    request.remote_addr().or_else(|| {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0)
    })
}

pub struct Call {
    rpc: &'static str,
    request_id: String,
    pub context: RequestContext,
    bearer: Option<String>,
}

impl Call {
    /// Reads the metadata of `request`; a missing or unacceptable `x-request-id` is generated.
    pub fn of<T>(rpc: &'static str, request: &Request<T>, proxies: &TrustedProxies) -> Self {
        let headers = request.metadata().as_ref();
        let mut context = caller::request_context(proxies, peer(request), headers);
        let request_id = context
            .request_id
            .get_or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone();
        Self {
            rpc,
            request_id,
            context,
            bearer: caller::bearer(headers).map(str::to_owned),
        }
    }

    /// The caller of a valid bearer token, if the call carries one; a bad token is `None`.
    pub async fn session(&self, sessions: &Sessions) -> Result<Option<CurrentSession>, Error> {
        match &self.bearer {
            Some(token) => Ok(sessions.authenticate(token).await?.ok()),
            None => Ok(None),
        }
    }

    /// The caller of a valid bearer token; `unauthorized` without one. SPEC §10: an
    /// enrollment-only session is `mfa_enrollment_required` (gRPC serves no enrollment).
    pub async fn current(&self, sessions: &Sessions) -> Result<CurrentSession, Error> {
        let current = self.session(sessions).await?.ok_or(Error::Unauthorized)?;
        if current.enrollment_only {
            return Err(Error::MfaEnrollmentRequired);
        }
        Ok(current)
    }

    /// Runs `work` in the call's span and answers its message, or its error as a status.
    pub async fn answer<T>(
        &self,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<Response<T>, Status> {
        let span = tracing::info_span!("grpc", request.id = %self.request_id, rpc = self.rpc);
        let outcome = work.instrument(span.clone()).await;
        let _entered = span.enter();
        match outcome {
            Ok(message) => {
                let mut response = Response::new(message);
                if let Ok(value) = self.request_id.parse() {
                    response.metadata_mut().insert("x-request-id", value);
                }
                Ok(response)
            }
            Err(error) => Err(status_of(&error, &self.request_id)),
        }
    }
}
