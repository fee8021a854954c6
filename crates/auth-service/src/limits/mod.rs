//! Rate limits per client IP and the login lockout per identifier (SPEC §4). Counts live in
//! process, or in Redis when configured so that replicas share them; when Redis stops
//! answering the limiter counts in process and returns to Redis once it answers again.
//!
//! Per-IP limits are fixed windows: the first request starts a window of `per`, at most `max`
//! requests pass in it, and a refusal says when the window ends. A window allows a burst of up
//! to `2 × max` across its boundary; that is acceptable for abuse limits and keeps the Redis
//! side to one `INCR` with a TTL.

mod digest;
mod memory;
mod redis_store;
mod scope;
mod status;

pub use scope::{Attempt, Scope};
pub use status::{LimiterStatus, RedisTiming};

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::clock::Clock;
use crate::config::LimitsConfig;
use digest::KeyDigest;
use memory::Memory;
use redis_store::{RedisStore, Unanswered};
use scope::at_least_a_millisecond;

/// Counts requests and login attempts. Cheap to clone: clones share the counts.
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

struct Inner {
    config: LimitsConfig,
    /// Always present: the store without Redis, and the fallback with it.
    memory: Memory,
    redis: Option<Arc<RedisStore>>,
}

impl Limiter {
    /// Never fails: without a Redis URL the counts live in process; with one they live in
    /// Redis, or in process while Redis cannot be reached (retried in the background).
    pub async fn new(
        config: &LimitsConfig,
        redis_url: Option<&SecretString>,
        clock: Clock,
    ) -> Self {
        Self::with_timing(config, redis_url, clock, RedisTiming::default()).await
    }

    /// As [`Limiter::new`], with explicit Redis timeouts.
    pub async fn with_timing(
        config: &LimitsConfig,
        redis_url: Option<&SecretString>,
        clock: Clock,
        timing: RedisTiming,
    ) -> Self {
        // Disabled limits never touch Redis, so they need no connection either.
        let redis = match redis_url {
            Some(url) if config.enabled => Some(RedisStore::connect(url, timing).await),
            _ => None,
        };
        if redis.is_none() {
            metrics::gauge!("auth_rate_limiter_fallback").set(0.0);
        }
        register_metrics();
        Self {
            inner: Arc::new(Inner {
                config: config.clone(),
                memory: Memory::new(clock),
                redis,
            }),
        }
    }

    /// Counts one request of `key` (a client IP) in `scope`; `Err(retry_after)` when over
    /// the limit, with the time until the window ends.
    pub async fn hit(&self, scope: Scope, key: &str) -> Result<(), Duration> {
        let Inner {
            config,
            memory,
            redis,
        } = &*self.inner;
        if !config.enabled {
            return Ok(());
        }
        let rate = scope.rate(config);
        let digest = KeyDigest::of(key);
        let shared = match redis {
            Some(redis) => {
                let key = format!("auth:limit:{}:{}", scope.as_str(), digest.hex());
                redis.hit(&key, rate.per).await
            }
            None => Err(Unanswered),
        };
        let verdict = match shared {
            Ok((count, _)) if count <= i64::from(rate.max) => Ok(()),
            Ok((_, ttl_ms)) => Err(at_least_a_millisecond(Duration::from_millis(
                u64::try_from(ttl_ms).unwrap_or(0),
            ))),
            Err(Unanswered) => memory.hit(scope, &digest, rate),
        };
        if verdict.is_err() {
            metrics::counter!("auth_rate_limited_total", "limit" => scope.as_str()).increment(1);
        }
        verdict
    }

    /// Counts one login attempt of `identifier` (a normalised login name) before its password
    /// is checked; `Err(remaining)` while the identifier is locked, without counting or
    /// extending the lock. Counting up front and checking in the same atomic step means
    /// concurrent guesses cannot all pass before any is counted: at most `login_failures`
    /// attempts are checked per lockout. A correct password then calls [`Limiter::reset`], so
    /// only consecutive failures lock. Unknown and existing accounts are counted alike
    /// (SPEC §4).
    pub async fn attempt(&self, identifier: &str) -> Result<Attempt, Duration> {
        let Some(limit) = self.lockout_limit() else {
            return Ok(Attempt { locked_now: false });
        };
        let lockout = self.inner.config.lockout;
        let digest = KeyDigest::of(identifier);
        let shared = match &self.inner.redis {
            Some(redis) => redis.attempt(&lockout_key(&digest), limit, lockout).await,
            None => Err(Unanswered),
        };
        let verdict = match shared {
            Ok((refused_ms, _)) if refused_ms > 0 => Err(at_least_a_millisecond(
                Duration::from_millis(u64::try_from(refused_ms).unwrap_or(0)),
            )),
            Ok((_, locked_now)) => Ok(Attempt {
                locked_now: locked_now == 1,
            }),
            Err(Unanswered) => self.inner.memory.attempt(&digest, limit, lockout),
        };
        if verdict.is_err() {
            metrics::counter!("auth_rate_limited_total", "limit" => "lockout").increment(1);
        }
        verdict
    }

    /// A correct password: earlier attempts of `identifier` no longer count.
    pub async fn reset(&self, identifier: &str) {
        if self.lockout_limit().is_none() {
            return;
        }
        let digest = KeyDigest::of(identifier);
        // Cleared in both stores: failures counted in process during an outage must not lock
        // the identifier after Redis has come back and gone again.
        self.inner.memory.reset(&digest);
        if let Some(redis) = &self.inner.redis {
            let _ = redis.reset(&lockout_key(&digest)).await;
        }
    }

    /// Which store holds the counts now.
    pub fn status(&self) -> LimiterStatus {
        match &self.inner.redis {
            Some(redis) => redis.status(),
            None => LimiterStatus::InProcess,
        }
    }

    /// The failures that lock an identifier; `None` when the lockout is off (limits disabled,
    /// or `login_failures = 0`).
    fn lockout_limit(&self) -> Option<u32> {
        let config = &self.inner.config;
        (config.enabled && config.login_failures > 0).then_some(config.login_failures)
    }
}

fn lockout_key(digest: &KeyDigest) -> String {
    format!("auth:lockout:{}", digest.hex())
}

/// Puts every refusal series at 0, so `rate(auth_rate_limited_total[5m])` and alerts on it
/// have a series before the first refusal (issue 16).
fn register_metrics() {
    for scope in Scope::ALL {
        metrics::counter!("auth_rate_limited_total", "limit" => scope.as_str()).increment(0);
    }
    metrics::counter!("auth_rate_limited_total", "limit" => "lockout").increment(0);
    for outcome in ["uncounted", "evicted"] {
        metrics::counter!("auth_rate_limiter_full_total", "outcome" => outcome).increment(0);
    }
}
