//! The printed result: per database, a settings line and one markdown table with every figure
//! beside its target (issues 20 and 18) and the machine's load average when it was measured,
//! then whatever went wrong; and the events-per-sink table (issue 19).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::database::Backend;
use crate::events;
use crate::hashing::HashLimit;
use crate::load::{Kind, Stats};
use crate::replicas::ReplicaFigures;
use crate::targets::{self, Verdict};

/// Server log lines shown after the table.
const LOG_LINES_SHOWN: usize = 10;

/// One measured load scenario (or one group of a scenario run beside another).
#[derive(Debug, Clone)]
pub struct Row {
    pub kind: Kind,
    /// Whether it ran beside the login flood.
    pub flood: bool,
    pub label: String,
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Mean server-side password hash time during the scenario, from `/metrics`.
    pub hash_ms: Option<f64>,
    /// CPU time per successful request of the service and of the load generator, in µs; only
    /// for a scenario of one group (a flood's CPU cannot be split between its groups).
    pub cpu_us: Option<Cpu>,
    pub failures: u64,
    pub failure_detail: Option<String>,
    /// The machine's 1-minute load average when the scenario ended (`/proc/loadavg`).
    pub load: String,
}

impl Row {
    pub fn new(kind: Kind, label: String, stats: &Stats, window: Duration) -> Self {
        let ms = |quantile: f64| micros_to_ms(stats.latency.value_at_quantile(quantile));
        let failure_detail = (stats.failures() > 0).then(|| {
            let mut kinds: Vec<String> = stats
                .statuses
                .iter()
                .map(|(status, count)| format!("{count}× HTTP {status}"))
                .collect();
            if stats.transport_errors > 0 {
                kinds.push(format!(
                    "{}× no or unexpected answer",
                    stats.transport_errors
                ));
            }
            let first = stats.first_failure.as_deref().unwrap_or("?");
            format!("{}; first: {first}", kinds.join(", "))
        });
        Self {
            kind,
            flood: false,
            label,
            rate: per_second(stats.requests(), window),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            hash_ms: None,
            cpu_us: None,
            failures: stats.failures(),
            failure_detail,
            load: load_average(),
        }
    }
}

/// The 1-, 5- and 15-minute load averages, as `uptime` prints them; empty off Linux.
fn load_averages() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ])
}

/// The 1-minute load average now, for a table cell.
pub fn load_average() -> String {
    load_averages().map_or(String::new(), |[one, _, _]| format!("{one:.2}"))
}

/// A line saying how busy the machine is, like `uptime`.
pub fn machine_load(when: &str) -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    match load_averages() {
        Some([one, five, fifteen]) => format!(
            "machine load {when}: load average {one:.2}, {five:.2}, {fifteen:.2} on {cores} cores"
        ),
        None => format!("machine load {when}: unknown (no /proc/loadavg)"),
    }
}

