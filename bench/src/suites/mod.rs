//! The benchmarks, one module each, and what they share: how the servers
//! are started, the load shape, the sizes.

pub(crate) mod catch_up;
pub(crate) mod delivery;
pub(crate) mod fanout;
pub(crate) mod h2load;
pub(crate) mod loader;
pub(crate) mod rpc;
pub(crate) mod scale;

use std::time::Duration;

use serde::Serialize;

use crate::{procs::Servers, users::Tokens};

/// Everything a benchmark needs from the command line.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) servers: Servers,
    pub(crate) tokens: Tokens,
    pub(crate) sizes: Sizes,
    /// taskset CPU list of the client, for h2load.
    pub(crate) client_cpus: Option<String>,
}

/// How big and how long each measurement is.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Sizes {
    /// Connections the load generator opens to a server.
    pub(crate) connections: usize,
    /// Requests in flight per connection in the closed loop.
    pub(crate) streams_per_connection: usize,
    /// Unmeasured time before a closed loop's window.
    pub(crate) warmup_secs: f64,
    /// A closed loop's measured window.
    pub(crate) closed_secs: f64,
    /// Each open-loop rate's duration.
    pub(crate) open_secs: f64,
    pub(crate) send_rates: Vec<f64>,
    pub(crate) get_rates: Vec<f64>,
    /// Invitations created for GetInvitation to read.
    pub(crate) get_pool: u64,
    pub(crate) e2e_rates: Vec<f64>,
    pub(crate) e2e_secs: f64,
    /// Subscribed recipients in the e2e run (each with one stream).
    pub(crate) e2e_recipients: u64,
    /// Invitations sent while notification-service is down.
    pub(crate) backlog: u64,
    pub(crate) scale_sizes: Vec<u64>,
    /// Rate and duration of each scale measurement (open loop).
    pub(crate) scale_rate: f64,
    pub(crate) scale_secs: f64,
    /// Subscribe streams held open in the fan-out run.
    pub(crate) fanout_streams: u64,
    /// Sends to the user with 10 streams, in the fan-out run.
    pub(crate) fanout_sends: u64,
    /// Duration of each h2load run.
    pub(crate) h2load_secs: f64,
}

impl Sizes {
    /// Requests kept in flight by a closed loop.
    #[must_use]
    pub(crate) fn in_flight(&self) -> usize {
        self.connections * self.streams_per_connection
    }

    #[must_use]
    pub(crate) fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup_secs)
    }

    #[must_use]
    pub(crate) fn closed(&self) -> Duration {
        Duration::from_secs_f64(self.closed_secs)
    }

    #[must_use]
    pub(crate) fn open(&self) -> Duration {
        Duration::from_secs_f64(self.open_secs)
    }
}

/// Environment of a notification-service that delivers IMMEDIATE
/// notifications at once (no undo window).
#[must_use]
pub(crate) fn no_undo_window() -> Vec<(&'static str, String)> {
    vec![("NOTIFICATION_UNDO_WINDOW", "0s".to_owned())]
}
