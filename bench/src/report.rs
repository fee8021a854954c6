//! The printed result: settings, the table, and whatever went wrong.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::load::{Stats, Timing};

/// Server log lines shown after the table.
const LOG_LINES_SHOWN: usize = 10;

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub requests: u64,
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Mean server-side password hash time during the scenario, from `/metrics`.
    pub hash_ms: Option<f64>,
    pub failures: u64,
    pub failure_detail: Option<String>,
}

impl Row {
    pub fn new(scenario: String, stats: &Stats, window: Duration) -> Self {
        let ms = |quantile: f64| micros_to_ms(stats.latency.value_at_quantile(quantile));
        let failure_detail = (stats.failures() > 0).then(|| {
            let mut kinds: Vec<String> = stats
                .statuses
                .iter()
                .map(|(status, count)| format!("{count}× HTTP {status}"))
                .collect();
            if stats.transport_errors > 0 {
                kinds.push(format!("{}× no answer", stats.transport_errors));
            }
            let first = stats.first_failure.as_deref().unwrap_or("?");
            format!("{}; first: {first}", kinds.join(", "))
        });
        Self {
            scenario,
            requests: stats.requests(),
            rate: per_second(stats.requests(), window),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            max_ms: micros_to_ms(stats.latency.max()),
            hash_ms: None,
            failures: stats.failures(),
            failure_detail,
        }
    }
}

fn micros_to_ms(micros: u64) -> f64 {
    // Exact enough: latencies are far below 2^52 µs.
    micros as f64 / 1000.0
}

fn per_second(count: u64, window: Duration) -> f64 {
    let seconds = window.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Everything printed at the end of a run.
pub struct Report {
    service: String,
    timing: Timing,
    /// Login and `me` concurrency.
    concurrency: [u32; 2],
    /// Login and `me` users.
    users: [u32; 2],
    /// Service settings worth knowing, with where they came from.
    settings: Vec<String>,
    pub rows: Vec<Row>,
    pub server_log: Option<String>,
}

impl Report {
    pub fn new(service: String, timing: Timing, concurrency: [u32; 2], users: [u32; 2]) -> Self {
        Self {
            service,
            timing,
            concurrency,
            users,
            settings: Vec::new(),
            rows: Vec::new(),
            server_log: None,
        }
    }

    pub fn failures(&self) -> u64 {
        self.rows.iter().map(|row| row.failures).sum()
    }

    /// Session and password settings from `GET /api/auth/config` (argon2 only if it says).
    pub fn settings_from_auth_config(&mut self, config: &Value) {
        let Some(object) = config.as_object() else {
            return;
        };
        let wanted = |key: &str| {
            key.contains("argon2")
                || key == "max_sessions_per_user"
                || key == "access_token_ttl_seconds"
        };
        let found: Vec<String> = object
            .iter()
            .filter(|(key, _)| wanted(key))
            .map(|(key, value)| format!("{key} = {value}"))
            .collect();
        if !found.is_empty() {
            self.settings
                .push(format!("{} (GET /api/auth/config)", found.join(", ")));
        }
    }

    /// The argon2 settings from the `[password]` table of `auth-service config` output.
    pub fn settings_from_service_config(&mut self, toml: &str) {
        let found = password_settings(toml);
        if !found.is_empty() {
            self.settings.push(format!(
                "{} (`auth-service config` of the spawned binary)",
                found.join(", ")
            ));
        }
    }

    pub fn print(&self) {
        println!("{}", self.render());
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let [login_c, me_c] = self.concurrency;
        let [login_users, me_users] = self.users;
        let _ = writeln!(out, "\n## auth-bench results\n");
        let _ = writeln!(
            out,
            "cores:    {cores} (shared by this client and a spawned service)"
        );
        let _ = writeln!(out, "service:  {}", self.service);
        let _ = writeln!(
            out,
            "load:     {} s measured after {} s warm-up per scenario; login c={login_c} over {login_users} users, me c={me_c} over {me_users} other users",
            self.timing.duration.as_secs(),
            self.timing.warmup.as_secs(),
        );
        for setting in &self.settings {
            let _ = writeln!(out, "settings: {setting}");
        }
        let _ = writeln!(out);
        out.push_str(&table(&self.rows));
        self.render_failures(&mut out);
        self.render_server_log(&mut out);
        out
    }

    fn render_failures(&self, out: &mut String) {
        for row in &self.rows {
            if let Some(detail) = &row.failure_detail {
                let _ = writeln!(out, "\nFAILURES in {}: {detail}", row.scenario);
            }
        }
    }

    fn render_server_log(&self, out: &mut String) {
        let Some(log) = &self.server_log else {
            return;
        };
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            let _ = writeln!(out, "\nservice log: no warnings or errors");
            return;
        }
        let _ = writeln!(
            out,
            "\nservice log: {} lines at warn or above; the first:",
            lines.len()
        );
        for line in lines.iter().take(LOG_LINES_SHOWN) {
            let _ = writeln!(out, "  {}", line.chars().take(400).collect::<String>());
        }
    }
}

