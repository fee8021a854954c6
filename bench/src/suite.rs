//! One database's run: start the service (new database, then restarts on the existing one),
//! read its idle memory, measure the hashing limit, prepare users, run the load scenarios and
//! read its peak memory; then, on PostgreSQL, the two-replica run.

use std::time::Duration;

use crate::api::Api;
use crate::cpu::CpuReading;
use crate::database::Database;
use crate::fixture::Fixture;
use crate::hashing::{self, Argon2Params};
use crate::http::Target;
use crate::load::{self, Group, Kind};
use crate::report::{mib, Cpu, Figures, Row};
use crate::server::Service;
use crate::{api, process, replicas, targets, wrk, Args, Loader, Scenario};

/// How long a restarted service is left alone before its idle memory is read.
const SETTLE: Duration = Duration::from_secs(1);

/// Runs everything on `database` (or on the service at `--url`) and returns the figures.
pub async fn run(args: &Args, database: &Database) -> anyhow::Result<Figures> {
    let mut service = match &args.url {
        Some(url) => Service::external(url).await?,
        None => Service::spawn(&args.server_bin(), database.url()).await?,
    };
    let mut figures = Figures::new(database.backend(), service.describe());
    figures.startup_fresh = service.started_in();
    figures.settings.push(crate::report::machine_load(
        "at the start of this database's run",
    ));
    let result = measure(args, &mut service, database, &mut figures).await;
    // Stopped first: the replicas get the cores to themselves.
    figures.server_log = service.stop().await;
    let fixture = result?;
    let spawned = args.url.is_none();
    if spawned && args.runs(Scenario::Replicas) {
        figures.replicas = Some(if targets::replicas_apply(database.backend()) {
            replicas::run(args, database, &fixture)
                .await
                .map_err(|error| format!("failed: {error:#}"))
        } else {
            Err("SQLite is one node: two replicas run on PostgreSQL".into())
        });
    }
    Ok(figures)
}

async fn measure(
    args: &Args,
    service: &mut Service,
    database: &Database,
    figures: &mut Figures,
) -> anyhow::Result<Fixture> {
    if service.pid().is_some() {
        for n in 1..=args.restarts {
            let took = service.restart().await?;
            eprintln!(
                "start {n} on the existing database: /health after {} ms",
                took.as_millis()
            );
            figures.startup_existing.push(took);
        }
        tokio::time::sleep(SETTLE).await;
        figures.rss_idle_kib = service.pid().and_then(process::resident).map(|m| m.now_kib);
    }
    let api = Api::new(Target::resolve(service.base_url()).await?);
    let params = settings(args, service, &api, figures).await;

    let fixture = Fixture::prepare(args, &api, service).await?;
    let me_by_wrk = me_by_wrk(args).await?;
    let on = (service.pid(), database);
    let group = |kind, flood| fixture.group(kind, flood, args);
    let report_memory = || {
        if let Some(memory) = service.pid().and_then(process::resident) {
            eprintln!(
                "         service memory: {} resident, {} peak so far",
                mib(memory.now_kib),
                mib(memory.peak_kib)
            );
        }
    };

    if args.runs(Scenario::Signup) {
        figures
            .rows
            .extend(scenario(&api, on, vec![group(Kind::Signup, false)], args).await?);
        report_memory();
    }
    if args.runs(Scenario::Login) {
        // Right before the logins it judges, so both see the same machine.
        eprintln!(
            "measuring the hashing limit ({params}, {} s)",
            args.hash_seconds
        );
        let duration = Duration::from_secs(args.hash_seconds);
        figures.hash_limit = Some(hashing::measure(params, duration).await?);
        figures
            .rows
            .extend(scenario(&api, on, vec![group(Kind::Login, false)], args).await?);
        report_memory();
    }

    let me_run = MeRun {
        args,
        api: &api,
        on,
        fixture: &fixture,
        by_wrk: me_by_wrk,
    };
    if args.runs(Scenario::Me) {
        floor(&me_run, figures).await?;
        me_alone(&me_run, figures).await?;
        report_memory();
    }
    if args.runs(Scenario::ApiKey) {
        api_key_me(&me_run, figures).await?;
    }
    if args.runs(Scenario::Refresh) {
        figures
            .rows
            .extend(scenario(&api, on, vec![group(Kind::Refresh, false)], args).await?);
        report_memory();
    }
    if args.runs(Scenario::Introspect) {
        introspections(&me_run, figures).await?;
        report_memory();
    }
    if args.runs(Scenario::ClientCredentials) {
        if fixture.client.is_some() {
            let group = group(Kind::ClientCredentials, false);
            figures
                .rows
                .extend(scenario(&api, on, vec![group], args).await?);
            report_memory();
        } else {
            figures.grants_note =
                Some("needs a service this benchmark started (it creates an administrator)".into());
        }
    }
    if args.runs(Scenario::Flood) {
        flood(&me_run, figures).await?;
        report_memory();
    }
    figures.rss_peak_kib = service
        .pid()
        .and_then(process::resident)
        .map(|m| m.peak_kib);
    Ok(fixture)
}

