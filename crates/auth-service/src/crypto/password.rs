//! Password hashing: argon2id with the configured parameters on a pool of its own threads,
//! one per core by default and below normal OS priority, so a login flood queues here and
//! yields the cores to other requests instead of starving them (SPEC §4).
//! bcrypt and argon2 hashes with other parameters verify and are flagged for re-hashing.
//! A stored hash above the cost bounds (`cost.rs`) is never worked on, and a failed
//! verification takes no less time than the slowest kind of hash verified (`floor.rs`).

mod cost;
mod floor;

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore as _};
use argon2::password_hash::{
    Output, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version, ARGON2ID_IDENT};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::{HashPriority, PasswordConfig};
use cost::{bcrypt_body, Bounds, Cost};
use floor::Floor;

pub use cost::{check_given_hash, HashRefusal};

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Mismatch,
    /// The password is right; `rehash` asks for the hash to be replaced with current parameters.
    Match {
        rehash: bool,
    },
}

/// Hashes and verifies passwords off the async workers, on `workers` threads of its own.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// One per hashing thread: a waiting login holds no thread, and gives up its turn when
    /// its client goes away.
    permits: Arc<Semaphore>,
    threads: Arc<rayon::ThreadPool>,
    /// Verified against when the user does not exist, so that both cases take the same time.
    dummy_hash: Arc<str>,
    /// The costliest stored hash a login works on: SPEC §5's, or the configured parameters.
    bounds: Bounds,
    /// The least time a failed verification takes.
    floor: Arc<Floor>,
}

impl PasswordHasher {
    pub fn new(config: &PasswordConfig) -> anyhow::Result<Self> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|error| anyhow::anyhow!("password.argon2_*: {error}"))?;
        let workers = if config.hash_workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            config.hash_workers
        };
        let priority = config.hash_priority;
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|n| format!("argon2-{n}"))
            .start_handler(move |_| set_priority(priority))
            // A panicking hash fails its request (its result channel closes), not the process.
            .panic_handler(|_| tracing::error!("a password hashing job panicked"))
            .build()
            .map_err(|error| anyhow::anyhow!("password hashing threads: {error}"))?;
        let dummy_hash = unmatchable_hash(&params)?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(workers)),
            threads: Arc::new(threads),
            dummy_hash: dummy_hash.into(),
            bounds: Bounds::admitting(&params),
            floor: Arc::new(Floor::default()),
            params,
        })
    }

    /// A PHC argon2id string for `password`.
    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let params = self.params.clone();
        self.run(move || hash_now(&params, password.expose_secret()))
            .await?
            .0
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no user
    /// or the stored hash is not one to work on. SPEC §4: a mismatch is answered no sooner
    /// than the floor after the work began, so neither an unknown user nor a cheap hash is
    /// told apart from the slowest kind of stored hash.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> anyhow::Result<Verdict> {
        let usable = stored.and_then(|hash| match Cost::of(&hash) {
            Ok(cost) if cost.within(&self.bounds) => Some((hash, cost)),
            // SPEC §5: an older row above the bounds would pin a hashing thread for as long
            // as its parameters ask; it is refused before any work, like a wrong password.
            Ok(_) => {
                tracing::warn!("a stored password hash is above the cost bounds: refused");
                None
            }
            Err(_) => None,
        });
        let (stored, kind) = match usable {
            Some((hash, cost)) => (Some(hash), cost),
            None => (None, Cost::of_params(&self.params)),
        };
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let params = self.params.clone();
        let (verdict, started, took) = self
            .run(move || verify_now(&params, password.expose_secret(), &stored))
            .await?;
        self.floor.observe(kind, took);
        let verdict = if known { verdict } else { Verdict::Mismatch };
        if verdict == Verdict::Mismatch {
            tokio::time::sleep_until((started + self.floor.get()).into()).await;
        }
        Ok(verdict)
    }

    /// Runs `work` on a hashing thread: its result, when it started there, and how long it
    /// took.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<(T, Instant, Duration)> {
        let _permit = self.permits.acquire().await?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.threads.spawn(move || {
            let started = Instant::now();
            let result = work();
            // The receiver is gone only when the request was dropped meanwhile.
            let _ = done.send((result, started, started.elapsed()));
        });
        let result = result
            .await
            .map_err(|_| anyhow::anyhow!("password hashing job failed"))?;
        metrics::histogram!("auth_password_hash_duration_seconds").record(result.2.as_secs_f64());
        Ok(result)
    }
}

/// Runs on each hashing thread as it starts. Lowering one's own priority needs no privilege;
/// should the OS refuse anyway, hashing runs at normal priority and says so once per thread.
fn set_priority(priority: HashPriority) {
    #[cfg(unix)]
    {
        use thread_priority::unix::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadSchedulePolicy,
        };
        use thread_priority::ThreadPriority;

        let policy = match priority {
            HashPriority::Normal => return,
            HashPriority::Low => NormalThreadSchedulePolicy::Other,
            HashPriority::Idle => NormalThreadSchedulePolicy::Idle,
        };
        let policy = ThreadSchedulePolicy::Normal(policy);
        if let Err(error) =
            set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, policy)
        {
            tracing::warn!(
                ?priority,
                ?error,
                "cannot lower the priority of a password hashing thread"
            );
        }
    }
    #[cfg(not(unix))]
    if priority != HashPriority::Normal {
        tracing::warn!(?priority, "password.hash_priority is only applied on Unix");
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

/// The hash an unknown user is checked against: an argon2id PHC string with the configured
/// parameters, a random salt and a random output. Verifying a password against it does the
/// same work as against a user's hash and matches no password anyone knows (finding one is
/// finding an argon2 preimage). It is made without hashing: a hash at start would leave its
/// memory area (`argon2_memory_kib`, 19 MiB by default) resident in an idle service (issue 20).
fn unmatchable_hash(params: &Params) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    OsRng.fill_bytes(&mut output);
    let hash = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: params.try_into()?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output)?),
    };
    Ok(hash.to_string())
}

