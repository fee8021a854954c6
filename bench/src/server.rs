//! The service under test: a child process this benchmark spawns, or one already running.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::api::Api;
use crate::http::Target;

/// How long a spawned service may take to answer `GET /health`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a starting service is asked for `GET /health`: the resolution of startup times.
const HEALTH_POLL: Duration = Duration::from_millis(2);
/// How long a stopping service may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of the service's log shown when it fails to start.
const LOG_TAIL_LINES: usize = 30;

pub enum Service {
    External { base_url: String },
    Spawned(Box<Spawned>),
}

/// A running child process; killed when dropped, so an error on the way out cannot leak it.
pub struct Spawned {
    child: Child,
    /// From spawning the process to its first `GET /health` 200.
    started_in: Duration,
    bin: PathBuf,
    base_url: String,
    database: String,
    env: Vec<(&'static str, String)>,
    log: PathBuf,
    // Holds the SQLite file and the log; removed when the benchmark ends.
    dir: TempDir,
}

impl Service {
    /// A service somebody else started; it must answer `GET /health`.
    pub async fn external(url: &str) -> anyhow::Result<Self> {
        let base_url = url.trim_end_matches('/').to_owned();
        if !Api::new(Target::resolve(&base_url).await?).healthy().await {
            bail!("no service answers GET {base_url}/health with 200");
        }
        Ok(Self::External { base_url })
    }

    /// Spawns `bin` on a free port of 127.0.0.1 and waits until it is healthy.
    pub async fn spawn(bin: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        Self::spawn_with(bin, database_url, Vec::new()).await
    }

    /// [`Service::spawn`] with settings of its own on top (`APP__…` variables: a broker, Redis).
    pub async fn spawn_with(
        bin: &Path,
        database_url: Option<&str>,
        extra: Vec<(&'static str, String)>,
    ) -> anyhow::Result<Self> {
        let bin = locate(bin)?;
        let dir = tempfile::Builder::new()
            .prefix("auth-bench-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let database_url = match database_url {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}", dir.path().join("bench.db").display()),
        };
        let port = free_port()?;
        let mut env = server_env(port, free_port()?, &database_url);
        env.extend(extra);
        let log = dir.path().join("server.log");
        let spawned_at = Instant::now();
        let child = start(&bin, &env, dir.path(), &log)?;
        let mut spawned = Spawned {
            child,
            started_in: Duration::ZERO,
            bin,
            base_url: format!("http://127.0.0.1:{port}"),
            database: redact(&database_url),
            env,
            log,
            dir,
        };
        spawned.started_in = spawned.wait_until_healthy(spawned_at).await?;
        Ok(Self::Spawned(Box::new(spawned)))
    }

    /// Stops a spawned service with SIGTERM and starts it again on the same database and
    /// ports; how long the new one took to answer `GET /health`.
    pub async fn restart(&mut self) -> anyhow::Result<Duration> {
        let Self::Spawned(spawned) = self else {
            anyhow::bail!("a service this benchmark did not start cannot be restarted");
        };
        spawned.terminate().await?;
        let spawned_at = Instant::now();
        spawned.child = start(&spawned.bin, &spawned.env, spawned.dir.path(), &spawned.log)?;
        spawned.started_in = spawned.wait_until_healthy(spawned_at).await?;
        Ok(spawned.started_in)
    }

    /// How long a spawned service took from spawn to its first `GET /health` 200.
    pub fn started_in(&self) -> Option<Duration> {
        match self {
            Self::External { .. } => None,
            Self::Spawned(spawned) => Some(spawned.started_in),
        }
    }

