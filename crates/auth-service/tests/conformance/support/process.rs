//! The binary as an operator runs it: spawned with a clean environment, its output captured,
//! stopped with SIGTERM or killed outright.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_auth-service");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary with a clean environment: only the variables a test gives it, and the
/// key-encryption key that PostgreSQL needs to start.
pub fn command(dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "APP__AUTH__KEY_ENCRYPTION_KEY",
            super::app::TEST_KEY_ENCRYPTION_KEY,
        );
    command
}

pub fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Waits until `path` on `port` answers 200.
pub async fn wait_ok(port: u16, path: &str) -> bool {
    let client = reqwest::Client::new();
    for _ in 0..500 {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
        {
            if response.status() == 200 {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

pub async fn wait_ready(port: u16) -> bool {
    wait_ok(port, "/ready").await
}

/// A running binary on free HTTP and gRPC ports of 127.0.0.1, its stdout and stderr
/// captured in files of `dir`.
pub struct Spawned {
    pub port: u16,
    pub base_url: String,
    child: Child,
    output: Vec<PathBuf>,
}

impl Spawned {
    /// Starts the binary in `dir` with `env` (plus the ports) and waits for `/health`. A free
    /// port can be taken by another test between its choice and the binary's bind: a start
    /// that fails for that alone is tried again on other ports.
    pub async fn start(dir: &Path, env: &[(&str, String)]) -> Self {
        for attempt in 1..=3 {
            match Self::try_start(dir, env).await {
                Ok(spawned) => return spawned,
                Err(output) if attempt < 3 && output.contains("Address already in use") => {}
                Err(output) => panic!("the binary did not answer /health:\n{output}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    async fn try_start(dir: &Path, env: &[(&str, String)]) -> Result<Self, String> {
        let (port, grpc) = (free_port(), free_port());
        let run = format!("run-{port}");
        let output = vec![
            dir.join(format!("{run}.stdout")),
            dir.join(format!("{run}.stderr")),
        ];
        let mut command = command(dir);
        command
            .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
            .env("APP__SERVER__HOST", "127.0.0.1")
            .env("APP__SERVER__PORT", port.to_string())
            .env("APP__SERVER__GRPC_PORT", grpc.to_string())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&output[0]).unwrap())
            .stderr(std::fs::File::create(&output[1]).unwrap());
        let mut spawned = Self {
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            child: command.spawn().unwrap(),
            output,
        };
        if !wait_ok(port, "/health").await {
            let _ = spawned.child.kill();
            let _ = spawned.child.wait();
            return Err(spawned.output());
        }
        Ok(spawned)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Kills the process (SIGKILL: a crash, nothing finishes) and waits for it to go.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code if it exits within `within`.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        wait_exit(&mut self.child, within).and_then(|status| status.code())
    }

    /// Everything written to stdout and stderr so far.
    pub fn output(&self) -> String {
        self.output
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
