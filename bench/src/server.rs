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

/// How long a spawned service may take to answer `GET /health`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of the service's log shown when it fails to start.
const LOG_TAIL_LINES: usize = 30;

pub enum Service {
    External { base_url: String },
    Spawned(Box<Spawned>),
}

/// A running child process; killed when dropped, so an error on the way out cannot leak it.
pub struct Spawned {
    child: Child,
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
        if !Api::new(&base_url)?.healthy().await {
            bail!("no service answers GET {base_url}/health with 200");
        }
        Ok(Self::External { base_url })
    }

    /// Spawns `bin` on a free port of 127.0.0.1 and waits until it is healthy.
    pub async fn spawn(bin: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
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
        let env = server_env(port, free_port()?, &database_url);
        let log = dir.path().join("server.log");
        let child = start(&bin, &env, dir.path(), &log)?;
        let mut spawned = Spawned {
            child,
            bin,
            base_url: format!("http://127.0.0.1:{port}"),
            database: redact(&database_url),
            env,
            log,
            dir,
        };
        spawned.wait_until_healthy().await?;
        Ok(Self::Spawned(Box::new(spawned)))
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

    /// Kills a spawned service and returns what it logged (at level warn and above).
    pub async fn stop(self) -> Option<String> {
        let Self::Spawned(mut spawned) = self else {
            return None;
        };
        if let Err(error) = spawned.child.kill().await {
            eprintln!("warning: cannot stop the service: {error}");
        }
        std::fs::read_to_string(&spawned.log).ok()
    }
}

impl Spawned {
    async fn wait_until_healthy(&mut self) -> anyhow::Result<()> {
        let api = Api::new(&self.base_url)?;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the service exited during startup ({status}); its output:\n{}",
                    self.log_tail()
                );
            }
            if api.healthy().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the service did not answer GET /health within {} s; its output:\n{}",
                    STARTUP_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
    let out = std::fs::File::create(log).context("cannot create the service log file")?;
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
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
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
