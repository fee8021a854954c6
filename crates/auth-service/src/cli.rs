//! The command line: `serve` (default), `migrate`, `config`, `openapi`, `keys`, `users`.

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
    /// Print the OpenAPI 3.1 document of the HTTP API.
    Openapi,
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// Create a verified administrator. The password is read from standard input (first line)
    /// or prompted for on a terminal; never from the command line, where `ps` would show it.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: String,
    },
    /// Import users from another service: a JSON-lines (`.jsonl`) or CSV (`.csv`) file with
    /// email, username, password_hash (bcrypt or argon2), display_name, is_verified,
    /// created_at. Every row is checked first; one bad row imports nothing.
    Import {
        /// The file to import.
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// List signing keys and their state.
    List,
    /// Make a new key active, of `auth.signing_algorithm` (ES256 unless configured: EdDSA or
    /// RS256); the old one keeps its algorithm and stays published until its tokens expire.
    Rotate,
    /// Revoke a key at once: tokens it signed fail from now on.
    Revoke {
        /// The key id (`kid`).
        kid: String,
    },
}
