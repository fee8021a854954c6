//! The hashing limit: argon2id hashes per second on all cores with the service's parameters,
//! measured in the benchmark's own process so that logins can be judged against it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::{Algorithm, Argon2, Params, Version};

/// The argon2id cost the service is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// The service's defaults (OWASP): 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl std::fmt::Display for Argon2Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "argon2id m={} KiB, t={}, p={}",
            self.memory_kib, self.iterations, self.parallelism
        )
    }
}

impl Argon2Params {
    /// From the `[password]` table of `auth-service config`; a missing key keeps its default.
    pub fn from_service_config(toml: &str) -> Self {
        let mut params = Self::default();
        let mut section = "";
        for line in toml.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line;
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim().parse::<u32>());
            match (section, key, value) {
                ("[password]", "argon2_memory_kib", Ok(v)) => params.memory_kib = v,
                ("[password]", "argon2_iterations", Ok(v)) => params.iterations = v,
                ("[password]", "argon2_parallelism", Ok(v)) => params.parallelism = v,
                _ => {}
            }
        }
        params
    }
}

impl Argon2Params {
    /// The defaults, with `APP__PASSWORD__ARGON2_*` of this process's environment applied: for
    /// a service whose configuration the bench cannot read (`--url`).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok()?.trim().parse::<u32>().ok();
        let defaults = Self::default();
        Self {
            memory_kib: var("APP__PASSWORD__ARGON2_MEMORY_KIB").unwrap_or(defaults.memory_kib),
            iterations: var("APP__PASSWORD__ARGON2_ITERATIONS").unwrap_or(defaults.iterations),
            parallelism: var("APP__PASSWORD__ARGON2_PARALLELISM").unwrap_or(defaults.parallelism),
        }
    }
}

/// What the hashing threads managed.
#[derive(Debug, Clone, Copy)]
pub struct HashLimit {
    pub params: Argon2Params,
    pub threads: usize,
    pub per_second: f64,
}

/// Hashes on one thread per core for `duration`, the way the service's pool does (one
/// argon2id hash per thread at a time, a fresh memory block each).
pub async fn measure(params: Argon2Params, duration: Duration) -> anyhow::Result<HashLimit> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let argon2 = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(|error| anyhow::anyhow!("argon2 parameters {params}: {error}"))?,
    );
    tokio::task::spawn_blocking(move || hash_on_all_threads(&argon2, threads, duration))
        .await
        .context("the hashing threads panicked")?
        .map(|per_second| HashLimit {
            params,
            threads,
            per_second,
        })
}

fn hash_on_all_threads(
    argon2: &Argon2<'_>,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let failed = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (done, stop, failed) = (&done, &stop, &failed);
            scope.spawn(move || {
                let salt = [thread as u8; 16];
                let mut out = [0u8; 32];
                while !stop.load(Ordering::Relaxed) {
                    if argon2
                        .hash_password_into(b"correct horse battery staple 42", &salt, &mut out)
                        .is_err()
                    {
                        failed.store(true, Ordering::Relaxed);
                        return;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    // The scope waited for the hashes running at the stop; they count, and so does their time.
    let elapsed = started.elapsed();
    anyhow::ensure!(!failed.load(Ordering::Relaxed), "argon2id hashing failed");
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_come_from_the_password_table_only() {
        let toml = "[server]\nargon2_memory_kib = 1\n\n[password]\nargon2_memory_kib = 8192\nargon2_iterations = 3\n";

        let params = Argon2Params::from_service_config(toml);

        assert_eq!(
            params,
            Argon2Params {
                memory_kib: 8192,
                iterations: 3,
                parallelism: 1
            }
        );
    }

    #[tokio::test]
    async fn small_parameters_hash_many_times_a_second() {
        let params = Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };

        let limit = measure(params, Duration::from_millis(100)).await.unwrap();

        assert!(limit.per_second > 10.0, "{limit:?}");
    }
}
