//! `auth-bench`: measures a running auth-service over real HTTP.
//!
//! Three scenarios, each a warm-up followed by a measured window:
//! logins per second alone, authenticated `GET /api/auth/me` alone, and `me` while a login
//! flood runs beside it. By default it spawns the release binary of the service on a free
//! port with a throw-away SQLite database; `--url` points it at a service already running.

// A benchmark's product is the table it prints on stdout; progress and problems go to stderr.
#![allow(clippy::print_stdout)]

mod api;
mod load;
mod report;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::api::{Api, User};
use crate::load::{Group, Request, Timing};
use crate::report::{Report, Row};
use crate::server::Service;

#[derive(Debug, Parser)]
#[command(
    name = "auth-bench",
    version,
    about = "Load benchmark of auth-service: logins/s and /api/auth/me latency, alone and together"
)]
struct Args {
    /// Benchmark the service already running at this base URL (e.g. http://127.0.0.1:8080)
    /// instead of spawning one.
    #[arg(long, conflicts_with_all = ["server_bin", "database_url"])]
    url: Option<String>,

    /// The service binary to spawn; build it first with `cargo build --release -p auth-service`.
    #[arg(long, default_value = "target/release/auth-service")]
    server_bin: PathBuf,

    /// Database URL for the spawned service (e.g. postgres://postgres@127.0.0.1:5432/test);
    /// default: a SQLite file in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,

    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,

    /// Seconds of load before each measured window; not counted.
    #[arg(long, default_value_t = 1)]
    warmup: u64,

    /// Concurrent login workers.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    login_concurrency: u32,

    /// Concurrent `me` workers.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    me_concurrency: u32,

    /// Users whose access tokens the `me` workers present.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    users: u32,

    /// Users the login workers log in as, separate from the `me` users: every login beyond
    /// `auth.max_sessions_per_user` evicts that user's oldest session.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    login_users: u32,
}

