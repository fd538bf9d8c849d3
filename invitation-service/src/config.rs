//! Configuration: command-line flags, each also read from its environment
//! variable, and the plain [`Config`] they produce (which tests build
//! directly).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use service_kit::{
    config::{OptionalAddr, SecretArgs, parse_duration, parse_optional_addr},
    limits::RateSettings,
    server::DEFAULT_MAX_STREAMS_PER_CONNECTION,
};

use crate::domain::{Policy, Reminders};

/// Everything the server needs to start.
/// Its `Debug` form, logged at start-up, leaves the secret out.
#[derive(Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Where `/metrics` is served; `None` serves none.
    pub metrics_addr: Option<SocketAddr>,
    pub notification_endpoint: String,
    /// Publish to NATS JetStream instead of the direct stream
    /// (`EVENT_TRANSPORT=jetstream`).
    pub jetstream: Option<service_kit::jetstream::Settings>,
    pub jwt_secret: String,
    pub policy: Policy,
    /// How often expired invitations and due reminders are swept.
    pub sweep_interval: Duration,
    /// Acknowledged outbox events older than this (by when they occurred)
    /// are deleted; unacknowledged ones never are.
    pub outbox_retention: Duration,
    /// How often acknowledged outbox events are pruned. Not a flag
    /// ([`OUTBOX_PRUNE_INTERVAL`]); tests shorten it.
    pub outbox_prune_interval: Duration,
    /// Calls per second and user, per class of call.
    pub rate: RateSettings,
    /// Concurrent calls one HTTP/2 connection may hold.
    pub max_streams_per_connection: u32,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen_addr", &self.listen_addr)
            .field("data_dir", &self.data_dir)
            .field("metrics_addr", &self.metrics_addr)
            .field("notification_endpoint", &self.notification_endpoint)
            .field("jetstream", &self.jetstream)
            .field("policy", &self.policy)
            .field("sweep_interval", &self.sweep_interval)
            .field("outbox_retention", &self.outbox_retention)
            .field("outbox_prune_interval", &self.outbox_prune_interval)
            .field("rate", &self.rate)
            .field("max_streams_per_connection", &self.max_streams_per_connection)
            .finish_non_exhaustive()
    }
}

/// How often acknowledged outbox events are pruned in production.
pub const OUTBOX_PRUNE_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Parser)]
#[command(
    name = "invitation-service",
    version,
    about = "Connection invitations with discreet withdrawal",
    // Serving flags go without a subcommand or after `serve`; each other
    // subcommand takes only the flags it uses.
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(ServeArgs),
    /// Print a signed token for a user, for trying the API with grpcurl.
    Token {
        /// The user id the token stands for (its `sub`).
        #[arg(long)]
        user: String,
        /// A display name shown to recipients.
        #[arg(long)]
        name: Option<String>,
        /// How long the token is valid.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        ttl: Duration,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Ask the server on --listen-addr (127.0.0.1 for 0.0.0.0) for its gRPC
    /// health: exit 0 when SERVING, 1 otherwise. For container health checks.
    Healthcheck {
        /// How long the connection and the call may take.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        timeout: Duration,
        #[command(flatten)]
        listen: ListenArgs,
    },
    /// Check the data folder (--data-dir) offline, with the service
    /// stopped: exit 0 when sound, 1 when damaged, 2 when it cannot be
    /// checked. Prints what it found.
    Verify {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Ask the server on --listen-addr (127.0.0.1 for 0.0.0.0) to copy its
    /// database, while it serves, into a new folder on its machine (needs
    /// the secret, to mint an operator's token).
    Backup {
        /// The folder to create (it must not exist, or be empty); relative
        /// paths are taken from the current folder.
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        listen: ListenArgs,
        #[command(flatten)]
        secret: SecretArgs,
    },
}

// Environment values are never shown in --help: an unset variable would
// show as `NAME=`, and a set one might be a secret.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Address to listen on for gRPC.
    #[arg(
        long,
        env = "INVITATION_LISTEN_ADDR",
        hide_env_values = true,
        default_value = "0.0.0.0:50051"
    )]
    pub listen_addr: SocketAddr,
}

