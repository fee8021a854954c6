//! The targets of issue 8 and how each figure is judged against them.

use std::time::Duration;

use crate::database::Backend;
use crate::load::Kind;
use crate::report::{grouped, mib, ms, rate, Figures, Line, Row};

/// Start to `/health` 200 on an existing (already migrated) database.
pub const STARTUP_EXISTING: Duration = Duration::from_millis(200);
/// Logins per second as a share of the hashing limit.
pub const LOGIN_SHARE: f64 = 0.90;
/// `GET /api/auth/me` per second.
pub fn me_rate(backend: Backend) -> f64 {
    match backend {
        Backend::Sqlite | Backend::Unknown => 15_000.0,
        Backend::Postgres => 8_000.0,
    }
}
/// p99 of `me`, alone.
pub const ME_P99_MS: f64 = 5.0;
/// p99 of `me` during the login flood, as a multiple of its p99 alone.
pub const FLOOD_P99_FACTOR: f64 = 2.0;
/// Refreshes per second; a target on PostgreSQL only.
pub const REFRESH_RATE_POSTGRES: f64 = 2_000.0;
pub const RSS_IDLE_KIB: u64 = 64 * 1024;
pub const RSS_LOAD_KIB: u64 = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Miss,
}

impl Verdict {
    fn of(pass: bool) -> Self {
        if pass {
            Self::Pass
        } else {
            Self::Miss
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pass => "PASS",
            Self::Miss => "MISS",
        })
    }
}

/// The table's lines, in the order of issue 8, with the verdicts.
pub fn lines(figures: &Figures) -> Vec<Line> {
    let mut lines = startup(figures);
    let limit = figures.hash_limit;
    if let Some(limit) = limit {
        lines.push(Line {
            figure: format!(
                "hashing limit: {} on {} threads",
                limit.params, limit.threads
            ),
            value: rate(limit.per_second),
            ..Line::default()
        });
    }
    for row in &figures.rows {
        lines.push(load_line(figures, row));
        if row.kind == Kind::Me && !row.flood {
            lines.push(Line {
                figure: "`me` p99 latency".into(),
                value: format!("{} ms", ms(row.p99_ms)),
                target: format!("< {ME_P99_MS} ms"),
                verdict: Some(Verdict::of(row.p99_ms < ME_P99_MS)),
                ..Line::default()
            });
        }
    }
    if let Some(check) = &figures.loader_check {
        let judged = figures.row(Kind::Me, false).map(|row| row.rate);
        let mut line = measured(check);
        line.target = judged.map_or(String::new(), |judged| {
            format!(
                "loader check: {:.0} % of the judged rate",
                100.0 * check.rate / judged.max(1e-9)
            )
        });
        lines.push(line);
    }
    lines.extend(memory(figures));
    lines
}

fn startup(figures: &Figures) -> Vec<Line> {
    let mut lines = Vec::new();
    if let Some(fresh) = figures.startup_fresh {
        lines.push(Line {
            figure: "start → `/health` 200, new database (migrations)".into(),
            value: format!("{} ms", fresh.as_millis()),
            ..Line::default()
        });
    }
    if let Some(median) = figures.startup_existing_median() {
        let all: Vec<String> = figures
            .startup_existing
            .iter()
            .map(|d| d.as_millis().to_string())
            .collect();
        lines.push(Line {
            figure: format!(
                "start → `/health` 200, existing database (median of {})",
                all.len()
            ),
            value: format!("{} ms ({})", median.as_millis(), all.join(", ")),
            target: format!("< {} ms", STARTUP_EXISTING.as_millis()),
            verdict: Some(Verdict::of(median < STARTUP_EXISTING)),
            ..Line::default()
        });
    }
    lines
}

fn measured(row: &Row) -> Line {
    let micros = |value: Option<f64>| value.map_or(String::new(), |us| format!("{us:.0}"));
    let cpu = row.cpu_us.unwrap_or_default();
    Line {
        figure: row.label.clone(),
        value: rate(row.rate),
        p50: ms(row.p50_ms),
        p99: ms(row.p99_ms),
        errors: row.failures.to_string(),
        service_cpu: micros(cpu.service),
        database_cpu: micros(cpu.database),
        client_cpu: micros(cpu.client),
        ..Line::default()
    }
}

