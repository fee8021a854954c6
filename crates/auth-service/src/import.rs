//! `auth-service users import FILE`: moving users from an existing service.

use std::path::Path;

use crate::Config;

/// Imports `file` into the configured database, printing a report.
pub async fn run(_config: Config, file: &Path) -> anyhow::Result<()> {
    anyhow::bail!("importing {} is not built yet", file.display())
}
