//! The command line: `serve` (default), `migrate`, `config`.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "auth-service",
    version,
    about = "Authentication, session and user service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration, secrets redacted.
    Config,
}