fn load_line(figures: &Figures, row: &Row) -> Line {
    let mut line = measured(row);
    match (row.kind, row.flood) {
        (Kind::Login, false) => {
            if let Some(limit) = figures.hash_limit {
                let share = row.rate / limit.per_second.max(1e-9);
                line.value = format!("{} = {:.0} % of limit", rate(row.rate), 100.0 * share);
                line.target = format!(
                    "≥ {:.0} % of hashing limit ({})",
                    100.0 * LOGIN_SHARE,
                    rate(LOGIN_SHARE * limit.per_second)
                );
                line.verdict = Some(Verdict::of(share >= LOGIN_SHARE));
            }
        }
        (Kind::Me, false) => {
            let target = me_rate(figures.backend);
            line.target = format!("≥ {}/s", grouped(target));
            line.verdict = Some(Verdict::of(row.rate >= target));
        }
        (Kind::Me, true) => {
            if let Some(alone) = figures.row(Kind::Me, false) {
                let bound = FLOOD_P99_FACTOR * alone.p99_ms;
                line.target = format!(
                    "p99 ≤ {FLOOD_P99_FACTOR} × {} = {} ms",
                    ms(alone.p99_ms),
                    ms(bound)
                );
                line.verdict = Some(Verdict::of(row.p99_ms <= bound));
            }
        }
        (Kind::Refresh, _) => match figures.backend {
            Backend::Postgres => {
                line.target = format!("≥ {}/s", grouped(REFRESH_RATE_POSTGRES));
                line.verdict = Some(Verdict::of(row.rate >= REFRESH_RATE_POSTGRES));
            }
            Backend::Sqlite | Backend::Unknown => {
                line.target = format!("(≥ {}/s on PostgreSQL)", grouped(REFRESH_RATE_POSTGRES));
            }
        },
        _ => {}
    }
    if let Some(hash_ms) = row.hash_ms {
        line.figure = format!("{} [{hash_ms:.1} ms per hash]", line.figure);
    }
    line
}

fn memory(figures: &Figures) -> Vec<Line> {
    let mut lines = Vec::new();
    if let Some(idle) = figures.rss_idle_kib {
        lines.push(Line {
            figure: "RSS idle (VmRSS after start on existing database)".into(),
            value: mib(idle),
            target: format!("< {}", mib(RSS_IDLE_KIB)),
            verdict: Some(Verdict::of(idle < RSS_IDLE_KIB)),
            ..Line::default()
        });
    }
    if let Some(peak) = figures.rss_peak_kib {
        lines.push(Line {
            figure: "RSS under load (VmHWM: peak over every scenario)".into(),
            value: mib(peak),
            target: format!("< {}", mib(RSS_LOAD_KIB)),
            verdict: Some(Verdict::of(peak < RSS_LOAD_KIB)),
            ..Line::default()
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::{Argon2Params, HashLimit};

    fn row(kind: Kind, flood: bool, rate: f64, p99_ms: f64) -> Row {
        Row {
            kind,
            flood,
            label: format!("{kind:?}"),
            rate,
            p50_ms: 1.0,
            p99_ms,
            hash_ms: None,
            cpu_us: None,
            failures: 0,
            failure_detail: None,
        }
    }

    fn figures(backend: Backend) -> Figures {
        let mut figures = Figures::new(backend, "test".into());
        figures.hash_limit = Some(HashLimit {
            params: Argon2Params::default(),
            threads: 2,
            per_second: 100.0,
        });
        figures.startup_existing = vec![
            Duration::from_millis(250),
            Duration::from_millis(150),
            Duration::from_millis(180),
        ];
        figures.rows = vec![
            row(Kind::Login, false, 91.0, 50.0),
            row(Kind::Me, false, 9_000.0, 3.0),
            row(Kind::Refresh, false, 1_500.0, 8.0),
            row(Kind::Me, true, 5_000.0, 7.0),
        ];
        figures.rss_idle_kib = Some(70 * 1024);
        figures
    }

    fn verdict(lines: &[Line], starts: &str) -> Option<Verdict> {
        lines
            .iter()
            .find(|line| line.figure.starts_with(starts))
            .and_then(|line| line.verdict)
    }

    #[test]
    fn each_figure_is_judged_against_its_target() {
        let lines = lines(&figures(Backend::Postgres));

        assert_eq!(
            verdict(&lines, "start → `/health` 200, existing"),
            Some(Verdict::Pass)
        );
        assert_eq!(verdict(&lines, "Login"), Some(Verdict::Pass));
        assert_eq!(verdict(&lines, "Me"), Some(Verdict::Pass));
        assert_eq!(verdict(&lines, "`me` p99"), Some(Verdict::Pass));
        assert_eq!(verdict(&lines, "Refresh"), Some(Verdict::Miss));
        assert_eq!(verdict(&lines, "RSS idle"), Some(Verdict::Miss));
    }

    #[test]
    fn the_flood_bound_is_twice_the_p99_alone_and_sqlite_has_no_refresh_target() {
        let lines = lines(&figures(Backend::Sqlite));
        let flood = lines
            .iter()
            .filter(|line| line.figure == "Me")
            .nth(1)
            .unwrap();

        assert_eq!(flood.target, "p99 ≤ 2 × 3.00 = 6.00 ms");
        assert_eq!(flood.verdict, Some(Verdict::Miss));
        assert_eq!(verdict(&lines, "Me"), Some(Verdict::Miss));
        assert_eq!(verdict(&lines, "Refresh"), None);
    }
}