impl Args {
    fn timing(&self) -> Timing {
        Timing {
            warmup: Duration::from_secs(self.warmup),
            duration: Duration::from_secs(self.duration),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(report) if report.failures() == 0 => ExitCode::SUCCESS,
        Ok(report) => {
            let message = format!(
                "!!! RUN HAD {} FAILED REQUESTS (non-2xx or transport errors): the numbers above are not trustworthy",
                report.failures()
            );
            println!("\n{message}");
            eprintln!("{message}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("auth-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts (or finds) the service, runs the scenarios, prints the report and stops the service.
async fn run(args: &Args) -> anyhow::Result<Report> {
    let service = match &args.url {
        Some(url) => Service::external(url).await?,
        None => Service::spawn(&args.server_bin, args.database_url.as_deref()).await?,
    };
    // The service is killed when `service` is dropped, so an early `?` does not leak it; a
    // signal ends the measurement the same way instead of leaving the child behind.
    let result = tokio::select! {
        result = measure(args, &service) => result,
        signal = interrupted() => Err(anyhow::anyhow!("stopped by {signal}")),
    };
    let log = service.stop().await;
    let mut report = result?;
    report.server_log = log;
    report.print();
    Ok(report)
}

async fn measure(args: &Args, service: &Service) -> anyhow::Result<Report> {
    let api = Api::new(service.base_url())?;
    let auth_config = api.auth_config().await.unwrap_or_else(|error| {
        eprintln!("note: GET /api/auth/config failed ({error:#}); settings it reports are skipped");
        serde_json::Value::Null
    });
    let mut report = Report::new(
        service.describe(),
        args.timing(),
        [args.login_concurrency, args.me_concurrency],
        [args.login_users, args.users],
    );
    report.settings_from_auth_config(&auth_config);
    if let Some(config) = service.effective_config().await {
        report.settings_from_service_config(&config);
    }
    warn_if_tokens_expire(args, &auth_config);

    let tag = api::run_tag();
    let me_users = User::many(&tag, "me", args.users);
    let login_users = User::many(&tag, "login", args.login_users);
    eprintln!(
        "setup: signing up {} users (tag {tag})",
        me_users.len() + login_users.len()
    );
    for user in me_users.iter().chain(&login_users) {
        api.signup(user).await?;
    }
    let mut tokens = Vec::with_capacity(me_users.len());
    for user in &me_users {
        tokens.push(api.login(user).await?);
    }

    let logins = login_workers(&api, &login_users, args.login_concurrency);
    let mes = me_workers(&api, &tokens, args.me_concurrency);
    let (lc, mc) = (args.login_concurrency, args.me_concurrency);
    let scenarios = [
        vec![Group::new(format!("login alone (c={lc})"), logins.clone())],
        vec![Group::new(format!("me alone (c={mc})"), mes.clone())],
        vec![
            Group::new(format!("me during login flood (c={mc})"), mes),
            Group::new(format!("login during flood (c={lc})"), logins),
        ],
    ];
    for groups in scenarios {
        report.rows.extend(scenario(&api, groups, args).await?);
    }
    Ok(report)
}

/// Runs one scenario; login rows also get the mean server-side hash time it saw.
async fn scenario(api: &Api, groups: Vec<Group>, args: &Args) -> anyhow::Result<Vec<Row>> {
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    eprintln!(
        "running: {} ({} s warm-up + {} s)",
        names.join(" + "),
        args.warmup,
        args.duration
    );
    let logins: Vec<bool> = groups.iter().map(Group::is_login).collect();
    let before = api.password_hash_totals().await;
    let results = load::run(api.client(), groups, args.timing()).await?;
    let after = api.password_hash_totals().await;
    let hash_ms = before
        .zip(after)
        .and_then(|(before, after)| before.mean_until(after))
        .map(|seconds| seconds * 1000.0);
    let rows = results
        .into_iter()
        .zip(logins)
        .map(|((name, stats), login)| {
            let mut row = Row::new(name, &stats, args.timing().duration);
            row.hash_ms = hash_ms.filter(|_| login);
            row
        })
        .collect();
    Ok(rows)
}

/// Resolves on Ctrl-C or SIGTERM, naming which.
#[cfg(unix)]
async fn interrupted() -> &'static str {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                eprintln!("warning: cannot listen for SIGTERM ({error}); only Ctrl-C is handled");
                let _ = tokio::signal::ctrl_c().await;
                return "Ctrl-C";
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = terminate.recv() => "SIGTERM",
    }
}

#[cfg(not(unix))]
async fn interrupted() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}

fn login_workers(api: &Api, users: &[User], concurrency: u32) -> Vec<Request> {
    let bodies: std::sync::Arc<[String]> = users.iter().map(User::login_body).collect();
    (0..concurrency as usize)
        .map(|worker| Request::Login {
            url: api.url(api::LOGIN),
            bodies: bodies.clone(),
            first: worker,
        })
        .collect()
}

fn me_workers(api: &Api, tokens: &[String], concurrency: u32) -> Vec<Request> {
    (0..concurrency as usize)
        .filter_map(|worker| tokens.get(worker % tokens.len()))
        .map(|token| Request::Me {
            url: api.url(api::ME),
            authorization: format!("Bearer {token}"),
        })
        .collect()
}

/// Access tokens are fetched once; a run longer than their lifetime would end in 401s.
fn warn_if_tokens_expire(args: &Args, auth_config: &serde_json::Value) {
    let Some(ttl) = auth_config
        .get("access_token_ttl_seconds")
        .and_then(serde_json::Value::as_u64)
    else {
        return;
    };
    let needed = 3 * (args.warmup + args.duration) + 30;
    if needed >= ttl {
        eprintln!(
            "warning: the run takes about {needed} s but access tokens live {ttl} s; expect 401s"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let args = Args::try_parse_from(["auth-bench"]).unwrap();
        assert_eq!(args.duration, 10);
        assert_eq!(args.warmup, 1);
        assert_eq!((args.login_concurrency, args.me_concurrency), (4, 16));
        assert_eq!(args.users, 8);
        assert!(args.url.is_none());
    }

    #[test]
    fn url_excludes_spawn_options() {
        let both = Args::try_parse_from([
            "auth-bench",
            "--url",
            "http://127.0.0.1:1",
            "--database-url",
            "postgres://x",
        ]);
        assert!(both.is_err());
    }

    #[test]
    fn each_me_worker_gets_a_token() {
        let api = Api::new("http://127.0.0.1:1").unwrap();
        let workers = me_workers(&api, &["a".into(), "b".into()], 3);
        let tokens: Vec<_> = workers
            .iter()
            .map(|w| match w {
                Request::Me { authorization, .. } => authorization.as_str(),
                Request::Login { .. } => "login",
            })
            .collect();
        assert_eq!(tokens, ["Bearer a", "Bearer b", "Bearer a"]);
    }
}