/// The events-per-sink table of one database.
pub fn render_events(database_url: Option<&str>, outcomes: &[events::Outcome]) -> String {
    let backend = match database_url {
        Some(url) if url.starts_with("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## {} — events per sink (issue 19)\n",
        backend.name()
    );
    let _ = writeln!(
        out,
        "load: rotating refreshes and logins at once, as in the table above; published = the sink's counter of `/metrics` over the load; written = what the load put in the outbox (published by the end of the drain)\n"
    );
    out.push_str(&table(&events::lines(outcomes)));
    out
}

pub fn micros_to_ms(micros: u64) -> f64 {
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

/// CPU microseconds per request: the service's, the PostgreSQL backends' serving it, and the
/// load generator's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub service: Option<f64>,
    pub database: Option<f64>,
    pub client: Option<f64>,
}

/// Everything measured on one database.
pub struct Figures {
    pub backend: Backend,
    pub service: String,
    pub settings: Vec<String>,
    pub startup_fresh: Option<Duration>,
    pub startup_existing: Vec<Duration>,
    pub hash_limit: Option<HashLimit>,
    pub rows: Vec<Row>,
    /// `me` driven by wrk instead of this benchmark's client, if it ran.
    pub loader_check: Option<Row>,
    pub rss_idle_kib: Option<u64>,
    pub rss_peak_kib: Option<u64>,
    pub server_log: Option<String>,
    /// The two-replica run (PostgreSQL), or why it did not run.
    pub replicas: Option<Result<ReplicaFigures, String>>,
    /// The API-key scenario ran, but there were no API keys to present (issue 18's hook).
    pub api_key_pending: bool,
    /// Why the client-credential grants were not measured, when they were not.
    pub grants_note: Option<String>,
}

impl Figures {
    pub fn new(backend: Backend, service: String) -> Self {
        Self {
            backend,
            service,
            settings: Vec::new(),
            startup_fresh: None,
            startup_existing: Vec::new(),
            hash_limit: None,
            rows: Vec::new(),
            loader_check: None,
            rss_idle_kib: None,
            rss_peak_kib: None,
            server_log: None,
            replicas: None,
            api_key_pending: false,
            grants_note: None,
        }
    }

    pub fn failures(&self) -> u64 {
        let replicas = self.replicas.iter().flatten();
        let replica_rows = replicas.flat_map(|figures| [&figures.one, &figures.pair]);
        self.rows
            .iter()
            .chain(&self.loader_check)
            .chain(replica_rows)
            .map(|row| row.failures)
            .sum()
    }

    pub fn row(&self, kind: Kind, flood: bool) -> Option<&Row> {
        self.rows
            .iter()
            .find(|row| row.kind == kind && row.flood == flood)
    }

    /// The median start-to-healthy time on an existing database.
    pub fn startup_existing_median(&self) -> Option<Duration> {
        let mut sorted = self.startup_existing.clone();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n## {} — auth-bench\n", self.backend.name());
        let _ = writeln!(out, "service:  {}", self.service);
        for setting in &self.settings {
            let _ = writeln!(out, "settings: {setting}");
        }
        let _ = writeln!(out);
        out.push_str(&table(&targets::lines(self)));
        self.render_failures(&mut out);
        self.render_server_log(&mut out);
        out
    }

    fn render_failures(&self, out: &mut String) {
        let replicas = self.replicas.iter().flatten();
        let replica_rows = replicas.flat_map(|figures| [&figures.one, &figures.pair]);
        for row in self
            .rows
            .iter()
            .chain(&self.loader_check)
            .chain(replica_rows)
        {
            if let Some(detail) = &row.failure_detail {
                let _ = writeln!(out, "\nFAILURES in {}: {detail}", row.label);
            }
        }
    }

    fn render_server_log(&self, out: &mut String) {
        let Some(log) = &self.server_log else {
            return;
        };
        let kinds = log_kinds(log);
        if kinds.is_empty() {
            let _ = writeln!(out, "\nservice log: no warnings or errors");
            return;
        }
        let _ = writeln!(out, "\nservice log, at warn and above, by kind:");
        for (kind, count) in kinds.iter().take(LOG_LINES_SHOWN) {
            let _ = writeln!(out, "  {count:>5} × {kind}");
        }
    }
}

/// Log lines grouped by level, message and (for slow statements) the statement's summary,
/// most frequent first; a line that is not JSON is its own kind.
fn log_kinds(log: &str) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let kind = match serde_json::from_str::<Value>(line) {
            Ok(entry) => {
                let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
                let summary = field("summary");
                let mut kind = format!("{} {}", field("level"), field("message"));
                if !summary.is_empty() {
                    kind = format!("{kind}: {summary}");
                }
                kind
            }
            Err(_) => line.to_owned(),
        };
        let kind: String = kind.chars().take(200).collect();
        match counts.iter_mut().find(|(seen, _)| *seen == kind) {
            Some((_, count)) => *count += 1,
            None => counts.push((kind, 1)),
        }
    }
    counts.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    counts
}

/// One line of the table: a figure, its value, and its target with the verdict.
#[derive(Debug, Clone, Default)]
pub struct Line {
    pub figure: String,
    pub value: String,
    pub p50: String,
    pub p99: String,
    pub errors: String,
    pub service_cpu: String,
    pub database_cpu: String,
    pub client_cpu: String,
    pub target: String,
    pub verdict: Option<Verdict>,
    /// The 1-minute load average when it was measured.
    pub load: String,
}

const HEADERS: [&str; 11] = [
    "figure",
    "value",
    "p50 ms",
    "p99 ms",
    "errors",
    "CPU µs/req: service",
    "PostgreSQL",
    "client",
    "target",
    "result",
    "load 1m",
];

