//! The one seam for `main` and tests: `App::build(config)` then `app.serve(listeners, shutdown)`.
//! The only module that names concrete backends.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::caller::TrustedProxies;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::passkeys::RelyingParty;
use crate::crypto::password::PasswordHasher;
use crate::events::{Publisher, Relay, WebhookSink};
use crate::http::serve::ConnectionLimits;
use crate::limits::{Limiter, RedisTiming};
use crate::mail::Mailer;
use crate::services::admin::Bootstrap;
use crate::services::api_keys::{ApiKeys, USE_FLUSH_INTERVAL};
use crate::services::keys::Keys;
use crate::services::readiness::Readiness;
use crate::services::{Context as ServiceContext, Services};
pub use crate::state::AppState;
use crate::store::{self, Store};
use crate::telemetry;

/// A built service, ready to serve.
pub struct App {
    state: AppState,
    store: Arc<dyn Store>,
    relay: Relay,
}

impl App {
    /// Connects the store and applies migrations when configured; uses the system clock.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Clock::System).await
    }

    /// As [`App::build`], with the clock tests move by hand.
    pub async fn build_with_clock(config: Config, clock: Clock) -> anyhow::Result<Self> {
        // First, so the parts built below find the recorder when they put their series at 0.
        let metrics = telemetry::metrics_handle();
        let store = store::connect(&config.database).await.with_context(|| {
            format!(
                "cannot open the database at {}",
                config.database.url.redacted()
            )
        })?;
        if config.database.migrate_on_start {
            migrate(store.as_ref()).await?;
        }
        let config = Arc::new(config);
        let keys = Keys::load(store.clone(), clock.clone(), config.clone())
            .await
            .context("cannot load the signing keys")?;
        let context = ServiceContext {
            store: store.clone(),
            clock: clock.clone(),
            config: config.clone(),
            hasher: PasswordHasher::new(&config.password)?,
            keys,
            limiter: Limiter::with_timing(
                &config.limits,
                config.redis.url.as_ref().map(|url| &url.0),
                clock.clone(),
                RedisTiming {
                    timeout: config.redis.timeout,
                    ..RedisTiming::default()
                },
            )
            .await,
            mailer: Mailer::new(&config.mail, &config.server.public_url)
                .context("invalid mail configuration")?,
            pod_id: std::env::var("HOSTNAME").unwrap_or_else(|_| "auth-service".to_owned()),
            background: Arc::new(tokio::sync::Semaphore::new(
                crate::services::context::BACKGROUND_TASKS,
            )),
            relying_party: Arc::new(
                RelyingParty::new(&config.webauthn.relying_party(&config.server.public_url)?)
                    .context("invalid webauthn configuration")?,
            ),
        };
        let publisher = Publisher::from_config(&config)
            .await
            .context("cannot set up the event publisher")?;
        let readiness = Readiness::new(store.clone(), context.limiter.clone(), publisher.probe());
        let state = AppState {
            readiness,
            proxies: Arc::new(TrustedProxies::parse(&config.server.trusted_proxies)),
            config,
            metrics,
            services: Arc::new(Services::new(&Arc::new(context))),
        };
        bootstrap_admin(&state).await?;
        let webhooks = WebhookSink::from_config(
            &state.config.events.webhooks,
            state.config.events.publish_timeout,
        )?;
        let relay = Relay::new(
            store.clone(),
            publisher,
            webhooks,
            clock,
            state.config.events.clone(),
        );
        Ok(Self {
            state,
            store,
            relay,
        })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The store this app serves from (the command line closes it, logs its backend).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Serves HTTP and gRPC until `shutdown` resolves (or one of them fails), then stops
    /// within [`shutdown_bound`]: in-flight requests get `server.shutdown_timeout`, then the
    /// relay's last round and queued mail go out side by side, then the store closes.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = self.state.config.server.shutdown_timeout;
        // Polled once before any server starts, so that a signal handler behind `shutdown` is
        // in place before the first request is answered: an early SIGTERM still stops us
        // gracefully instead of killing the process.
        let mut shutdown = Box::pin(shutdown);
        let signalled =
            std::future::poll_fn(|cx| Poll::Ready(shutdown.as_mut().poll(cx).is_ready())).await;
        let key_refresher = tokio::spawn(refresh_keys(self.state.services.keys.clone()));
        let key_uses = tokio::spawn(flush_key_uses(self.state.services.api_keys.clone()));
        let (stop_relay, relay_stopped) = tokio::sync::oneshot::channel::<()>();
        let mut relay = tokio::spawn(self.relay.run(relay_stopped));
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let mut servers = tokio::task::JoinSet::new();
        let http = crate::http::serve::serve(
            listeners.http,
            crate::http::router(&self.state),
            ConnectionLimits::of(&self.state.config.server),
            stopped(stopping.clone()),
        );
        servers.spawn(async move {
            http.await;
            Ok(())
        });
        let state = self.state.clone();
        servers.spawn(async move {
            crate::grpc::serve(&state, listeners.grpc, stopped(stopping)).await
        });
        let mut outcome = if signalled {
            Ok(())
        } else {
            tokio::select! {
                Some(joined) = servers.join_next() => server_outcome(joined),
                () = &mut shutdown => Ok(()),
            }
        };
        self.state.readiness.stop();
        let _ = stop.send(true);
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            "shutting down: finishing in-flight requests"
        );
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            match tokio::time::timeout_at(deadline, servers.join_next()).await {
                Ok(Some(joined)) => outcome = outcome.and(server_outcome(joined)),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!("in-flight requests did not finish in time; stopping anyway");
                    servers.abort_all();
                    break;
                }
            }
        }
        key_refresher.abort();
        // SPEC §11: the API key uses noted since the last flush, once no request runs.
        key_uses.abort();
        if let Err(error) = self.state.services.api_keys.flush_uses().await {
            tracing::warn!(error = %error, "the last api key uses could not be written");
        }
        // The relay finishes its round so that what it published is marked; an event it
        // could not mark goes out again after a restart (SPEC §6: at least once). Queued mail
        // drains meanwhile.
        let _ = stop_relay.send(());
        let relay_grace = relay_stop_bound(&self.state.config);
        let relay_stopped = async {
            if tokio::time::timeout(relay_grace, &mut relay).await.is_err() {
                tracing::warn!("the event relay did not stop in time; stopping it anyway");
                relay.abort();
            }
        };
        let mail_drained = async {
            if !self.state.services.mailer.drain(MAIL_DRAIN_TIMEOUT).await {
                tracing::warn!("queued mail was still unsent at shutdown");
            }
        };
        tokio::join!(relay_stopped, mail_drained);
        if tokio::time::timeout(STORE_CLOSE_TIMEOUT, self.store.close())
            .await
            .is_err()
        {
            tracing::warn!("the database pool did not close in time; exiting anyway");
        }
        tracing::info!("stopped");
        outcome
    }
}

