//! Entry point: parse the command line, load configuration (exit 2 when it is invalid), run.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::Context;
use auth_service::app::Listeners;
use auth_service::cli::{Cli, Command, KeysAction, UsersAction};
use auth_service::clock::Clock;
use auth_service::services::admin::Bootstrap;
use auth_service::services::keys::Keys;
use auth_service::{store, telemetry, App, Config};
use clap::Parser;
use secrecy::SecretString;

/// mimalloc rather than the system allocator: glibc keeps each 19 MiB argon2 working area it
/// served from a thread arena, so a burst of logins left the process at several hundred MiB
/// (measured: 670 MiB after 60 concurrent signups); mimalloc returns it to the system. Built
/// without transparent huge pages (`no_thp` in Cargo.toml): they made an idle service hold
/// 24 MiB it never used.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Openapi)) {
        return print_openapi();
    }
    let config = match Config::load() {
        Ok(config) => config,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "{error}");
            return ExitCode::from(2);
        }
    };
    // SPEC §3: whatever runs with the signing keys needs a key to seal them; refused here,
    // before anything connects, like any other invalid configuration.
    let needs_keys = !matches!(cli.command, Some(Command::Config | Command::Migrate));
    if needs_keys {
        if let Err(error) = config.auth.key_source(&config.database) {
            let _ = writeln!(std::io::stderr(), "{error}");
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot start the async runtime: {error}"
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_openapi() -> ExitCode {
    let document = auth_service::http::openapi();
    let printed = document
        .to_pretty_json()
        .map_err(anyhow::Error::from)
        .and_then(|json| Ok(writeln!(std::io::stdout(), "{json}")?));
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Config => {
            let _ = write!(std::io::stdout(), "{}", config.redacted());
            Ok(())
        }
        Command::Migrate => {
            telemetry::init_logs(&config.log);
            let store = store::connect(&config.database).await.with_context(|| {
                format!(
                    "cannot open the database at {}",
                    config.database.url.redacted()
                )
            })?;
            auth_service::app::migrate(store.as_ref()).await?;
            store.close().await;
            Ok(())
        }
        Command::Serve => serve(config).await,
        // Answered before the configuration is loaded: the document depends on none of it.
        Command::Openapi => Ok(()),
        Command::Keys { action } => keys(config, action).await,
        Command::Users { action } => users(config, action).await,
    }
}

async fn users(config: Config, action: UsersAction) -> anyhow::Result<()> {
    let (email, username) = match action {
        UsersAction::CreateAdmin { email, username } => (email, username),
        UsersAction::Import { file } => return auth_service::import::run(config, &file).await,
    };
    let password = read_password()?;
    let app = App::build(config).await?;
    let outcome = app
        .state()
        .services
        .admin
        .create_admin(&email, &username, &password)
        .await
        .map_err(|error| anyhow::anyhow!("{error}{}", field_errors(&error)))?;
    app.store().close().await;
    match outcome {
        Bootstrap::Created(id) => {
            writeln!(std::io::stdout(), "created admin {username} ({id})")?;
            Ok(())
        }
        Bootstrap::AlreadyThere => {
            anyhow::bail!("a user with that email or username exists; nothing was changed")
        }
    }
}

/// The password of `users create-admin`: prompted for without echo on a terminal, else the
/// first line of standard input.
fn read_password() -> anyhow::Result<SecretString> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("password: ")?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        anyhow::bail!("no password given on standard input");
    }
    Ok(SecretString::from(password))
}

fn field_errors(error: &auth_service::error::Error) -> String {
    match error {
        auth_service::error::Error::Invalid(errors) => errors
            .iter()
            .map(|e| format!("; {}: {}", e.field, e.message))
            .collect(),
        _ => String::new(),
    }
}

async fn keys(config: Config, action: KeysAction) -> anyhow::Result<()> {
    let store = store::connect(&config.database).await.with_context(|| {
        format!(
            "cannot open the database at {}",
            config.database.url.redacted()
        )
    })?;
    if config.database.migrate_on_start {
        auth_service::app::migrate(store.as_ref()).await?;
    }
    let keys = Keys::load(store.clone(), Clock::System, Arc::new(config)).await?;
    let mut out = std::io::stdout();
    match action {
        KeysAction::List => {
            writeln!(
                out,
                "{:<18} {:<6} {:<8} {:<25}",
                "KID", "ALG", "STATE", "CREATED"
            )?;
            let now = Clock::System.now();
            for key in keys.list().await? {
                let state = match (key.revoked_at, key.verifies_until) {
                    (Some(_), _) => "revoked",
                    (None, Some(end)) if end <= now => "expired",
                    (None, Some(_)) => "retired",
                    (None, None) => "active",
                };
                writeln!(
                    out,
                    "{:<18} {:<6} {:<8} {:<25}",
                    key.kid,
                    key.algorithm,
                    state,
                    key.created_at.to_rfc3339()
                )?;
            }
        }
        KeysAction::Rotate => writeln!(out, "new active key: {}", keys.rotate().await?)?,
        KeysAction::Revoke { kid } => {
            if !keys.revoke(&kid).await? {
                anyhow::bail!("no unrevoked key with kid {kid}");
            }
            writeln!(out, "revoked: {kid}")?;
        }
    }
    store.close().await;
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init_logs(&config.log);
    let server = &config.server;
    let http = SocketAddr::new(server.host, server.port);
    let grpc = SocketAddr::new(server.host, server.grpc_port);
    let app = App::build(config).await?;
    let listeners = Listeners::bind(http, grpc).await?;
    tracing::info!(
        http = %listeners.http.local_addr()?,
        grpc = %listeners.grpc.local_addr()?,
        backend = app.store().backend(),
        "auth-service is listening"
    );
    app.serve(listeners, shutdown_signal()).await
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the service");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutdown signal received");
}
