//! The rate limiter on its stores: in process (timed by a manual clock), on the shared Redis
//! (every test uses its own random keys), and on a private Redis that is stopped and started
//! to stage an outage.

use std::time::Duration;

use auth_service::clock::Clock;
use auth_service::config::{LimitsConfig, Rate};
use auth_service::limits::{Attempt, Limiter, LimiterStatus, RedisTiming, Scope};
use secrecy::SecretString;

use crate::support::redis::{shared_redis_for, OwnRedis};

const MINUTE: Duration = Duration::from_secs(60);
const LOCKOUT: Duration = Duration::from_secs(15 * 60);

const COUNTED: Result<Attempt, Duration> = Ok(Attempt { locked_now: false });
const LOCKING: Result<Attempt, Duration> = Ok(Attempt { locked_now: true });

/// Every per-IP limit at `max` a minute; lockout after 5 failures for 15 minutes.
fn limits(max: u32) -> LimitsConfig {
    LimitsConfig {
        enabled: true,
        login_per_ip: Rate::new(max, MINUTE),
        signup_per_ip: Rate::new(max, MINUTE),
        forgot_password_per_ip: Rate::new(max, MINUTE),
        lookup_per_ip: Rate::new(max, MINUTE),
        mail_per_account: Rate::new(max, MINUTE),
        token_per_client: Rate::new(max, MINUTE),
        introspect_per_client: Rate::new(max, MINUTE),
        revoke_per_ip: Rate::new(max, MINUTE),
        login_failures: 5,
        lockout: LOCKOUT,
    }
}

/// Timing for a machine busy with other tests: a slow answer must not look like an outage.
fn patient() -> RedisTiming {
    RedisTiming {
        timeout: Duration::from_secs(5),
        probe_every: Duration::from_secs(1),
    }
}

fn unique(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::new_v4().simple())
}

async fn on_redis(config: &LimitsConfig, url: &str) -> Limiter {
    let secret = SecretString::from(url.to_owned());
    let limiter = Limiter::with_timing(config, Some(&secret), Clock::manual(), patient()).await;
    assert_eq!(
        limiter.status(),
        LimiterStatus::Redis,
        "cannot reach Redis at {url}; start it (see TEST_REDIS_URL)"
    );
    limiter
}