    /// The process id of a spawned service.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Self::External { .. } => None,
            Self::Spawned(spawned) => spawned.child.id(),
        }
    }

    pub fn base_url(&self) -> &str {
        match self {
            Self::External { base_url } => base_url,
            Self::Spawned(spawned) => &spawned.base_url,
        }
    }

    /// One line saying what is being measured.
    pub fn describe(&self) -> String {
        match self {
            Self::External { base_url } => format!("already running at {base_url}"),
            Self::Spawned(spawned) => format!(
                "spawned {} at {}, database {}",
                spawned.bin.display(),
                spawned.base_url,
                spawned.database
            ),
        }
    }

    /// The effective configuration (`auth-service config`, TOML, secrets redacted) of a
    /// spawned service, computed with the same environment; `None` for an external one.
    pub async fn effective_config(&self) -> Option<String> {
        let Self::Spawned(spawned) = self else {
            return None;
        };
        let output = command(&spawned.bin, &spawned.env, spawned.dir.path())
            .arg("config")
            .stdin(Stdio::null())
            .output()
            .await
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Creates a verified administrator with the service's own CLI (`users create-admin`,
    /// the password on standard input), with the spawned service's settings.
    pub async fn create_admin(&self, username: &str, password: &str) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        let Self::Spawned(spawned) = self else {
            bail!("an administrator can only be created for a service this benchmark started");
        };
        let mut child = command(&spawned.bin, &spawned.env, spawned.dir.path())
            .args(["users", "create-admin", "--username", username, "--email"])
            .arg(format!("{username}@bench.example.com"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run `auth-service users create-admin`")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(format!("{password}\n").as_bytes()).await?;
        }
        let output = child.wait_with_output().await?;
        if !output.status.success() {
            bail!(
                "`auth-service users create-admin` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Stops a spawned service (SIGTERM, then SIGKILL) and returns what it logged (at level
    /// warn and above).
    pub async fn stop(self) -> Option<String> {
        let Self::Spawned(mut spawned) = self else {
            return None;
        };
        if let Err(error) = spawned.terminate().await {
            eprintln!("warning: cannot stop the service: {error:#}");
        }
        std::fs::read_to_string(&spawned.log).ok()
    }
}

impl Spawned {
    /// Polls `GET /health` until it answers 200; the time since `spawned_at`.
    async fn wait_until_healthy(&mut self, spawned_at: Instant) -> anyhow::Result<Duration> {
        let api = Api::new(Target::resolve(&self.base_url).await?);
        let deadline = spawned_at + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the service exited during startup ({status}); its output:\n{}",
                    self.log_tail()
                );
            }
            if api.healthy().await {
                return Ok(spawned_at.elapsed());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the service did not answer GET /health within {} s; its output:\n{}",
                    STARTUP_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
    }

    /// SIGTERM, so the service shuts down as it would in production; SIGKILL if it lingers.
    async fn terminate(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        if let Some(pid) = self.child.id() {
            // `kill(1)` rather than libc: this workspace forbids unsafe code.
            let sent = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            if matches!(sent, Ok(status) if status.success()) {
                if let Ok(exited) = tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
                    exited?;
                    return Ok(());
                }
                eprintln!(
                    "warning: the service did not exit within {} s of SIGTERM; killing it",
                    STOP_TIMEOUT.as_secs()
                );
            }
        }
        self.child.kill().await?;
        Ok(())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

/// The binary as given, else relative to the workspace root (so `cargo run` works from any
/// folder of the workspace); a clear message when it has not been built.
fn locate(bin: &Path) -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [bin.to_path_buf(), workspace.join(bin)];
    match candidates.iter().find(|path| path.is_file()) {
        Some(path) => path
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", path.display())),
        None => bail!(
            "the service binary {} does not exist: build it first with \
             `cargo build --release -p auth-service`, or pass --server-bin PATH or --url URL",
            bin.display()
        ),
    }
}

/// A port that was free a moment ago: bind port 0, read the port, let it go.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The settings the benchmark decides; everything else keeps the service's defaults (or an
/// `APP__…` variable of the caller's environment, which the child inherits).
fn server_env(port: u16, grpc_port: u16, database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("APP__SERVER__HOST", "127.0.0.1".into()),
        ("APP__SERVER__PORT", port.to_string()),
        ("APP__SERVER__GRPC_PORT", grpc_port.to_string()),
        ("APP__DATABASE__URL", database_url.into()),
        ("APP__LOG__LEVEL", "warn".into()),
        // The per-IP limits would refuse a load generator on one address after a few
        // requests; the benchmark measures the work, not the limiter.
        ("APP__LIMITS__ENABLED", "false".into()),
        // One JSON object per line: no colour codes in the captured log.
        ("APP__LOG__FORMAT", "json".into()),
    ]
}

/// The service command with our environment, run in `dir` so that no stray `config.toml`
/// or `.env` of the caller's working directory is read.
fn command(bin: &Path, env: &[(&'static str, String)], dir: &Path) -> Command {
    let mut command = Command::new(bin);
    command
        .current_dir(dir)
        .env_remove("APP_CONFIG")
        .env_remove("RUST_LOG")
        .envs(
            env.iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        )
        .kill_on_drop(true);
    command
}

fn start(
    bin: &Path,
    env: &[(&'static str, String)],
    dir: &Path,
    log: &Path,
) -> anyhow::Result<Child> {
    // Appended to, so that the warnings of every start of a run are kept.
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .context("cannot open the service log file")?;
    let err = out.try_clone()?;
    command(bin, env, dir)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))
}

/// A database URL fit to print: the password replaced.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_not_printed() {
        assert_eq!(
            redact("postgres://app:hunter2@db:5432/auth"),
            "postgres://app:REDACTED@db:5432/auth"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
    }

    #[test]
    fn a_missing_binary_says_how_to_build_it() {
        let error = locate(Path::new("no/such/auth-service"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("cargo build --release"), "{error}");
    }
}
