//! Configuration: flags, each also read from its environment variable, and
//! the plain [`Config`] they produce (which tests build directly).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::channels::{ChannelArgs, ChannelSettings};
use service_kit::{
    config::{OptionalAddr, SecretArgs, parse_duration, parse_optional_addr},
    limits::RateSettings,
    server::DEFAULT_MAX_STREAMS_PER_CONNECTION,
};

/// Its `Debug` form, logged at start-up, leaves the secret out.
#[derive(Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Where `/metrics` is served; `None` serves none.
    pub metrics_addr: Option<SocketAddr>,
    pub jwt_secret: String,
    /// Digest interval for users who set none.
    pub digest_interval: Duration,
    /// How long IMMEDIATE new-invitation notifications are held.
    pub undo_window: Duration,
    /// How often due notifications are looked for.
    pub timer_tick: Duration,
    /// Calls per second and user, per class of call.
    pub rate: RateSettings,
    /// Concurrent calls one HTTP/2 connection may hold.
    pub max_streams_per_connection: u32,
    /// E-mail and push, where configured.
    pub channels: ChannelSettings,
    /// IMMEDIATE notifications per user and rolling hour; past it, the rest
    /// join the user's next digest. 0: no limit.
    pub max_immediate_per_hour: u32,
    /// Consume events from NATS JetStream, every partition, instead of
    /// (besides) the direct stream (`EVENT_TRANSPORT=jetstream`).
    pub jetstream: Option<service_kit::jetstream::Settings>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen_addr", &self.listen_addr)
            .field("data_dir", &self.data_dir)
            .field("metrics_addr", &self.metrics_addr)
            .field("digest_interval", &self.digest_interval)
            .field("undo_window", &self.undo_window)
            .field("timer_tick", &self.timer_tick)
            .field("rate", &self.rate)
            .field("max_streams_per_connection", &self.max_streams_per_connection)
            .field("channels", &self.channels)
            .field("max_immediate_per_hour", &self.max_immediate_per_hour)
            .field("jetstream", &self.jetstream)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "notification-service",
    version,
    about = "Preference-aware notifications about invitations",
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
    Serve(Box<ServeArgs>),
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
        env = "NOTIFICATION_LISTEN_ADDR",
        hide_env_values = true,
        default_value = "0.0.0.0:50052"
    )]
    pub listen_addr: SocketAddr,
}

#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Folder of the sled database.
    #[arg(
        long,
        env = "NOTIFICATION_DATA_DIR",
        hide_env_values = true,
        default_value = "./data/notification-service"
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
    #[arg(long, env = "NOTIFICATION_METRICS_ADDR", hide_env_values = true, default_value = "0.0.0.0:9465",
          value_parser = parse_optional_addr)]
    pub metrics_addr: OptionalAddr,
    /// Digest interval for users who set none.
    #[arg(long, env = "NOTIFICATION_DIGEST_INTERVAL", hide_env_values = true, default_value = "15m",
          value_parser = parse_duration)]
    pub digest_interval: Duration,
    /// How long IMMEDIATE new-invitation notifications wait, so a quick
    /// withdrawal leaves no trace.
    #[arg(long, env = "NOTIFICATION_UNDO_WINDOW", hide_env_values = true, default_value = "10s",
          value_parser = parse_duration)]
    pub undo_window: Duration,
    /// How often due notifications are looked for.
    #[arg(long, env = "NOTIFICATION_TIMER_TICK", hide_env_values = true, default_value = "100ms",
          value_parser = parse_duration)]
    pub timer_tick: Duration,
    /// Reading calls (preferences, lists, counts, delivery status) one user
    /// may make per second, with a burst of twice that; 0 turns it off.
    #[arg(
        long,
        env = "NOTIFICATION_READS_PER_SECOND",
        hide_env_values = true,
        default_value_t = 100
    )]
    pub reads_per_second: u32,
    /// Changing calls (UpdatePreferences, MarkRead) and Subscribe one user
    /// may make per second, with a burst of twice that; 0 turns it off.
    #[arg(
        long,
        env = "NOTIFICATION_WRITES_PER_SECOND",
        hide_env_values = true,
        default_value_t = 20
    )]
    pub writes_per_second: u32,
    /// Concurrent calls one HTTP/2 connection may hold, open `Subscribe`
    /// streams included (advertised as SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, env = "NOTIFICATION_MAX_STREAMS_PER_CONNECTION", hide_env_values = true,
          default_value_t = DEFAULT_MAX_STREAMS_PER_CONNECTION, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_connection: u32,
    /// IMMEDIATE notifications one user gets in a rolling hour; past it,
    /// the rest join their next digest (none is dropped). 0: no limit.
    #[arg(
        long,
        env = "NOTIFICATION_MAX_IMMEDIATE_PER_HOUR",
        hide_env_values = true,
        default_value_t = 20
    )]
    pub max_immediate_per_hour: u32,
    #[command(flatten)]
    pub channels: ChannelArgs,
    #[command(flatten)]
    pub transport: service_kit::jetstream::TransportArgs,
}

impl ServeArgs {
    /// # Errors
    ///
    /// A message saying how to set the secret, or what is wrong with a
    /// setting.
    pub fn into_config(self) -> Result<Config, String> {
        let jwt_secret = self.secret.resolve()?;
        let Self {
            secret: _,
            listen: ListenArgs { listen_addr },
            data: DataArgs { data_dir },
            metrics_addr: OptionalAddr(metrics_addr),
            digest_interval,
            undo_window,
            timer_tick,
            reads_per_second,
            writes_per_second,
            max_streams_per_connection,
            max_immediate_per_hour,
            channels,
            transport,
        } = self;
        if digest_interval.is_zero() {
            return Err("--digest-interval (NOTIFICATION_DIGEST_INTERVAL) must be longer than 0s".to_owned());
        }
        Ok(Config {
            listen_addr,
            data_dir,
            metrics_addr,
            jwt_secret,
            digest_interval,
            undo_window,
            timer_tick: timer_tick.max(Duration::from_millis(5)),
            rate: RateSettings {
                reads_per_second,
                writes_per_second,
            },
            max_streams_per_connection,
            channels: channels.into_settings()?,
            max_immediate_per_hour,
            jetstream: transport.jetstream()?,
        })
    }
}
