//! `GET /api/auth/me` (and the `/health` floor) and `POST /api/auth/introspect` driven by `wrk`
//! (C, epoll, a request formatted once per thread): the leanest client measured, for the routes
//! whose rate the client's own cost would bound, and the same client for the figures compared
//! with each other. The scripts are `bench/wrk/me.lua` and `bench/wrk/introspect.lua`, built
//! into this binary; wrk runs under bash so that bash's `times` can say how much CPU it used.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use tokio::process::Command;

/// What wrk sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// `GET` with the tokens as bearers in turn (none: no credentials).
    Get,
    /// `POST {"token": …}` with the tokens in turn; an answer other than `{"active":true…` is
    /// a failure.
    Introspect,
}

impl Script {
    fn source(self) -> (&'static str, &'static str) {
        match self {
            Self::Get => ("me.lua", include_str!("../wrk/me.lua")),
            Self::Introspect => ("introspect.lua", include_str!("../wrk/introspect.lua")),
        }
    }
}
pub const INSTALL_HINT: &str = "install it with `apt-get install -y wrk` (Debian/Ubuntu)";

/// What the script's `done` prints: counts and latencies in microseconds.
#[derive(Debug, Clone, Deserialize)]
pub struct WrkResult {
    pub requests: f64,
    pub duration_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub status_errors: f64,
    pub connect_errors: f64,
    pub read_errors: f64,
    pub write_errors: f64,
    pub timeouts: f64,
    /// Answers that were not an active introspection (`Script::Introspect` only).
    #[serde(default)]
    pub inactive: f64,
    /// CPU seconds wrk used (user + system), when bash's `times` said.
    #[serde(skip)]
    pub cpu_seconds: Option<f64>,
}

impl WrkResult {
    pub fn rate(&self) -> f64 {
        if self.duration_us > 0.0 {
            self.requests / (self.duration_us / 1e6)
        } else {
            0.0
        }
    }

    pub fn failures(&self) -> u64 {
        let sum = self.status_errors
            + self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.timeouts
            + self.inactive;
        sum as u64
    }
}

/// Whether `wrk` is on the PATH.
pub async fn installed() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok()
}

/// Runs `wrk` once against `{base}{path}` as `script` says, with `connections` connections on
/// `threads` threads for `duration`, presenting `tokens` in turn.
pub async fn run(
    (base, path, script): (&str, &str, Script),
    tokens: &[String],
    threads: u32,
    connections: u32,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<WrkResult> {
    let (name, source) = script.source();
    let script = dir.join(name);
    std::fs::write(&script, source).context("cannot write the wrk script")?;
    // wrk's shortest run is one second.
    let seconds = duration.as_secs().max(1);
    // Through bash, whose `times` then says how much CPU wrk used (its children's line).
    let output = Command::new("bash")
        .arg("-c")
        .arg(r#"wrk "$@"; status=$?; times >&2; exit $status"#)
        .arg("wrk")
        .arg(format!("--threads={threads}"))
        .arg(format!("--connections={}", connections.max(threads)))
        .arg(format!("--duration={seconds}s"))
        .arg("--timeout=30s")
        .arg("--script")
        .arg(&script)
        .arg(format!("{base}{path}"))
        .env("AUTH_BENCH_TOKENS", tokens.join(","))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("cannot run wrk: {INSTALL_HINT}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {} {}",
            output.status,
            stdout.trim(),
            stderr.trim()
        );
    }
    let mut result = parse(&stdout)?;
    result.cpu_seconds = children_cpu_seconds(&stderr);
    Ok(result)
}

/// The children's line of bash's `times` (`0m1.250s 0m0.750s`): user + system seconds.
fn children_cpu_seconds(stderr: &str) -> Option<f64> {
    let line = stderr
        .lines()
        .rev()
        .find(|line| line.contains("m") && line.ends_with('s'))?;
    line.split_whitespace()
        .map(|time| {
            let (minutes, seconds) = time.trim_end_matches('s').split_once('m')?;
            Some(minutes.parse::<f64>().ok()? * 60.0 + seconds.parse::<f64>().ok()?)
        })
        .sum()
}

/// The JSON line the script's `done` prints, among wrk's own report.
fn parse(stdout: &str) -> anyhow::Result<WrkResult> {
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .with_context(|| format!("wrk printed no result line:\n{stdout}"))?;
    serde_json::from_str(line).with_context(|| format!("wrk's result line: {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_line_is_found_after_wrks_report() {
        let stdout = "Running 1s test @ http://x/api/auth/me\n  1 threads and 2 connections\n{\"requests\":2000,\"duration_us\":1000000,\"p50_us\":900,\"p99_us\":2100,\"max_us\":3000,\"status_errors\":1,\"connect_errors\":0,\"read_errors\":0,\"write_errors\":0,\"timeouts\":0}\n";

        let result = parse(stdout).unwrap();

        assert!((result.rate() - 2000.0).abs() < 1e-9);
        assert_eq!(result.failures(), 1);
        assert!((result.p99_us - 2100.0).abs() < 1e-9);
    }

    #[test]
    fn inactive_introspections_are_failures() {
        let stdout = "{\"requests\":10,\"duration_us\":1000000,\"p50_us\":900,\"p99_us\":2100,\"max_us\":3000,\"status_errors\":0,\"connect_errors\":0,\"read_errors\":0,\"write_errors\":0,\"timeouts\":0,\"inactive\":3}\n";

        assert_eq!(parse(stdout).unwrap().failures(), 3);
    }

    #[test]
    fn wrks_cpu_time_is_the_childrens_line_of_times() {
        let stderr = "0m0.003s 0m0.001s\n0m1.250s 1m0.750s\n";

        assert_eq!(children_cpu_seconds(stderr), Some(62.0));
        assert_eq!(children_cpu_seconds("nothing"), None);
    }
}
