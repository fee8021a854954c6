//! The targets of issue 20 (and issue 18's two figures) and how each figure is judged against
//! them. The `me` and introspection targets are relative to figures of the same run (the
//! `/health` floor, `me` itself), so a busy machine moves the figure and its bound together.

use std::time::Duration;

use crate::database::Backend;
use crate::load::Kind;
use crate::replicas::ReplicaFigures;
use crate::report::{grouped, mib, ms, rate, Figures, Line, Row};

/// Start to `/health` 200 on an existing (already migrated) database (issue 8).
pub const STARTUP_EXISTING: Duration = Duration::from_millis(200);
/// Logins per second as a share of the hashing limit measured in the same run.
pub const LOGIN_SHARE: f64 = 0.90;
/// `me` per second as a share of `/health` per second of the same server, same run.
pub const ME_SHARE_OF_FLOOR: f64 = 0.50;
/// p99 of `me`, alone.
pub const ME_P99_MS: f64 = 2.0;
/// p99 of `me` during the login flood, as a multiple of its p99 alone.
pub const FLOOD_P99_FACTOR: f64 = 1.5;
/// Rotating refreshes per second, on both databases.
pub const REFRESH_RATE: f64 = 4_000.0;
/// Client-credential grants per second (issue 18).
pub const GRANT_RATE: f64 = 3_000.0;
pub const RSS_IDLE_KIB: u64 = 32 * 1024;
pub const RSS_LOAD_KIB: u64 = 192 * 1024;
/// A logout on one replica is refused on the other within this.
pub const REVOCATION: Duration = Duration::from_secs(1);
/// `auth_outbox_pending` is 0 this long after the load stops (issue 19).
pub const DRAIN: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Miss,
}

impl Verdict {
    pub fn of(pass: bool) -> Self {
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

/// The table's lines, in the order measured, with the verdicts.
pub fn lines(figures: &Figures) -> Vec<Line> {
    let mut lines = startup(figures);
    if let Some(limit) = figures.hash_limit {
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
                target: format!("≤ {ME_P99_MS} ms"),
                verdict: Some(Verdict::of(row.p99_ms <= ME_P99_MS)),
                load: row.load.clone(),
                ..Line::default()
            });
        }
    }
    if figures.api_key_pending {
        lines.push(Line {
            figure: "API-key check vs bearer JWT check on `me`".into(),
            value: "n/a".into(),
            target: "API-key `me` rate ≥ JWT `me` rate — n/a until API keys exist (hook: `Fixture::api_keys`)".into(),
            ..Line::default()
        });
    }
    if let Some(note) = &figures.grants_note {
        lines.push(Line {
            figure: "client-credential grants".into(),
            value: "n/a".into(),
            target: note.clone(),
            ..Line::default()
        });
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
    lines.extend(replica_lines(figures));
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
            target: format!("< {} ms (issue 8)", STARTUP_EXISTING.as_millis()),
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
        load: row.load.clone(),
        ..Line::default()
    }
}

/// `value` ≥ `bound`, where `bound` is `share` of a figure of the same run named `of`.
fn at_least(line: &mut Line, value: f64, bound: f64, of: &str) {
    line.target = format!("≥ {of} = {}", rate(bound));
    line.verdict = Some(Verdict::of(value >= bound));
}