#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Folder of the sled database.
    #[arg(
        long,
        env = "INVITATION_DATA_DIR",
        hide_env_values = true,
        default_value = "./data/invitation-service"
    )]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub secret: SecretArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Address of the Prometheus /metrics endpoint; empty turns it off.
    #[arg(long, env = "INVITATION_METRICS_ADDR", hide_env_values = true, default_value = "0.0.0.0:9464",
          value_parser = parse_optional_addr)]
    pub metrics_addr: OptionalAddr,
    /// Where notification-service listens.
    #[arg(
        long,
        env = "NOTIFICATION_ENDPOINT",
        hide_env_values = true,
        default_value = "http://127.0.0.1:50052"
    )]
    pub notification_endpoint: String,
    #[command(flatten)]
    pub transport: service_kit::jetstream::TransportArgs,
    /// Longest personal note or apology, in characters.
    #[arg(
        long,
        env = "INVITATION_MAX_NOTE_CHARS",
        hide_env_values = true,
        default_value_t = 300
    )]
    pub max_note_chars: usize,
    /// How long a sender waits to re-invite someone after withdrawing.
    #[arg(long, env = "INVITATION_REINVITE_COOLDOWN", hide_env_values = true, default_value = "21d",
          value_parser = parse_duration)]
    pub reinvite_cooldown: Duration,
    /// Invitations a user may send in any 7 days.
    #[arg(long, env = "INVITATION_WEEKLY_LIMIT", hide_env_values = true, default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub weekly_limit: u32,
    /// How long an unanswered invitation stays pending.
    #[arg(long, env = "INVITATION_PENDING_TTL", hide_env_values = true, default_value = "180d",
          value_parser = parse_duration)]
    pub pending_ttl: Duration,
    /// When a still-pending invitation is brought back to its recipient:
    /// comma-separated offsets after the send, increasing (at most 10);
    /// empty for none.
    #[arg(long, env = "INVITATION_REMINDERS", hide_env_values = true, default_value = "7d,14d")]
    pub reminders: Reminders,
    /// How often expired invitations and due reminders are swept.
    #[arg(long, env = "INVITATION_SWEEP_INTERVAL", hide_env_values = true, default_value = "1s",
          value_parser = parse_duration)]
    pub sweep_interval: Duration,
    /// Acknowledged outbox events older than this are deleted.
    #[arg(long, env = "INVITATION_OUTBOX_RETENTION", hide_env_values = true, default_value = "7d",
          value_parser = parse_duration)]
    pub outbox_retention: Duration,
    /// Reading calls (gets, lists, stats) one user may make per second,
    /// with a burst of twice that; 0 turns the limit off.
    #[arg(
        long,
        env = "INVITATION_READS_PER_SECOND",
        hide_env_values = true,
        default_value_t = 100
    )]
    pub reads_per_second: u32,
    /// Changing calls (send, withdraw, accept, ignore, remove) one user may
    /// make per second, with a burst of twice that; 0 turns the limit off.
    #[arg(
        long,
        env = "INVITATION_WRITES_PER_SECOND",
        hide_env_values = true,
        default_value_t = 20
    )]
    pub writes_per_second: u32,
    /// Concurrent calls one HTTP/2 connection may hold (advertised to
    /// clients as SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, env = "INVITATION_MAX_STREAMS_PER_CONNECTION", hide_env_values = true,
          default_value_t = DEFAULT_MAX_STREAMS_PER_CONNECTION, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_connection: u32,
}

impl ServeArgs {
    /// # Errors
    ///
    /// A message saying how to set the secret.
    pub fn into_config(self) -> Result<Config, String> {
        let jwt_secret = self.secret.resolve()?;
        let Self {
            secret: _,
            listen: ListenArgs { listen_addr },
            data: DataArgs { data_dir },
            metrics_addr: OptionalAddr(metrics_addr),
            notification_endpoint,
            transport,
            max_note_chars,
            reinvite_cooldown,
            weekly_limit,
            pending_ttl,
            reminders,
            sweep_interval,
            outbox_retention,
            reads_per_second,
            writes_per_second,
            max_streams_per_connection,
        } = self;
        Ok(Config {
            listen_addr,
            data_dir,
            metrics_addr,
            notification_endpoint,
            jetstream: transport.jetstream()?,
            jwt_secret,
            policy: Policy {
                max_note_chars,
                reinvite_cooldown,
                weekly_limit,
                pending_ttl,
                reminders,
            },
            sweep_interval: sweep_interval.max(Duration::from_millis(10)),
            outbox_retention,
            outbox_prune_interval: OUTBOX_PRUNE_INTERVAL,
            rate: RateSettings {
                reads_per_second,
                writes_per_second,
            },
            max_streams_per_connection,
        })
    }
}