/// The table, columns aligned; `hash ms` is blank where no logins ran.
pub fn table(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|row| row.scenario.chars().count())
        .chain([8])
        .max()
        .unwrap_or(8);
    let mut out = format!(
        "{:<width$}  {:>9}  {:>9}  {:>8}  {:>8}  {:>8}  {:>8}  {:>6}\n",
        "scenario", "requests", "rate/s", "p50 ms", "p99 ms", "max ms", "hash ms", "errors"
    );
    for row in rows {
        let hash = row.hash_ms.map_or(String::new(), |ms| format!("{ms:.1}"));
        let _ = writeln!(
            out,
            "{:<width$}  {:>9}  {:>9.1}  {:>8.2}  {:>8.2}  {:>8.2}  {:>8}  {:>6}",
            row.scenario,
            row.requests,
            row.rate,
            row.p50_ms,
            row.p99_ms,
            row.max_ms,
            hash,
            row.failures
        );
    }
    out
}

/// `key = value` lines of the `[password]` table whose key is about hashing.
fn password_settings(toml: &str) -> Vec<String> {
    let mut section = "";
    let mut found = Vec::new();
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[password]" {
            if let Some((key, value)) = line.split_once('=') {
                let key = key.trim();
                if key.starts_with("argon2") || key == "hash_workers" {
                    found.push(format!("{key} = {}", value.trim()));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;
    use std::collections::BTreeMap;

    fn stats(millis: &[u64]) -> Stats {
        let mut latency = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for ms in millis {
            latency.record(ms * 1000).unwrap();
        }
        Stats {
            latency,
            statuses: BTreeMap::new(),
            transport_errors: 0,
            first_failure: None,
        }
    }

    #[test]
    fn rows_carry_rate_and_percentiles_in_milliseconds() {
        let millis: Vec<u64> = (1..=100).collect();
        let row = Row::new("me".into(), &stats(&millis), Duration::from_secs(10));

        assert_eq!(row.requests, 100);
        assert!((row.rate - 10.0).abs() < 1e-9);
        assert!((row.p50_ms - 50.0).abs() < 0.1, "{}", row.p50_ms);
        assert!((row.p99_ms - 99.0).abs() < 0.1, "{}", row.p99_ms);
        assert!((row.max_ms - 100.0).abs() < 0.1, "{}", row.max_ms);
        assert!(row.failure_detail.is_none());
    }

    #[test]
    fn failures_are_spelled_out() {
        let mut failing = stats(&[1]);
        failing.statuses.insert(401, 3);
        failing.transport_errors = 1;
        failing.first_failure = Some("HTTP 401: session ended".into());

        let row = Row::new("me".into(), &failing, Duration::from_secs(1));

        assert_eq!(row.failures, 4);
        assert_eq!(
            row.failure_detail.as_deref(),
            Some("3× HTTP 401, 1× no answer; first: HTTP 401: session ended")
        );
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let mut row = Row::new(
            "login alone (c=4)".into(),
            &stats(&[40, 60]),
            Duration::from_secs(2),
        );
        row.hash_ms = Some(38.25);
        let printed = table(&[row]);
        let lines: Vec<&str> = printed.lines().collect();

        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), lines[1].len(), "{printed}");
        assert!(lines[0].starts_with("scenario "), "{printed}");
        assert!(lines[1].starts_with("login alone (c=4)  "), "{printed}");
        assert!(lines[1].contains("  1.0  "), "{printed}");
        assert!(
            lines[1].contains("  38.2  ") || lines[1].contains("  38.3  "),
            "{printed}"
        );
    }

    #[test]
    fn argon2_settings_are_read_from_the_password_table_only() {
        let toml = "[server]\nport = 1\n\n[password]\nmin_length = 8\nargon2_memory_kib = 19456\nargon2_iterations = 2\nhash_workers = 0\n\n[log]\nlevel = \"warn\"\n";

        assert_eq!(
            password_settings(toml),
            [
                "argon2_memory_kib = 19456",
                "argon2_iterations = 2",
                "hash_workers = 0"
            ]
        );
    }
}
