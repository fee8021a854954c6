//! The HTTP accept loop (issue 14 L2), HTTP/1 and HTTP/2 (prior knowledge) on one port:
//! - at most `server.max_connections` connections are served at once; the next one is not
//!   accepted until one closes, so it waits in the kernel's listen backlog and costs the
//!   process nothing;
//! - a connection must deliver its first request within `server.header_read_timeout`, and on
//!   HTTP/1 every request head (hyper's own timer, which also runs while a kept-alive
//!   connection waits for its next request);
//! - a connection with no request in flight for `server.idle_timeout` is closed.
//!
//! A connection asked to close (idle, or shutting down) finishes the response it is writing;
//! one that has not closed [`CLOSE_GRACE`] after an idle close is dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::ServerConfig;

/// How long a connection told to close while idle may take to do so before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The bounds of one listener, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl ConnectionLimits {
    pub fn of(server: &ServerConfig) -> Self {
        Self {
            max_connections: server.max_connections.max(1),
            header_read_timeout: server.header_read_timeout,
            idle_timeout: server.idle_timeout,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, asks every
/// connection to close after its current response, and returns once all have closed (the
/// caller bounds how long that may take; dropping this future drops every connection).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &permits) => accepted,
        };
        let Some((stream, peer, permit)) = accepted else {
            continue;
        };
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            limits,
            peer,
            stopping: stopping.clone(),
        };
        connections.spawn(connection.run(stream, permit));
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

/// Takes a permit, then accepts; `None` after an accept error (the loop tries again).
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    // The semaphore is never closed, so acquiring only waits.
    let permit = permits.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => {
            let _ = stream.set_nodelay(true);
            Some((stream, peer, permit))
        }
        Err(error) if is_connection_error(&error) => None,
        Err(error) => {
            // Out of file descriptors or the like: wait instead of spinning on the error.
            tracing::warn!(error = %error, "accepting an HTTP connection failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }
}

/// An error of the one connection being accepted, not of the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    limits: ConnectionLimits,
    peer: SocketAddr,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    /// Serves one connection until it ends, holding its permit meanwhile.
    async fn run(mut self, stream: TcpStream, _permit: OwnedSemaphorePermit) {
        let activity = Arc::new(Activity::new());
        let service = {
            let (router, activity, peer) = (self.router.clone(), activity.clone(), self.peer);
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                let busy = activity.begin();
                request.extensions_mut().insert(ConnectInfo(peer));
                let answer = router.clone().oneshot(request);
                async move {
                    let response = answer.await;
                    drop(busy);
                    response
                }
            })
        };
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let mut closing: Option<Instant> = None;
        loop {
            let idle_deadline = activity.deadline(&self.limits);
            let changed = activity.changed();
            tokio::select! {
                outcome = connection.as_mut() => {
                    if let Err(error) = outcome {
                        tracing::debug!(error = %error, "HTTP connection ended with an error");
                    }
                    return;
                }
                Ok(()) = self.stopping.changed(), if closing.is_none() => {
                    connection.as_mut().graceful_shutdown();
                    // Shutting down: the caller bounds how long the last responses may take.
                    closing = Some(far_future());
                }
                () = sleep_until(idle_deadline), if closing.is_none() => {
                    if activity.deadline(&self.limits).is_some_and(|at| at <= Instant::now()) {
                        connection.as_mut().graceful_shutdown();
                        closing = Some(Instant::now() + CLOSE_GRACE);
                    }
                }
                () = sleep_until(closing), if closing.is_some() => return,
                () = changed => {}
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What a connection is doing: requests in flight, and since when it has had none.
struct Activity {
    state: Mutex<ActivityState>,
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    served_any: bool,
    idle_since: Instant,
}

impl Activity {
    fn new() -> Self {
        Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                served_any: false,
                idle_since: Instant::now(),
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request starts; it counts as in flight until the guard is dropped.
    fn begin(self: &Arc<Self>) -> Busy {
        {
            let mut state = self.state();
            state.in_flight += 1;
            state.served_any = true;
        }
        self.changed.notify_one();
        Busy(self.clone())
    }

    /// When the connection is to close if nothing happens: none while a request is in flight;
    /// before its first request the header-read bound, after it the idle bound.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        let state = self.state();
        if state.in_flight > 0 {
            None
        } else if state.served_any {
            Some(state.idle_since + limits.idle_timeout)
        } else {
            Some(state.idle_since + limits.header_read_timeout)
        }
    }

    async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// A request in flight on its connection.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        {
            let mut state = self.0.state();
            state.in_flight -= 1;
            if state.in_flight == 0 {
                state.idle_since = Instant::now();
            }
        }
        self.0.changed.notify_one();
    }
}