/// Polls `status` until it is Redis again; the probe runs about once a second.
async fn until_redis(limiter: &Limiter) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while limiter.status() != LimiterStatus::Redis {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {} 10 s after Redis came back",
            limiter.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_limit_refuses_past_the_rate_until_the_window_ends() {
    let clock = Clock::manual();
    let limiter = Limiter::new(&limits(3), None, clock.clone()).await;
    for _ in 0..3 {
        assert_eq!(limiter.hit(Scope::LoginIp, "192.0.2.1").await, Ok(()));
    }

    let refused = limiter.hit(Scope::LoginIp, "192.0.2.1").await;
    clock.advance(MINUTE + Duration::from_secs(1));
    let later = limiter.hit(Scope::LoginIp, "192.0.2.1").await;

    let retry_after = refused.expect_err("the 4th hit in a minute is refused");
    assert!(retry_after > Duration::ZERO && retry_after <= MINUTE);
    assert_eq!(later, Ok(()));
    assert_eq!(limiter.status(), LimiterStatus::InProcess);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_limits_count_each_key_and_scope_apart() {
    let limiter = Limiter::new(&limits(1), None, Clock::manual()).await;
    assert_eq!(limiter.hit(Scope::LoginIp, "192.0.2.1").await, Ok(()));
    assert!(limiter.hit(Scope::LoginIp, "192.0.2.1").await.is_err());

    let other_key = limiter.hit(Scope::LoginIp, "192.0.2.2").await;
    let other_scope = limiter.hit(Scope::SignupIp, "192.0.2.1").await;

    assert_eq!(other_key, Ok(()));
    assert_eq!(other_scope, Ok(()));
}

fn locked_for_at_most_the_lockout(attempt: Result<Attempt, Duration>) -> bool {
    attempt.is_err_and(|remaining| remaining > Duration::ZERO && remaining <= LOCKOUT)
}

/// Counts the answers of `attempts`: (passed, passed and locked now, refused).
fn tally(attempts: &[Result<Attempt, Duration>]) -> (usize, usize, usize) {
    let passed = attempts.iter().filter(|a| a.is_ok()).count();
    let locking = attempts.iter().filter(|a| **a == LOCKING).count();
    (passed, locking, attempts.len() - passed)
}

/// 20 attempts at once on `limiters` in turn, each on its own task.
async fn twenty_at_once(limiters: &[Limiter], identifier: &str) -> Vec<Result<Attempt, Duration>> {
    futures::future::join_all((0..20).map(|n| {
        let limiter = limiters[n % limiters.len()].clone();
        let identifier = identifier.to_owned();
        tokio::spawn(async move { limiter.attempt(&identifier).await })
    }))
    .await
    .into_iter()
    .map(|joined| joined.expect("an attempt task panicked"))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_attempts_lock_an_identifier_until_the_lockout_ends() {
    let clock = Clock::manual();
    let limiter = Limiter::new(&limits(3), None, clock.clone()).await;
    for _ in 0..4 {
        assert_eq!(limiter.attempt("alice@example.com").await, COUNTED);
    }

    let fifth = limiter.attempt("alice@example.com").await;
    let sixth = limiter.attempt("alice@example.com").await;
    let someone_else = limiter.attempt("bob@example.com").await;
    clock.advance(LOCKOUT + Duration::from_secs(1));
    let after_lockout = limiter.attempt("alice@example.com").await;

    assert_eq!(fifth, LOCKING);
    assert!(locked_for_at_most_the_lockout(sixth), "{sixth:?}");
    assert_eq!(someone_else, COUNTED);
    assert_eq!(after_lockout, COUNTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_while_locked_do_not_extend_the_lock() {
    let clock = Clock::manual();
    let limiter = Limiter::new(&limits(3), None, clock.clone()).await;
    for _ in 0..5 {
        limiter.attempt("heidi").await.expect("counted");
    }
    clock.advance(LOCKOUT - Duration::from_secs(60));

    let refused = limiter.attempt("heidi").await;
    clock.advance(Duration::from_secs(61));
    let after_lockout = limiter.attempt("heidi").await;

    assert_eq!(refused, Err(Duration::from_secs(60)));
    assert_eq!(after_lockout, COUNTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_consecutive_failures_count_towards_a_lockout() {
    let clock = Clock::manual();
    let limiter = Limiter::new(&limits(3), None, clock.clone()).await;
    for _ in 0..4 {
        limiter.attempt("carol").await.expect("counted");
    }
    limiter.reset("carol").await;
    for _ in 0..4 {
        limiter.attempt("carol").await.expect("counted");
    }
    clock.advance(LOCKOUT + Duration::from_secs(1));

    let fifth_after_quiet_spell = limiter.attempt("carol").await;
    let sixth_after_quiet_spell = limiter.attempt("carol").await;

    assert_eq!(fifth_after_quiet_spell, COUNTED);
    assert_eq!(sixth_after_quiet_spell, COUNTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_lifts_a_lockout() {
    let limiter = Limiter::new(&limits(3), None, Clock::manual()).await;
    for _ in 0..5 {
        limiter.attempt("dave").await.expect("counted");
    }
    assert!(limiter.attempt("dave").await.is_err());

    limiter.reset("dave").await;

    assert_eq!(limiter.attempt("dave").await, COUNTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_limits_never_refuse_or_lock() {
    let disabled = LimitsConfig {
        enabled: false,
        ..limits(1)
    };
    let no_lockout = LimitsConfig {
        login_failures: 0,
        ..limits(1)
    };
    let limiter = Limiter::new(&disabled, None, Clock::manual()).await;
    let without_lockout = Limiter::new(&no_lockout, None, Clock::manual()).await;

    for _ in 0..20 {
        assert_eq!(limiter.hit(Scope::SignupIp, "192.0.2.9").await, Ok(()));
    }
    for _ in 0..10 {
        assert_eq!(limiter.attempt("erin").await, COUNTED);
        assert_eq!(without_lockout.attempt("erin").await, COUNTED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_attempts_in_process_pass_exactly_the_lockout_limit() {
    let limiter = Limiter::new(&limits(3), None, Clock::manual()).await;

    let attempts = twenty_at_once(&[limiter], "ivan").await;

    assert_eq!(tally(&attempts), (5, 1, 15), "{attempts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiters_on_one_redis_share_their_counts() {
    let Some(url) = shared_redis_for("limiter::limiters_on_one_redis_share_their_counts") else {
        return;
    };
    let a = on_redis(&limits(3), &url).await;
    let b = on_redis(&limits(3), &url).await;
    let ip = unique("ip");
    assert_eq!(a.hit(Scope::LoginIp, &ip).await, Ok(()));
    assert_eq!(a.hit(Scope::LoginIp, &ip).await, Ok(()));
    assert_eq!(b.hit(Scope::LoginIp, &ip).await, Ok(()));

    let on_a = a.hit(Scope::LoginIp, &ip).await;
    let on_b = b.hit(Scope::LoginIp, &ip).await;
    let other_scope = b.hit(Scope::LookupIp, &ip).await;

    let retry_after = on_a.expect_err("the 4th hit is refused on A");
    assert!(retry_after > Duration::ZERO && retry_after <= MINUTE);
    assert!(on_b.is_err(), "the 5th hit is refused on B");
    assert_eq!(other_scope, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiters_on_one_redis_share_a_lockout() {
    let Some(url) = shared_redis_for("limiter::limiters_on_one_redis_share_a_lockout") else {
        return;
    };
    let a = on_redis(&limits(3), &url).await;
    let b = on_redis(&limits(3), &url).await;
    let identifier = unique("email:frank");
    for _ in 0..3 {
        assert_eq!(a.attempt(&identifier).await, COUNTED);
    }
    assert_eq!(b.attempt(&identifier).await, COUNTED);

    let fifth = b.attempt(&identifier).await;
    let seen_by_a = a.attempt(&identifier).await;
    b.reset(&identifier).await;
    let after_reset = a.attempt(&identifier).await;

    assert_eq!(fifth, LOCKING);
    assert!(locked_for_at_most_the_lockout(seen_by_a), "{seen_by_a:?}");
    assert_eq!(after_reset, COUNTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_attempts_on_redis_pass_exactly_the_lockout_limit() {
    let Some(url) =
        shared_redis_for("limiter::concurrent_attempts_on_redis_pass_exactly_the_lockout_limit")
    else {
        return;
    };
    let replicas = [
        on_redis(&limits(3), &url).await,
        on_redis(&limits(3), &url).await,
    ];
    let identifier = unique("username:judy");

    let attempts = twenty_at_once(&replicas, &identifier).await;

    assert_eq!(tally(&attempts), (5, 1, 15), "{attempts:?}");
    for limiter in &replicas {
        assert_eq!(limiter.status(), LimiterStatus::Redis);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_hits_on_redis_pass_exactly_the_limit() {
    let Some(url) = shared_redis_for("limiter::concurrent_hits_on_redis_pass_exactly_the_limit")
    else {
        return;
    };
    let replicas = [
        on_redis(&limits(10), &url).await,
        on_redis(&limits(10), &url).await,
    ];
    let ip = unique("ip");

    let hits = futures::future::join_all((0..50).map(|n| {
        let limiter = replicas[n % 2].clone();
        let ip = ip.clone();
        tokio::spawn(async move { limiter.hit(Scope::LoginIp, &ip).await })
    }))
    .await;

    let passed = hits
        .into_iter()
        .filter(|hit| matches!(hit, Ok(Ok(()))))
        .count();
    assert_eq!(passed, 10);
    for limiter in &replicas {
        assert_eq!(limiter.status(), LimiterStatus::Redis);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limiter_counts_in_process_while_redis_is_down_and_returns_to_it() {
    if !OwnRedis::available(
        "limiter::a_limiter_counts_in_process_while_redis_is_down_and_returns_to_it",
    ) {
        return;
    }
    let mut redis = OwnRedis::start().await;
    let limiter = on_redis(&limits(3), &redis.url()).await;
    let ip = unique("ip");
    assert_eq!(limiter.hit(Scope::LoginIp, &ip).await, Ok(()));

    redis.stop();
    let during = tokio::time::timeout(MINUTE, limiter.hit(Scope::LoginIp, &ip))
        .await
        .expect("a hit answers while Redis is down");
    let lockout_during = limiter.attempt(&ip).await;
    let status_during = limiter.status();
    redis.start_again().await;
    until_redis(&limiter).await;

    assert_eq!(during, Ok(()), "counted in process from zero");
    assert_eq!(lockout_during, COUNTED, "counted in process from zero");
    assert!(
        matches!(status_during, LimiterStatus::Fallback { .. }),
        "{status_during}"
    );
    let replica = on_redis(&limits(3), &redis.url()).await;
    for _ in 0..3 {
        assert_eq!(limiter.hit(Scope::LoginIp, &ip).await, Ok(()));
    }
    assert!(
        replica.hit(Scope::LoginIp, &ip).await.is_err(),
        "the recovered limiter counts in Redis again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limiter_started_without_redis_moves_to_it_once_it_answers() {
    if !OwnRedis::available("limiter::a_limiter_started_without_redis_moves_to_it_once_it_answers")
    {
        return;
    }
    let mut redis = OwnRedis::start().await;
    redis.stop();
    let url = SecretString::from(redis.url());
    let limiter = Limiter::with_timing(&limits(3), Some(&url), Clock::manual(), patient()).await;
    let status_at_start = limiter.status();
    let ip = unique("ip");
    let hit_at_start = limiter.hit(Scope::SignupIp, &ip).await;

    redis.start_again().await;
    until_redis(&limiter).await;

    assert!(
        matches!(status_at_start, LimiterStatus::Fallback { .. }),
        "{status_at_start}"
    );
    assert_eq!(hit_at_start, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparsable_redis_url_leaves_the_limiter_in_process() {
    let url = SecretString::from("not a url".to_owned());

    let limiter = Limiter::new(&limits(1), Some(&url), Clock::manual()).await;

    assert!(matches!(limiter.status(), LimiterStatus::Fallback { .. }));
    assert_eq!(limiter.hit(Scope::LoginIp, "192.0.2.1").await, Ok(()));
    assert!(limiter.hit(Scope::LoginIp, "192.0.2.1").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_redis_costs_one_timeout_and_is_left_until_it_answers() {
    if !OwnRedis::available(
        "limiter::a_hanging_redis_costs_one_timeout_and_is_left_until_it_answers",
    ) {
        return;
    }
    let redis = OwnRedis::start().await;
    let url = SecretString::from(redis.url());
    let timing = RedisTiming {
        timeout: Duration::from_millis(500),
        probe_every: Duration::from_millis(200),
    };
    let limiter = Limiter::with_timing(&limits(3), Some(&url), Clock::manual(), timing).await;
    let ip = unique("ip");

    redis.pause();
    let during = tokio::time::timeout(MINUTE, limiter.hit(Scope::LookupIp, &ip))
        .await
        .expect("a hit answers while Redis hangs");
    let status_during = limiter.status();
    let attempt_during = tokio::time::timeout(MINUTE, limiter.attempt(&ip))
        .await
        .expect("a login attempt answers while Redis hangs");
    redis.resume();
    until_redis(&limiter).await;

    assert_eq!(during, Ok(()));
    assert_eq!(
        status_during,
        LimiterStatus::Fallback {
            reason: "no answer within 500 ms".to_owned()
        }
    );
    assert_eq!(attempt_during, COUNTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_are_namespaced_and_never_hold_an_identifier_in_clear() {
    let Some(url) = shared_redis_for(
        "limiter::redis_keys_are_namespaced_and_never_hold_an_identifier_in_clear",
    ) else {
        return;
    };
    let limiter = on_redis(&limits(3), &url).await;
    let identifier = unique("email:grace@example.com");
    let ip = unique("ip");

    limiter.attempt(&identifier).await.expect("first attempt");
    limiter
        .hit(Scope::ForgotPasswordIp, &ip)
        .await
        .expect("first hit");

    let mut redis = ::redis::Client::open(url.as_str())
        .expect("TEST_REDIS_URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let lockout_key = format!("auth:lockout:{}", sha256_hex(&identifier));
    let limit_key = format!("auth:limit:forgot_password_ip:{}", sha256_hex(&ip));
    let failures: Option<u32> = ::redis::cmd("GET")
        .arg(&lockout_key)
        .query_async(&mut redis)
        .await
        .expect("GET");
    let hits: Option<u32> = ::redis::cmd("GET")
        .arg(&limit_key)
        .query_async(&mut redis)
        .await
        .expect("GET");
    let in_clear: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("*{identifier}*"))
        .query_async(&mut redis)
        .await
        .expect("KEYS");
    assert_eq!(failures, Some(1));
    assert_eq!(hits, Some(1));
    assert!(in_clear.is_empty(), "{in_clear:?}");
}

fn sha256_hex(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
