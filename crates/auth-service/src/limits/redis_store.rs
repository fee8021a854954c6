//! The Redis store, shared by every replica, and the switch to the in-process store while
//! Redis does not answer. A background probe PINGs Redis every `probe_every` while it is in
//! use, so an outage is noticed (and reported on `/ready`) within seconds even on a replica
//! no request reaches, and tries to reconnect while it is not. Each operation is one Lua script, so concurrent replicas cannot
//! interleave between reading and updating a count; expiry is Redis's own TTL (real time).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult, Script};
use secrecy::{ExposeSecret, SecretString};

use super::status::{LimiterStatus, RedisTiming};

/// Counts one request in a fixed window: the first hit starts the window's TTL. A key that
/// somehow lost its TTL gets one again, so no window can last forever. Returns {count, pttl}.
const HIT: &str = r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// Counts a login attempt unless the identifier is locked, in one step so that concurrent
/// attempts cannot all pass a check before any is counted. A locked identifier is refused and
/// its lock not extended (a lock that somehow lost its TTL gets one again, so none lasts
/// forever); a counted attempt restarts the expiry. Returns {remaining ms, 0} when refused,
/// and {0, 1 when this attempt locked the identifier, else 0} when counted.
const ATTEMPT: &str = r"
local limit = tonumber(ARGV[1])
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= limit then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return {math.max(ttl, 1), 0}
end
count = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if count == limit then return {0, 1} end
return {0, 0}
";

/// Redis did not answer this call; the caller uses the in-process store instead.
pub(super) struct Unanswered;

pub(super) struct RedisStore {
    /// `None` when the URL does not parse: nothing to retry, the limiter stays in process.
    client: Option<Client>,
    timing: RedisTiming,
    scripts: Scripts,
    state: Mutex<State>,
}

struct Scripts {
    hit: Script,
    attempt: Script,
}

struct State {
    /// Present only while Redis is in use; cleared on falling back.
    connection: Option<ConnectionManager>,
    /// Bumped on every switch back to Redis, so a slow failure from an older connection
    /// cannot push a recovered limiter back into fallback.
    generation: u64,
    fallback: Option<String>,
}

impl RedisStore {
    /// Connects once; when that fails the store starts in fallback and keeps retrying.
    pub(super) async fn connect(url: &SecretString, timing: RedisTiming) -> Arc<Self> {
        let client = Client::open(url.expose_secret()).ok();
        let store = Arc::new(Self {
            client,
            timing,
            scripts: Scripts {
                hit: Script::new(HIT),
                attempt: Script::new(ATTEMPT),
            },
            state: Mutex::new(State {
                connection: None,
                generation: 0,
                fallback: None,
            }),
        });
        match store.open().await {
            Ok(connection) => {
                store.state().connection = Some(connection);
                metrics::gauge!("auth_rate_limiter_fallback").set(0.0);
            }
            Err(reason) => store.fall_back(0, reason),
        }
        if store.client.is_some() {
            // The probe holds only a weak reference, so dropping the last limiter ends it.
            tokio::spawn(probe(Arc::downgrade(&store)));
        }
        store
    }

    pub(super) fn status(&self) -> LimiterStatus {
        match &self.state().fallback {
            None => LimiterStatus::Redis,
            Some(reason) => LimiterStatus::Fallback {
                reason: reason.clone(),
            },
        }
    }

    /// Counts a hit on `key`; the window's count and the milliseconds left in it.
    pub(super) async fn hit(
        self: &Arc<Self>,
        key: &str,
        per: Duration,
    ) -> Result<(i64, i64), Unanswered> {
        let (mut connection, generation) = self.connection()?;
        let mut call = self.scripts.hit.key(key);
        call.arg(millis(per));
        self.answer(generation, call.invoke_async(&mut connection))
            .await
    }

    /// Counts a login attempt: the milliseconds left of the lock when refused (else 0), and
    /// 1 when this attempt locked the identifier (else 0).
    pub(super) async fn attempt(
        self: &Arc<Self>,
        key: &str,
        limit: u32,
        lockout: Duration,
    ) -> Result<(i64, i64), Unanswered> {
        let (mut connection, generation) = self.connection()?;
        let mut call = self.scripts.attempt.key(key);
        call.arg(limit).arg(millis(lockout));
        self.answer(generation, call.invoke_async(&mut connection))
            .await
    }

