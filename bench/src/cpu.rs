//! CPU time used over a measurement, by the client (this process) and by
//! each server process, so a run limited by the client shows as such.

use std::time::Instant;

use serde::Serialize;

use crate::sys;

/// The processes whose CPU time a measurement reports.
#[derive(Debug, Clone, Default)]
pub(crate) struct Probe {
    servers: Vec<(String, u32)>,
}

/// CPU times at one moment.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    at: Instant,
    client: f64,
    servers: Vec<(String, f64)>,
}

/// One process's share of a measurement.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CpuUse {
    pub(crate) process: String,
    /// User plus system CPU seconds over the measurement.
    pub(crate) cpu_secs: f64,
    /// CPU seconds per wall-clock second: 1.0 is one core kept busy.
    pub(crate) cores: f64,
    /// CPU microseconds per completed request.
    pub(crate) us_per_request: Option<f64>,
}

impl Probe {
    /// Watches the named servers (those without a pid are left out).
    #[must_use]
    pub(crate) fn new(servers: &[(&str, Option<u32>)]) -> Self {
        Self {
            servers: servers
                .iter()
                .filter_map(|(name, pid)| pid.map(|pid| ((*name).to_owned(), pid)))
                .collect(),
        }
    }

    #[must_use]
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            client: sys::cpu_secs(None).unwrap_or(0.0),
            servers: self
                .servers
                .iter()
                .map(|(name, pid)| (name.clone(), sys::cpu_secs(Some(*pid)).unwrap_or(0.0)))
                .collect(),
        }
    }
}

impl Snapshot {
    /// What each process used between `earlier` and this snapshot; the
    /// client (`bench`) comes first.
    #[must_use]
    pub(crate) fn since(&self, earlier: &Self, requests: u64) -> Vec<CpuUse> {
        let wall = self.at.duration_since(earlier.at).as_secs_f64().max(1e-9);
        let share = |process: &str, secs: f64| CpuUse {
            process: process.to_owned(),
            cpu_secs: secs,
            cores: secs / wall,
            us_per_request: (requests > 0).then(|| secs * 1e6 / requests as f64),
        };
        let mut uses = vec![share("bench (client)", self.client - earlier.client)];
        for (name, now) in &self.servers {
            let before = earlier
                .servers
                .iter()
                .find(|(n, _)| n == name)
                .map_or(*now, |(_, secs)| *secs);
            uses.push(share(name, now - before));
        }
        uses
    }
}
