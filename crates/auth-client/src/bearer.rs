//! A tower layer that authorizes outgoing requests with a [`TokenSource`]'s token, for any
//! client built on tower's `Service<http::Request<B>>`: a tonic channel, a hyper client, a
//! `tower::ServiceBuilder` stack.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use tower_layer::Layer;
use tower_service::Service;

use crate::token_source::TokenSource;

/// The error of a [`Bearer`] service: the inner service's, or the [`crate::TokenError`] that
/// left the request without a token (downcast to tell them apart).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Adds `Authorization: Bearer <token>` (marked sensitive) to every request, replacing any
/// there was. Made by [`TokenSource::layer`].
///
/// ```no_run
/// # async fn run(tokens: auth_client::TokenSource) -> Result<(), Box<dyn std::error::Error>> {
/// use tower::ServiceBuilder;
///
/// // A tonic client: every call carries the service's token.
/// # let channel = tower::service_fn(|_: http::Request<String>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// # });
/// let authorized = ServiceBuilder::new().layer(tokens.layer()).service(channel);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BearerLayer {
    source: TokenSource,
}

impl BearerLayer {
    /// A layer authorizing with `source`'s tokens.
    pub fn new(source: TokenSource) -> Self {
        Self { source }
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer {
            inner,
            source: self.source.clone(),
        }
    }
}

/// The service made by [`BearerLayer`].
#[derive(Debug, Clone)]
pub struct Bearer<S> {
    inner: S,
    source: TokenSource,
}

impl<S, B> Service<http::Request<B>> for Bearer<S>
where
    S: Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The instance polled ready is the one to call; a fresh clone waits for the next call.
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        let source = self.source.clone();
        Box::pin(async move {
            let token = source.token().await?;
            request
                .headers_mut()
                .insert(AUTHORIZATION, token.header_value()?);
            ready.call(request).await.map_err(Into::into)
        })
    }
}
