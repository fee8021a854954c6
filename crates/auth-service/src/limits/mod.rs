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

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::clock::Clock;
use crate::config::{LimitsConfig, Rate};
use digest::KeyDigest;
use memory::Memory;
use redis_store::{RedisStore, Unanswered};

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

/// Which per-client-IP limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    LoginIp,
    SignupIp,
    ForgotPasswordIp,
    LookupIp,
    /// Reset and verification mails per account, so nobody can flood one mailbox.
    MailPerAccount,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::LoginIp,
        Scope::SignupIp,
        Scope::ForgotPasswordIp,
        Scope::LookupIp,
        Scope::MailPerAccount,
    ];

    /// The metric label and Redis key segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::LoginIp => "login_ip",
            Scope::SignupIp => "signup_ip",
            Scope::ForgotPasswordIp => "forgot_password_ip",
            Scope::LookupIp => "lookup_ip",
            Scope::MailPerAccount => "mail_account",
        }
    }

    fn rate(self, config: &LimitsConfig) -> Rate {
        match self {
            Scope::LoginIp => config.login_per_ip,
            Scope::SignupIp => config.signup_per_ip,
            Scope::ForgotPasswordIp => config.forgot_password_per_ip,
            Scope::LookupIp => config.lookup_per_ip,
            Scope::MailPerAccount => config.mail_per_account,
        }
    }
}

/// A login attempt that [`Limiter::attempt`] let through and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// This attempt's count reached `login_failures`: the identifier is locked from now on.
    /// The caller audits the lockout once, and only if this attempt's password is wrong (a
    /// correct one resets the count).
    pub locked_now: bool,
}

/// Where the counts live now; `/ready` and the logs report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimiterStatus {
    /// No Redis configured.
    InProcess,
    /// Shared with every replica through Redis.
    Redis,
    /// Redis is configured but does not answer; counts are per replica until it does.
    Fallback { reason: String },
}

impl fmt::Display for LimiterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimiterStatus::InProcess => f.write_str("in_process"),
            LimiterStatus::Redis => f.write_str("redis"),
            LimiterStatus::Fallback { reason } => write!(f, "fallback: {reason}"),
        }
    }
}

/// How the limiter waits on Redis. The default suits production; slow test machines may want
/// a longer timeout so a busy CPU is not mistaken for an outage.
#[derive(Debug, Clone, Copy)]
pub struct RedisTiming {
    /// Longest wait for one Redis call; past it the call is answered in process, so a hanging
    /// Redis cannot stall a login.
    pub timeout: Duration,
    /// How often a limiter in fallback tries Redis again.
    pub probe_every: Duration,
}

impl Default for RedisTiming {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(250),
            probe_every: Duration::from_secs(1),
        }
    }
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

/// A refusal always asks the client to wait a little, even at the very end of a window.
fn at_least_a_millisecond(wait: Duration) -> Duration {
    wait.max(Duration::from_millis(1))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_reads_its_own_rate() {
        let config = LimitsConfig::default();

        assert_eq!(Scope::LoginIp.rate(&config), config.login_per_ip);
        assert_eq!(Scope::SignupIp.rate(&config), config.signup_per_ip);
        assert_eq!(
            Scope::ForgotPasswordIp.rate(&config),
            config.forgot_password_per_ip
        );
        assert_eq!(Scope::LookupIp.rate(&config), config.lookup_per_ip);
    }
}