/// The longest a shutdown takes once the signal arrived (docs/operations.md "Shutdown"):
/// `server.shutdown_timeout` for in-flight requests, then the longer of the relay's last round
/// (`events.publish_timeout` + 2 s) and the mail drain (5 s), then 2 s to close the pool.
/// With the defaults, 10 s + 7 s + 2 s = 19 s.
pub fn shutdown_bound(config: &Config) -> std::time::Duration {
    config.server.shutdown_timeout
        + relay_stop_bound(config).max(MAIL_DRAIN_TIMEOUT)
        + STORE_CLOSE_TIMEOUT
}

fn relay_stop_bound(config: &Config) -> std::time::Duration {
    config.events.publish_timeout + RELAY_STOP_MARGIN
}

/// The sockets [`App::serve`] answers on.
pub struct Listeners {
    pub http: TcpListener,
    pub grpc: TcpListener,
}

impl Listeners {
    /// Binds both addresses; the error names the one that could not be bound.
    pub async fn bind(http: SocketAddr, grpc: SocketAddr) -> anyhow::Result<Self> {
        let bind = |what: &'static str, address: SocketAddr| async move {
            TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen for {what} on {address}"))
        };
        Ok(Self {
            http: bind("HTTP", http).await?,
            grpc: bind("gRPC", grpc).await?,
        })
    }
}

/// Resolves once `stopping` turns true (or its sender is gone).
async fn stopped(mut stopping: tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// What a server task ended with; a panic is an error too.
fn server_outcome(
    joined: Result<anyhow::Result<()>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    joined.context("a server task failed")?
}

/// SPEC §1: the first administrator from `bootstrap.admin_*`, once; later starts find it.
async fn bootstrap_admin(state: &AppState) -> anyhow::Result<()> {
    let bootstrap = &state.config.bootstrap;
    let (Some(email), Some(username), Some(password)) = (
        bootstrap.admin_email.as_deref(),
        bootstrap.admin_username.as_deref(),
        bootstrap.admin_password.as_ref(),
    ) else {
        return Ok(());
    };
    let outcome = state
        .services
        .admin
        .create_admin(email, username, &password.0)
        .await
        .map_err(|error| anyhow::anyhow!("cannot create the bootstrap admin: {error}"))?;
    if let Bootstrap::Created(id) = outcome {
        tracing::info!(user.id = %id, "created the bootstrap admin");
    }
    Ok(())
}

/// How long queued mail may take to go out after the server stopped.
const MAIL_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long closing the database pool may take at shutdown.
const STORE_CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long the relay may take to finish a round beyond one publish timeout.
const RELAY_STOP_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);

/// How often a replica rereads the signing keys, so a `keys rotate` run elsewhere is picked up.
const KEY_REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

async fn refresh_keys(keys: Keys) {
    let mut ticks = tokio::time::interval(KEY_REFRESH_INTERVAL);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(error) = keys.reload().await {
            tracing::warn!(error = %format!("{error:#}"), "rereading the signing keys failed");
        }
    }
}

/// Writes the API key uses noted in memory every `USE_FLUSH_INTERVAL` (SPEC §11: no write
/// per request); a failed write keeps them for the next round.
async fn flush_key_uses(api_keys: ApiKeys) {
    let mut ticks = tokio::time::interval(USE_FLUSH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(error) = api_keys.flush_uses().await {
            tracing::warn!(error = %error, "writing api key uses failed; kept for the next round");
        }
    }
}

/// Applies pending migrations and says what happened.
pub async fn migrate(store: &dyn Store) -> anyhow::Result<usize> {
    let applied = store.migrate().await.context("database migration failed")?;
    if applied == 0 {
        tracing::info!(backend = store.backend(), "database schema is up to date");
    } else {
        tracing::info!(
            backend = store.backend(),
            applied,
            "database migrations applied"
        );
    }
    Ok(applied)
}