fn load_line(figures: &Figures, row: &Row) -> Line {
    let mut line = measured(row);
    let me = figures.row(Kind::Me, false);
    match (row.kind, row.flood) {
        (Kind::Health, _) => line.target = "the floor (same server, same run)".into(),
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
            if let Some(floor) = figures.row(Kind::Health, false) {
                let share = row.rate / floor.rate.max(1e-9);
                let of = format!("{:.0} % of `/health`", 100.0 * ME_SHARE_OF_FLOOR);
                at_least(&mut line, row.rate, ME_SHARE_OF_FLOOR * floor.rate, &of);
                line.value = format!("{} = {:.0} % of floor", rate(row.rate), 100.0 * share);
            }
        }
        (Kind::Me, true) => {
            if let Some(alone) = me {
                let bound = FLOOD_P99_FACTOR * alone.p99_ms;
                line.target = format!(
                    "p99 ≤ {FLOOD_P99_FACTOR} × {} = {} ms",
                    ms(alone.p99_ms),
                    ms(bound)
                );
                line.verdict = Some(Verdict::of(row.p99_ms <= bound));
            }
        }
        (Kind::Introspect, _) => {
            if let Some(me) = me {
                at_least(&mut line, row.rate, me.rate, "`me` rate");
            }
        }
        (Kind::ApiKey, _) => {
            if let Some(me) = me {
                at_least(&mut line, row.rate, me.rate, "JWT `me` rate");
            }
        }
        (Kind::Refresh, _) => {
            line.target = format!("≥ {}/s", grouped(REFRESH_RATE));
            line.verdict = Some(Verdict::of(row.rate >= REFRESH_RATE));
        }
        (Kind::ClientCredentials, _) => {
            line.target = format!("≥ {}/s", grouped(GRANT_RATE));
            line.verdict = Some(Verdict::of(row.rate >= GRANT_RATE));
        }
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

fn replica_lines(figures: &Figures) -> Vec<Line> {
    let Some(replicas) = &figures.replicas else {
        return Vec::new();
    };
    let figures = match replicas {
        Ok(figures) => figures,
        Err(why) => {
            return vec![Line {
                figure: "two replicas (PostgreSQL + Redis)".into(),
                value: "n/a".into(),
                target: why.clone(),
                ..Line::default()
            }]
        }
    };
    let ReplicaFigures {
        one,
        pair,
        revocations,
        refused_at_once,
    } = figures;
    let mut lines = vec![measured(one)];
    let mut pair_line = measured(pair);
    at_least(&mut pair_line, pair.rate, one.rate, "one replica's rate");
    lines.push(pair_line);
    let mut sorted = revocations.clone();
    sorted.sort_unstable();
    if let (Some(max), Some(median)) = (sorted.last(), sorted.get(sorted.len() / 2)) {
        let all: Vec<String> = revocations
            .iter()
            .map(|d| d.as_millis().to_string())
            .collect();
        lines.push(Line {
            figure: format!(
                "logout on replica A → `me` refused on replica B (max of {})",
                sorted.len()
            ),
            value: format!(
                "{} ms (median {} ms; {})",
                max.as_millis(),
                median.as_millis(),
                all.join(", ")
            ),
            target: format!("≤ {} ms", REVOCATION.as_millis()),
            verdict: Some(Verdict::of(*max <= REVOCATION)),
            ..Line::default()
        });
    }
    lines.push(Line {
        figure: "logout on replica A → `me` refused on replica A".into(),
        value: if *refused_at_once {
            "at once (the next request)".into()
        } else {
            "NOT at once".into()
        },
        target: "at once".into(),
        verdict: Some(Verdict::of(*refused_at_once)),
        ..Line::default()
    });
    lines
}

/// Whether this backend runs the two-replica scenario: it needs a shared database.
pub fn replicas_apply(backend: Backend) -> bool {
    backend == Backend::Postgres
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
            load: String::new(),
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
            row(Kind::Health, false, 20_000.0, 1.0),
            row(Kind::Me, false, 11_000.0, 1.5),
            row(Kind::Refresh, false, 3_500.0, 8.0),
            row(Kind::Introspect, false, 10_000.0, 2.0),
            row(Kind::ClientCredentials, false, 3_100.0, 5.0),
            row(Kind::Me, true, 5_000.0, 2.4),
        ];
        figures.rss_idle_kib = Some(40 * 1024);
        figures.rss_peak_kib = Some(100 * 1024);
        figures
    }

    fn line<'a>(lines: &'a [Line], starts: &str) -> &'a Line {
        lines
            .iter()
            .find(|line| line.figure.starts_with(starts))
            .unwrap_or_else(|| panic!("no line {starts}"))
    }

    fn verdict(lines: &[Line], starts: &str) -> Option<Verdict> {
        line(lines, starts).verdict
    }

    #[test]
    fn each_figure_is_judged_against_the_targets_of_issue_20() {
        let lines = lines(&figures(Backend::Postgres));

        assert_eq!(
            verdict(&lines, "start → `/health` 200, existing"),
            Some(Verdict::Pass)
        );
        assert_eq!(verdict(&lines, "Login"), Some(Verdict::Pass));
        assert_eq!(verdict(&lines, "Health"), None);
        // 11 000 ≥ 50 % of 20 000.
        assert_eq!(verdict(&lines, "Me"), Some(Verdict::Pass));
        assert_eq!(line(&lines, "Me").target, "≥ 50 % of `/health` = 10 000/s");
        assert_eq!(verdict(&lines, "`me` p99"), Some(Verdict::Pass));
        assert_eq!(verdict(&lines, "Refresh"), Some(Verdict::Miss));
        // 10 000 < the `me` rate of 11 000.
        assert_eq!(verdict(&lines, "Introspect"), Some(Verdict::Miss));
        assert_eq!(verdict(&lines, "ClientCredentials"), Some(Verdict::Pass));
        assert_eq!(verdict(&lines, "RSS idle"), Some(Verdict::Miss));
        assert_eq!(verdict(&lines, "RSS under load"), Some(Verdict::Pass));
    }

    #[test]
    fn the_flood_bound_is_one_and_a_half_times_the_p99_alone() {
        let lines = lines(&figures(Backend::Sqlite));
        let flood = lines
            .iter()
            .filter(|line| line.figure == "Me")
            .nth(1)
            .unwrap();

        assert_eq!(flood.target, "p99 ≤ 1.5 × 1.50 = 2.25 ms");
        assert_eq!(flood.verdict, Some(Verdict::Miss));
    }

    #[test]
    fn me_below_half_the_floor_misses() {
        let mut figures = figures(Backend::Sqlite);
        figures.rows[1].rate = 30_000.0;

        assert_eq!(verdict(&lines(&figures), "Me"), Some(Verdict::Miss));
    }

    #[test]
    fn the_api_key_row_is_na_until_the_hook_is_filled_then_judged_against_me() {
        let mut figures = figures(Backend::Sqlite);
        figures.api_key_pending = true;
        let pending = lines(&figures);
        assert_eq!(line(&pending, "API-key check").value, "n/a");
        assert_eq!(verdict(&pending, "API-key check"), None);

        figures.api_key_pending = false;
        figures.rows.push(row(Kind::ApiKey, false, 10_000.0, 1.0));
        assert_eq!(verdict(&lines(&figures), "ApiKey"), Some(Verdict::Miss));
    }

    #[test]
    fn replicas_are_judged_on_the_pair_and_the_slowest_revocation() {
        let mut figures = figures(Backend::Postgres);
        figures.replicas = Some(Ok(ReplicaFigures {
            one: row(Kind::ReplicaOne, false, 8_000.0, 2.0),
            pair: row(Kind::ReplicaPair, false, 8_100.0, 2.0),
            revocations: vec![Duration::from_millis(300), Duration::from_millis(1_200)],
            refused_at_once: true,
        }));
        let lines = lines(&figures);

        assert_eq!(verdict(&lines, "ReplicaPair"), Some(Verdict::Pass));
        assert_eq!(
            verdict(&lines, "logout on replica A → `me` refused on replica B"),
            Some(Verdict::Miss)
        );
        assert_eq!(
            verdict(&lines, "logout on replica A → `me` refused on replica A"),
            Some(Verdict::Pass)
        );
    }
}
