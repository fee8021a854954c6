//! CPU time per request: of the service, of the PostgreSQL backends serving the run's
//! database, and of this process, read before and after a measured window.

use std::collections::HashMap;

use crate::database::Database;
use crate::process;
use crate::report::Cpu;

/// CPU seconds used so far by the service, by the database's backends and by this process.
#[derive(Debug, Clone)]
pub struct CpuReading {
    service: Option<f64>,
    database: Option<HashMap<u32, f64>>,
    client: Option<f64>,
}

impl CpuReading {
    pub async fn now(service: Option<u32>, database: &Database) -> Self {
        Self {
            service: service.and_then(process::cpu_seconds),
            database: database.backend_cpu().await,
            client: process::cpu_seconds(std::process::id()),
        }
    }

    pub fn per_request(&self, later: &Self, requests: u64) -> Cpu {
        // A backend that started in between counts from zero; one that ended is lost.
        let database =
            self.database
                .as_ref()
                .zip(later.database.as_ref())
                .map(|(before, after)| {
                    after
                        .iter()
                        .map(|(pid, seconds)| seconds - before.get(pid).copied().unwrap_or(0.0))
                        .sum::<f64>()
                });
        Cpu {
            service: process::micros_per(self.service, later.service, requests),
            database: process::micros_per(Some(0.0), database, requests),
            client: process::micros_per(self.client, later.client, requests),
        }
    }
}