/// A markdown table, columns padded so that it also reads as plain text.
pub fn table(lines: &[Line]) -> String {
    let cells: Vec<[String; 11]> = lines
        .iter()
        .map(|line| {
            [
                line.figure.clone(),
                line.value.clone(),
                line.p50.clone(),
                line.p99.clone(),
                line.errors.clone(),
                line.service_cpu.clone(),
                line.database_cpu.clone(),
                line.client_cpu.clone(),
                line.target.clone(),
                line.verdict.map_or(String::new(), |v| v.to_string()),
                line.load.clone(),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    // Figures and targets read left to right; numbers line up on the right.
    let right = [
        false, true, true, true, true, true, true, true, false, false, true,
    ];
    let render = |row: &[String]| {
        let mut line = String::from("|");
        for ((cell, width), right) in row.iter().zip(widths).zip(right) {
            let pad = width - cell.chars().count();
            let (left, trail) = if right { (pad, 0) } else { (0, pad) };
            let _ = write!(line, " {}{cell}{} |", " ".repeat(left), " ".repeat(trail));
        }
        line.push('\n');
        line
    };
    let mut out = render(&HEADERS.map(String::from));
    out.push('|');
    for (width, right) in widths.iter().zip(right) {
        // A cell is its text and a space either side; `:` on the right marks a number column.
        let dashes = "-".repeat(width + 1);
        let _ = write!(out, "{dashes}{}|", if right { ':' } else { '-' });
    }
    out.push('\n');
    for row in &cells {
        out.push_str(&render(row));
    }
    out
}

/// `12345.6` → `12 346`: whole numbers with a space between thousands.
pub fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A rate: one decimal below 1 000/s, whole and grouped above.
pub fn rate(value: f64) -> String {
    if value < 1000.0 {
        format!("{value:.1}/s")
    } else {
        format!("{}/s", grouped(value))
    }
}

pub fn ms(value: f64) -> String {
    format!("{value:.2}")
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `key = value` of the `[password]` table of `auth-service config` output.
pub fn password_setting(toml: &str, wanted: &str) -> Option<String> {
    let mut section = "";
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[password]" {
            if let Some((key, value)) = line.split_once('=') {
                if key.trim() == wanted {
                    return Some(value.trim().to_owned());
                }
            }
        }
    }
    None
}

/// Session settings from `GET /api/auth/config` worth a settings line (argon2 if it says).
pub fn auth_config_settings(config: &Value) -> Option<String> {
    let object = config.as_object()?;
    let wanted = |key: &str| {
        key.contains("argon2") || key == "max_sessions_per_user" || key.ends_with("_ttl_seconds")
    };
    let found: Vec<String> = object
        .iter()
        .filter(|(key, _)| wanted(key))
        .map(|(key, value)| format!("{key} = {value}"))
        .collect();
    (!found.is_empty()).then(|| format!("{} (GET /api/auth/config)", found.join(", ")))
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
            completed: millis.len() as u64,
            statuses: BTreeMap::new(),
            transport_errors: 0,
            first_failure: None,
        }
    }

    #[test]
    fn rows_carry_rate_and_percentiles_in_milliseconds() {
        let millis: Vec<u64> = (1..=100).collect();
        let row = Row::new(
            Kind::Me,
            "me".into(),
            &stats(&millis),
            Duration::from_secs(10),
        );

        assert!((row.rate - 10.0).abs() < 1e-9);
        assert!((row.p50_ms - 50.0).abs() < 0.1, "{}", row.p50_ms);
        assert!((row.p99_ms - 99.0).abs() < 0.1, "{}", row.p99_ms);
        assert!(row.failure_detail.is_none());
    }

    #[test]
    fn failures_are_spelled_out() {
        let mut failing = stats(&[1]);
        failing.statuses.insert(401, 3);
        failing.transport_errors = 1;
        failing.first_failure = Some("HTTP 401: session ended".into());

        let row = Row::new(Kind::Me, "me".into(), &failing, Duration::from_secs(1));

        assert_eq!(row.failures, 4);
        assert_eq!(
            row.failure_detail.as_deref(),
            Some("3× HTTP 401, 1× no or unexpected answer; first: HTTP 401: session ended")
        );
    }

    #[test]
    fn the_table_is_markdown_with_aligned_columns() {
        let lines = [Line {
            figure: "`me` (c=16)".into(),
            value: "10 761/s".into(),
            p50: "1.41".into(),
            p99: "3.36".into(),
            errors: "0".into(),
            service_cpu: "120".into(),
            database_cpu: String::new(),
            client_cpu: "20".into(),
            target: "≥ 15 000/s".into(),
            verdict: Some(Verdict::Miss),
            load: String::new(),
        }];

        let printed = table(&lines);
        let rows: Vec<&str> = printed.lines().collect();

        assert_eq!(rows.len(), 3, "{printed}");
        assert!(rows[0].starts_with("| figure "), "{printed}");
        assert!(rows[1].starts_with("|---"), "{printed}");
        assert!(rows[2].contains("| 10 761/s |"), "{printed}");
        assert!(rows[2].ends_with("| MISS   |         |"), "{printed}");
        let widths: Vec<usize> = rows.iter().map(|r| r.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{printed}");
    }

    #[test]
    fn log_lines_are_counted_by_kind_most_frequent_first() {
        let log = r#"{"level":"WARN","message":"Mail is only logged"}
{"level":"WARN","message":"slow statement","summary":"UPDATE outbox …","elapsed":"1.2s"}
{"level":"WARN","message":"slow statement","summary":"UPDATE outbox …","elapsed":"1.5s"}
not json
"#;

        assert_eq!(
            log_kinds(log),
            [
                ("WARN slow statement: UPDATE outbox …".to_owned(), 2),
                ("WARN Mail is only logged".to_owned(), 1),
                ("not json".to_owned(), 1),
            ]
        );
    }

    #[test]
    fn hash_workers_are_read_from_the_password_table_only() {
        let toml = "[server]\nhash_workers = 9\n\n[password]\nargon2_memory_kib = 19456\nhash_workers = 0\n";

        assert_eq!(password_setting(toml, "hash_workers").as_deref(), Some("0"));
        assert_eq!(password_setting(toml, "min_length"), None);
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(10761.4), "10 761");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(1_234_567.0), "1 234 567");
        assert_eq!(rate(97.84), "97.8/s");
        assert_eq!(rate(2000.0), "2 000/s");
    }
}