    pub(super) async fn reset(self: &Arc<Self>, key: &str) -> Result<(), Unanswered> {
        let (mut connection, generation) = self.connection()?;
        let mut command = redis::cmd("DEL");
        command.arg(key);
        self.answer(generation, command.query_async(&mut connection))
            .await
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection while Redis is in use. In fallback no call waits on Redis at all, so a
    /// hanging Redis costs one timeout, not one per request; the probe decides when to return.
    fn connection(&self) -> Result<(ConnectionManager, u64), Unanswered> {
        let state = self.state();
        match &state.connection {
            Some(connection) => Ok((connection.clone(), state.generation)),
            None => Err(Unanswered),
        }
    }

    async fn answer<T>(
        self: &Arc<Self>,
        generation: u64,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, Unanswered> {
        let reason = match tokio::time::timeout(self.timing.timeout, call).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) if !error.is_timeout() => error.to_string(),
            _ => silent_for(self.timing.timeout),
        };
        self.fall_back(generation, reason);
        Err(Unanswered)
    }

    /// A new connection that answered PING. `ConnectionManager` is told not to retry: its
    /// default backoff (1 s, then up to 60 s, six times) would hold every call on a dead
    /// connection for minutes, and it reconnects only after an I/O error, never after a
    /// timeout (a half-open TCP connection). Retrying is the probe's job.
    async fn open(&self) -> Result<ConnectionManager, String> {
        let Some(client) = self.client.clone() else {
            return Err("redis.url is not a valid Redis URL".to_owned());
        };
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(self.timing.timeout)
            .set_response_timeout(self.timing.timeout);
        let attempt = async {
            let mut connection = ConnectionManager::new_with_config(client, config).await?;
            redis::cmd("PING")
                .query_async::<()>(&mut connection)
                .await?;
            Ok::<_, redis::RedisError>(connection)
        };
        match tokio::time::timeout(self.timing.timeout * 2, attempt).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) if !error.is_timeout() => Err(error.to_string()),
            _ => Err(silent_for(self.timing.timeout)),
        }
    }

    /// Switches to the in-process store, logging only the first failure of an outage.
    fn fall_back(self: &Arc<Self>, generation: u64, reason: String) {
        let mut state = self.state();
        if state.generation != generation || state.fallback.is_some() {
            return;
        }
        tracing::warn!(
            reason = %reason,
            "rate limiter cannot reach Redis; counting in process until it answers again"
        );
        metrics::gauge!("auth_rate_limiter_fallback").set(1.0);
        state.connection = None;
        state.fallback = Some(reason);
    }

    fn recover(&self, connection: ConnectionManager) {
        let mut state = self.state();
        state.connection = Some(connection);
        state.generation += 1;
        state.fallback = None;
        metrics::gauge!("auth_rate_limiter_fallback").set(0.0);
        tracing::info!("rate limiter reaches Redis again; counts are shared across replicas");
    }
}

/// Every `probe_every`: PING while Redis is in use (falling back when it does not answer),
/// reconnect while it is not.
async fn probe(store: Weak<RedisStore>) {
    loop {
        let interval = match store.upgrade() {
            Some(store) => store.timing.probe_every,
            None => return,
        };
        tokio::time::sleep(interval).await;
        let Some(store) = store.upgrade() else {
            return;
        };
        match store.connection() {
            Ok((mut connection, generation)) => {
                let ping = redis::cmd("PING");
                let _ = store
                    .answer(generation, ping.query_async::<()>(&mut connection))
                    .await;
            }
            Err(Unanswered) => {
                if let Ok(connection) = store.open().await {
                    store.recover(connection);
                }
            }
        }
    }
}

/// One wording for a timeout, whether the connection's own timer or ours fired first.
fn silent_for(timeout: Duration) -> String {
    format!("no answer within {} ms", timeout.as_millis())
}

fn millis(span: Duration) -> u64 {
    u64::try_from(span.as_millis()).unwrap_or(u64::MAX).max(1)
}
