//! Readiness (SPEC §2): whether this replica can serve, and how each dependency is. 503 only
//! when this replica cannot serve (the database does not answer, or it is shutting down); a
//! soft dependency that fails for every replica alike — Redis (limits fall back in process),
//! the event broker (events wait in the outbox) — is `degraded`, so a readiness probe never
//! takes the whole fleet out for it. Each dependency is probed on its own in the background;
//! this only reads their state, plus one bounded database ping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::events::BrokerProbe;
use crate::limits::{Limiter, LimiterStatus};
use crate::store::Store;

/// How long the database may take to answer the ping before it counts as unavailable.
const DATABASE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// How one check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// A soft dependency is away; this replica still serves (SPEC §2).
    Degraded,
    /// This replica cannot serve.
    Unavailable,
    /// Shutting down: in-flight requests finish, new ones belong elsewhere.
    ShuttingDown,
}

impl Health {
    /// The value `/ready` shows: a short word, never an error text (those are logged).
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Degraded => "degraded",
            Health::Unavailable => "unavailable",
            Health::ShuttingDown => "shutting_down",
        }
    }
}

/// Every check of one readiness question, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<(&'static str, Health)>,
}

impl Report {
    /// Whether this replica should get traffic: always when `strict` is false unless it
    /// cannot serve; with `strict`, only when every check is `ok`.
    pub fn ready(&self, strict: bool) -> bool {
        self.checks.iter().all(|(_, health)| match health {
            Health::Ok => true,
            Health::Degraded => !strict,
            Health::Unavailable | Health::ShuttingDown => false,
        })
    }

    /// Whether every check is `ok`.
    pub fn all_ok(&self) -> bool {
        self.ready(true)
    }

    /// The names of the checks that are not `ok`.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|(_, health)| *health != Health::Ok)
            .map(|(name, _)| *name)
            .collect()
    }
}

/// The readiness use case. Cheap to clone.
#[derive(Clone)]
pub struct Readiness {
    store: Arc<dyn Store>,
    limiter: Limiter,
    broker: BrokerProbe,
    stopping: Arc<AtomicBool>,
}

impl Readiness {
    pub fn new(store: Arc<dyn Store>, limiter: Limiter, broker: BrokerProbe) -> Self {
        Self {
            store,
            limiter,
            broker,
            stopping: Arc::default(),
        }
    }

    /// From now on this replica reports `shutting_down` (and 503).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Asks the database, and reads what the Redis and broker probes last found.
    pub async fn check(&self) -> Report {
        let mut checks = Vec::with_capacity(4);
        if self.stopping.load(Ordering::SeqCst) {
            checks.push(("shutdown", Health::ShuttingDown));
        }
        checks.push(("database", self.database().await));
        match self.limiter.status() {
            LimiterStatus::InProcess => {}
            LimiterStatus::Redis => checks.push(("redis", Health::Ok)),
            // The limiter logged the reason when it fell back.
            LimiterStatus::Fallback { .. } => checks.push(("redis", Health::Degraded)),
        }
        if let Some((broker, connected)) = self.broker.status() {
            // The client logs its own disconnects and reconnects.
            let health = if connected {
                Health::Ok
            } else {
                Health::Degraded
            };
            checks.push((broker, health));
        }
        Report { checks }
    }

    /// The database answers a ping in time; what went wrong is logged, never shown.
    async fn database(&self) -> Health {
        match tokio::time::timeout(DATABASE_PING_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => Health::Ok,
            Ok(Err(error)) => {
                tracing::warn!(dependency = "database", error = %error, "not ready");
                Health::Unavailable
            }
            Err(_) => {
                tracing::warn!(
                    dependency = "database",
                    timeout_ms = DATABASE_PING_TIMEOUT.as_millis() as u64,
                    "not ready: the database did not answer in time"
                );
                Health::Unavailable
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(checks: &[(&'static str, Health)]) -> Report {
        Report {
            checks: checks.to_vec(),
        }
    }

    #[test]
    fn a_soft_dependency_degrades_and_only_strict_refuses() {
        let degraded = report(&[("database", Health::Ok), ("redis", Health::Degraded)]);

        assert!(degraded.ready(false));
        assert!(!degraded.ready(true));
        assert_eq!(degraded.failed(), ["redis"]);
    }

    #[test]
    fn no_database_or_shutting_down_is_never_ready() {
        let down = report(&[("database", Health::Unavailable), ("redis", Health::Ok)]);
        let stopping = report(&[("shutdown", Health::ShuttingDown), ("database", Health::Ok)]);

        assert!(!down.ready(false));
        assert!(!stopping.ready(false));
        assert!(report(&[("database", Health::Ok)]).all_ok());
    }
}