/// The floor: `GET /health` of the same server by the same loader as `me`, right before it.
async fn floor(run: &MeRun<'_>, figures: &mut Figures) -> anyhow::Result<()> {
    let (args, on) = (run.args, run.on);
    if run.by_wrk {
        let label = format!(
            "`GET /health`, the floor (c={}, wrk -t{})",
            args.me_concurrency, args.wrk_threads
        );
        let row = wrk_row(
            args,
            run.api,
            on,
            WrkLoad {
                path: api::HEALTH,
                tokens: &[],
                kind: Kind::Health,
                label,
                flood: false,
                script: wrk::Script::Get,
            },
        )
        .await?;
        figures.rows.push(row);
    } else {
        let group = run.fixture.group(Kind::Health, false, args);
        figures
            .rows
            .extend(scenario(run.api, on, vec![group], args).await?);
    }
    Ok(())
}

/// `me` with API keys as bearers (issue 18), by the loader of `me`; without keys (the hook in
/// `Fixture::api_keys` not filled in yet) the table says n/a.
async fn api_key_me(run: &MeRun<'_>, figures: &mut Figures) -> anyhow::Result<()> {
    let keys = &run.fixture.api_keys;
    if keys.is_empty() {
        figures.api_key_pending = true;
        return Ok(());
    }
    let label = format!(
        "`GET /api/auth/me` with API keys (c={})",
        run.args.me_concurrency
    );
    let load = WrkLoad {
        path: api::ME,
        tokens: keys,
        kind: Kind::ApiKey,
        label,
        script: wrk::Script::Get,
        flood: false,
    };
    figures
        .rows
        .push(wrk_row(run.args, run.api, run.on, load).await?);
    Ok(())
}

/// What the `me` scenarios share: the service, its users, and which loader drives `me`.
struct MeRun<'a> {
    args: &'a Args,
    api: &'a Api,
    on: (Option<u32>, &'a Database),
    fixture: &'a Fixture,
    by_wrk: bool,
}

/// `me` alone by both loaders, one right after the other; the judged one is wrk's when it is
/// used, the other is the loader check.
async fn me_alone(run: &MeRun<'_>, figures: &mut Figures) -> anyhow::Result<()> {
    let (args, api, on, fixture, me_by_wrk) = (run.args, run.api, run.on, run.fixture, run.by_wrk);
    let group = |kind, flood| fixture.group(kind, flood, args);
    let ours = (!me_by_wrk || !args.no_loader_check).then(|| group(Kind::Me, false));
    let ours = match ours {
        Some(group) => scenario(api, on, vec![group], args).await?,
        None => Vec::new(),
    };
    if me_by_wrk {
        figures
            .rows
            .push(wrk_me(args, api, on, fixture, false).await?);
        figures.loader_check = ours.into_iter().next().map(|mut row| {
            row.label = format!("{} with auth-bench's client", row.label);
            row
        });
    } else {
        figures.rows.extend(ours);
        if !args.no_loader_check && wrk::installed().await {
            let mut check = wrk_me(args, api, on, fixture, false).await?;
            check.label = format!("`me` via wrk -t{}", args.wrk_threads);
            figures.loader_check = Some(check);
        }
    }
    Ok(())
}

