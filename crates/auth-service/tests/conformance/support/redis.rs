//! Redis for tests: the shared server named by `TEST_REDIS_URL` (required under `CI`), and a
//! private `redis-server` a test may stop and start again to stage an outage without touching
//! the shared one.

use std::process::Command;
use std::time::Duration;

use super::owned::{installed, Owned};
use super::process::free_port;

/// How long a freshly started `redis-server` may take to answer on a busy machine.
const STARTUP_DEADLINE: Duration = Duration::from_secs(20);

/// The shared Redis URL for tests, or `None` when tests may skip it.
pub fn shared_redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI is set but TEST_REDIS_URL is not: start Redis and export \
             TEST_REDIS_URL=redis://127.0.0.1:6379"
        ),
        _ => None,
    }
}

/// [`shared_redis_url`], printing why `test` is skipped when there is none.
pub fn shared_redis_for(test: &str) -> Option<String> {
    let url = shared_redis_url();
    if url.is_none() {
        eprintln!("SKIPPED {test}: TEST_REDIS_URL is not set");
    }
    url
}

/// A `redis-server` process owned by one test, on its own port, without persistence.
pub struct OwnRedis {
    pub port: u16,
    process: Owned,
    dir: tempfile::TempDir,
}

impl OwnRedis {
    /// Whether `redis-server` can be run here; under `CI` it must be, otherwise `test` is
    /// skipped with a note.
    pub fn available(test: &str) -> bool {
        installed(
            "redis-server",
            test,
            "install Redis (apt-get install redis-server)",
        )
    }

    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> Self {
        // Another process may take the port between choosing and binding it; try a few.
        for _ in 0..5 {
            let mut redis = Self {
                port: free_port(),
                process: Owned::default(),
                dir: tempfile::tempdir().expect("temp dir for redis-server"),
            };
            if redis.launch().await {
                return redis;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (paused or not) and waits for its exit.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts the server again on the same port (empty: nothing is persisted).
    pub async fn start_again(&mut self) {
        self.stop();
        assert!(
            self.launch().await,
            "redis-server did not start again on port {}",
            self.port
        );
    }

    /// Whether the server on our port is our process, not another test's that got the port.
    async fn answers_as(&self, pid: u32) -> bool {
        let attempt = async {
            let client = ::redis::Client::open(self.url()).ok()?;
            let mut connection = client.get_multiplexed_async_connection().await.ok()?;
            let info: String = ::redis::cmd("INFO")
                .arg("server")
                .query_async(&mut connection)
                .await
                .ok()?;
            Some(info.contains(&format!("process_id:{pid}\r\n")))
        };
        tokio::time::timeout(Duration::from_secs(2), attempt)
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers, like a Redis
    /// stuck on a slow disk or a dropped network path.
    pub fn pause(&self) {
        self.process.pause();
    }

    /// Lets a paused server answer again (SIGCONT).
    pub fn resume(&self) {
        self.process.resume();
    }

    /// Spawns the process; false when it exits or stays silent (e.g. the port was taken).
    async fn launch(&mut self) -> bool {
        let pid = self.process.spawn(
            Command::new("redis-server")
                .args(["--port", &self.port.to_string()])
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(self.dir.path()),
        );
        let deadline = tokio::time::Instant::now() + STARTUP_DEADLINE;
        while tokio::time::Instant::now() < deadline {
            if self.answers_as(pid).await {
                return true;
            }
            if self.process.exited() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop();
        false
    }
}
