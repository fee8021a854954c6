//! Around `AuthService`: a message tonic could not decode — over the size limit (tonic says
//! OUT_OF_RANGE) or not protobuf (tonic says INTERNAL) — is answered INVALID_ARGUMENT with the
//! stable codes `payload_too_large` and `malformed_body` (issue 7: bad input is the caller's
//! mistake, not ours); a call running past `server.request_timeout` is answered UNAVAILABLE
//! `request_timeout`, as HTTP answers 503; and every call counts in
//! `auth_grpc_requests_total{rpc,code}` and `auth_grpc_request_duration_seconds{rpc}` (SPEC §9,
//! as HTTP does).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Code, Status};
use tower::Service;

use super::status::{status_of, ERROR_CODE};
use crate::caller;
use crate::error::Error;

/// The RPCs of `auth.v1.AuthService`; anything else is labelled `unknown`, so a caller cannot
/// grow the metrics with made-up method names.
const RPCS: [&str; 8] = [
    "SignUp",
    "Login",
    "Refresh",
    "Logout",
    "ValidateToken",
    "GetUser",
    "ForgotPassword",
    "ResetPassword",
];

/// Wraps the generated `AuthServiceServer`.
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Edge<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<S: NamedService> NamedService for Edge<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Edge<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let rpc = rpc_label(request.uri().path());
        let request_id = caller::request_id(request.headers());
        let started = Instant::now();
        let answer = tokio::time::timeout(self.timeout, self.inner.call(request));
        Box::pin(async move {
            let mut response = match answer.await {
                Ok(response) => response?,
                Err(_) => status_of(&Error::Timeout, &fresh(request_id.clone())).into_http(),
            };
            answer_bad_input(&mut response, request_id);
            // An error is answered in the headers (trailers-only); success in the trailers.
            let code = response
                .extensions()
                .get::<Status>()
                .map_or(Code::Ok, Status::code);
            metrics::counter!("auth_grpc_requests_total", "rpc" => rpc, "code" => format!("{code:?}"))
                .increment(1);
            metrics::histogram!("auth_grpc_request_duration_seconds", "rpc" => rpc)
                .record(started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

fn rpc_label(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or_default();
    RPCS.into_iter()
        .find(|rpc| *rpc == name)
        .unwrap_or("unknown")
}

/// The client's request id, or a new one.
fn fresh(request_id: Option<String>) -> String {
    request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Our own statuses always name their stable code; one without it came from tonic decoding
/// the request.
fn answer_bad_input(response: &mut http::Response<Body>, request_id: Option<String>) {
    let Some(status) = response.extensions().get::<Status>() else {
        return;
    };
    if status.metadata().contains_key(ERROR_CODE) {
        return;
    }
    let error = match status.code() {
        Code::OutOfRange => Error::PayloadTooLarge,
        Code::Internal => Error::MalformedBody(status.message().to_owned()),
        _ => return,
    };
    let replaced = status_of(&error, &fresh(request_id));
    if replaced.add_header(response.headers_mut()).is_ok() {
        response.extensions_mut().insert(replaced);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_rpcs_get_their_own_label() {
        assert_eq!(rpc_label("/auth.v1.AuthService/Login"), "Login");
        assert_eq!(rpc_label("/auth.v1.AuthService/Nonsense123"), "unknown");
    }

    #[test]
    fn decoding_failures_become_invalid_argument_and_ours_stay() {
        let mut oversized: http::Response<Body> =
            Status::out_of_range("decoded message length too large").into_http();
        let mut ours: http::Response<Body> =
            status_of(&Error::Internal(anyhow::anyhow!("x")), "r").into_http();

        answer_bad_input(&mut oversized, Some("r".into()));
        answer_bad_input(&mut ours, None);

        let oversized = Status::from_header_map(oversized.headers()).unwrap();
        let ours = Status::from_header_map(ours.headers()).unwrap();
        assert_eq!(oversized.code(), Code::InvalidArgument);
        assert_eq!(
            oversized.metadata().get(ERROR_CODE).unwrap(),
            "payload_too_large"
        );
        assert_eq!(ours.code(), Code::Internal);
    }
}