/// Introspections by the loader of `me`, whose rate they are judged against (each answer must
/// be an active introspection).
async fn introspections(run: &MeRun<'_>, figures: &mut Figures) -> anyhow::Result<()> {
    let args = run.args;
    if run.by_wrk {
        let label = format!(
            "introspections (c={}, wrk -t{})",
            args.me_concurrency, args.wrk_threads
        );
        let load = WrkLoad {
            path: api::INTROSPECT,
            tokens: &run.fixture.me_tokens,
            kind: Kind::Introspect,
            label,
            flood: false,
            script: wrk::Script::Introspect,
        };
        figures
            .rows
            .push(wrk_row(args, run.api, run.on, load).await?);
    } else {
        let group = run.fixture.group(Kind::Introspect, false, args);
        figures
            .rows
            .extend(scenario(run.api, run.on, vec![group], args).await?);
    }
    Ok(())
}

/// `me` while a login flood runs, by the same loader as `me` alone.
async fn flood(run: &MeRun<'_>, figures: &mut Figures) -> anyhow::Result<()> {
    let (args, api, on, fixture, me_by_wrk) = (run.args, run.api, run.on, run.fixture, run.by_wrk);
    let group = |kind, flood| fixture.group(kind, flood, args);
    if me_by_wrk {
        let logins = scenario(api, on, vec![group(Kind::Login, true)], args);
        let (me, logins) = tokio::join!(wrk_me(args, api, on, fixture, true), logins);
        figures.rows.push(me?);
        figures.rows.extend(logins?.into_iter().map(|mut row| {
            row.flood = true;
            row.cpu_us = None;
            row
        }));
    } else {
        let groups = vec![group(Kind::Me, true), group(Kind::Login, true)];
        figures.rows.extend(scenario(api, on, groups, args).await?);
    }
    Ok(())
}

/// Fills the settings lines; the argon2 parameters the service uses.
async fn settings(
    args: &Args,
    service: &Service,
    api: &Api,
    figures: &mut Figures,
) -> Argon2Params {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    figures.settings.push(format!(
        "{cores} cores shared by this client and the service; {} s measured after {} s warm-up per scenario; closed-loop workers, one keep-alive HTTP/1.1 connection each; signup and login c={}, me and introspect c={}, refresh c={}",
        args.duration, args.warmup, args.login_concurrency, args.me_concurrency, args.refresh_concurrency
    ));
    let service_config = service.effective_config().await;
    let params = service_config
        .as_deref()
        .map_or_else(Argon2Params::from_env, Argon2Params::from_service_config);
    let hash_workers = service_config
        .as_deref()
        .and_then(|toml| crate::report::password_setting(toml, "hash_workers"))
        .map_or(String::new(), |workers| {
            format!(", hash_workers = {workers}")
        });
    figures.settings.push(match service_config {
        Some(_) => format!("{params}{hash_workers} (`auth-service config` of the spawned binary)"),
        None => {
            format!("{params} (assumed: the defaults and this process's APP__PASSWORD__*)")
        }
    });
    match api.auth_config().await {
        Ok(config) => figures
            .settings
            .extend(crate::report::auth_config_settings(&config)),
        Err(error) => eprintln!("note: GET /api/auth/config failed ({error:#})"),
    }
    params
}

/// Runs one scenario; login and signup rows also get the mean server-side hash time, and a
/// scenario of one group the CPU time per request of service and client.
async fn scenario(
    api: &Api,
    (service, database): (Option<u32>, &Database),
    groups: Vec<Group>,
    args: &Args,
) -> anyhow::Result<Vec<Row>> {
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    eprintln!(
        "running: {} ({} s warm-up + {} s)",
        names.join(" + "),
        args.warmup,
        args.duration
    );
    let flood = groups.len() > 1;
    let before = api.password_hash_totals().await;
    let cpu_before = CpuReading::now(service, database).await;
    let results = load::run(api.target(), groups, args.timing()).await?;
    let cpu_after = CpuReading::now(service, database).await;
    let after = api.password_hash_totals().await;
    let hash_ms = before
        .zip(after)
        .and_then(|(before, after)| before.mean_until(after))
        .map(|seconds| seconds * 1000.0);
    Ok(results
        .into_iter()
        .map(|(kind, name, stats)| {
            let mut row = Row::new(kind, name, &stats, args.timing().duration);
            row.flood = flood;
            row.hash_ms = hash_ms.filter(|_| matches!(kind, Kind::Login | Kind::Signup));
            row.cpu_us = (!flood).then(|| cpu_before.per_request(&cpu_after, stats.completed));
            row
        })
        .collect())
}

