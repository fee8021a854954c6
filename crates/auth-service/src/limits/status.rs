//! Where the counts live now and how the limiter waits on Redis: what `/ready` reports and
//! what the Redis store is tuned by.

use std::fmt;
use std::time::Duration;

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