fn hash_now(params: &Params, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| anyhow::anyhow!("argon2 hashing failed: {error}"))
}

fn verify_now(params: &Params, password: &str, stored: &str) -> Verdict {
    if bcrypt_body(stored).is_some() {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verdict::Match { rehash: true },
            _ => Verdict::Mismatch,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verdict::Mismatch;
    };
    // The stored hash names its own algorithm and parameters; verify with those.
    if Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Verdict::Mismatch;
    }
    let current = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed).is_ok_and(|old| {
            old.m_cost() == params.m_cost()
                && old.t_cost() == params.t_cost()
                && old.p_cost() == params.p_cost()
        });
    Verdict::Match { rehash: !current }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> PasswordConfig {
        PasswordConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..PasswordConfig::default()
        }
    }

    fn secret(value: &str) -> SecretString {
        SecretString::from(value.to_string())
    }

    #[test]
    fn production_defaults_are_owasp_argon2id() {
        let config = PasswordConfig::default();

        assert_eq!(
            (
                config.argon2_memory_kib,
                config.argon2_iterations,
                config.argon2_parallelism
            ),
            (19 * 1024, 2, 1)
        );
    }

    /// (niceness, scheduling policy) of the calling thread, from /proc (Linux).
    fn own_scheduling() -> (i64, i64) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the command name, which is in parentheses: the state is field 3.
        let fields: Vec<i64> = stat[stat.rfind(')').unwrap() + 2..]
            .split(' ')
            .skip(1)
            .map(|field| field.parse().unwrap_or(-1))
            .collect();
        (fields[19 - 4], fields[41 - 4])
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_the_configured_priority() {
        const SCHED_OTHER: i64 = 0;
        const SCHED_IDLE: i64 = 5;
        let on_pool = |priority| async move {
            let hasher = PasswordHasher::new(&PasswordConfig {
                hash_priority: priority,
                ..small()
            })
            .unwrap();
            hasher.run(own_scheduling).await.unwrap().0
        };
        let (caller_nice, _) = own_scheduling();

        assert_eq!(on_pool(HashPriority::Low).await, (19, SCHED_OTHER));
        assert_eq!(on_pool(HashPriority::Idle).await.1, SCHED_IDLE);
        assert_eq!(
            on_pool(HashPriority::Normal).await,
            (caller_nice, SCHED_OTHER)
        );
        assert_eq!(PasswordConfig::default().hash_priority, HashPriority::Low);
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(&small()).unwrap();

        let hash = hasher.hash(secret("correct horse")).await.unwrap();

        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(
            hasher
                .verify(secret("correct horse"), Some(hash.clone()))
                .await
                .unwrap(),
            Verdict::Match { rehash: false }
        );
        assert_eq!(
            hasher
                .verify(secret("wrong horse"), Some(hash))
                .await
                .unwrap(),
            Verdict::Mismatch
        );
    }

    #[tokio::test]
    async fn bcrypt_and_old_argon2_verify_and_ask_for_a_rehash() {
        let hasher = PasswordHasher::new(&small()).unwrap();
        let bcrypt_hash = bcrypt::hash("legacy pass", 4).unwrap();
        let old = PasswordHasher::new(&PasswordConfig {
            argon2_memory_kib: 128,
            ..small()
        })
        .unwrap();
        let old_hash = old.hash(secret("legacy pass")).await.unwrap();

        assert_eq!(
            hasher
                .verify(secret("legacy pass"), Some(bcrypt_hash))
                .await
                .unwrap(),
            Verdict::Match { rehash: true }
        );
        assert_eq!(
            hasher
                .verify(secret("legacy pass"), Some(old_hash))
                .await
                .unwrap(),
            Verdict::Match { rehash: true }
        );
    }

    #[test]
    fn the_unknown_users_hash_has_the_configured_parameters_and_is_never_the_same() {
        let params = Params::new(64, 1, 1, None).unwrap();

        let (one, other) = (
            unmatchable_hash(&params).unwrap(),
            unmatchable_hash(&params).unwrap(),
        );

        assert!(one.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{one}");
        let parsed = PasswordHash::new(&one).unwrap();
        assert_eq!(parsed.hash.map(|output| output.len()), Some(32));
        assert_eq!(Cost::of(&one).unwrap(), Cost::of_params(&params));
        assert_ne!(one, other);
    }

    #[tokio::test]
    async fn an_unknown_user_never_matches() {
        let hasher = PasswordHasher::new(&small()).unwrap();

        let verdict = hasher
            .verify(secret("dummy password for unknown users"), None)
            .await
            .unwrap();

        assert_eq!(verdict, Verdict::Mismatch);
    }
}