/// Whether `me` is driven by wrk: `--loader wrk` (wrk must be installed), or `auto` and wrk
/// is installed.
async fn me_by_wrk(args: &Args) -> anyhow::Result<bool> {
    match args.loader {
        Loader::Bench => Ok(false),
        Loader::Wrk if wrk::installed().await => Ok(true),
        Loader::Wrk => anyhow::bail!("--loader wrk: wrk is not installed; {}", wrk::INSTALL_HINT),
        Loader::Auto if wrk::installed().await => Ok(true),
        Loader::Auto => {
            eprintln!(
                "note: wrk is not installed, so auth-bench's own client drives `me` and there is no loader check; {}",
                wrk::INSTALL_HINT
            );
            Ok(false)
        }
    }
}

/// `GET /api/auth/me` driven by wrk (see [`wrk_row`]).
async fn wrk_me(
    args: &Args,
    api: &Api,
    on: (Option<u32>, &Database),
    fixture: &Fixture,
    flood: bool,
) -> anyhow::Result<Row> {
    let (threads, connections) = (args.wrk_threads, args.me_concurrency);
    let label = if flood {
        format!("`me` during login flood (c={connections}, wrk -t{threads})")
    } else {
        format!("`GET /api/auth/me` (c={connections}, wrk -t{threads})")
    };
    let load = WrkLoad {
        path: api::ME,
        tokens: &fixture.me_tokens,
        kind: Kind::Me,
        label,
        flood,
        script: wrk::Script::Get,
    };
    wrk_row(args, api, on, load).await
}

/// What wrk is to send: `script`'s request to `path`, with `tokens` in turn.
struct WrkLoad<'a> {
    path: &'a str,
    tokens: &'a [String],
    kind: Kind,
    label: String,
    flood: bool,
    script: wrk::Script,
}

/// A GET driven by wrk: a warm-up run, then the measured one. Beside the login flood
/// (`flood`) no CPU is attributed: it cannot be split between the two.
async fn wrk_row(
    args: &Args,
    api: &Api,
    (service, database): (Option<u32>, &Database),
    load: WrkLoad<'_>,
) -> anyhow::Result<Row> {
    let WrkLoad {
        path,
        tokens,
        kind,
        label,
        flood,
        script,
    } = load;
    let dir = tempfile::tempdir()?;
    let (threads, connections) = (args.wrk_threads, args.me_concurrency);
    eprintln!(
        "running: {label} ({} s warm-up + {} s)",
        args.warmup, args.duration
    );
    let run = |duration| {
        let base = api.target().base_url();
        wrk::run(
            (base, path, script),
            tokens,
            threads,
            connections,
            duration,
            dir.path(),
        )
    };
    let timing = args.timing();
    if !timing.warmup.is_zero() {
        run(timing.warmup).await?;
    }
    let before = CpuReading::now(service, database).await;
    let result = run(timing.duration).await?;
    let after = CpuReading::now(service, database).await;
    let failures = result.failures();
    let requests = result.requests as u64;
    Ok(Row {
        kind,
        flood,
        label,
        rate: result.rate(),
        p50_ms: result.p50_us / 1000.0,
        p99_ms: result.p99_us / 1000.0,
        hash_ms: None,
        cpu_us: (!flood).then(|| Cpu {
            client: process::micros_per(Some(0.0), result.cpu_seconds, requests),
            ..before.per_request(&after, requests)
        }),
        failures,
        failure_detail: (failures > 0).then(|| format!("{result:?}")),
        load: crate::report::load_average(),
    })
}
