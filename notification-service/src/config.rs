//! Configuration: flags, each also read from its environment variable, and
//! the plain [`Config`] they produce (which tests build directly).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use service_kit::{config::parse_duration, limits::RateSettings, server::DEFAULT_MAX_STREAMS_PER_CONNECTION};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
    pub data_dir: PathBuf,
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
}

#[derive(Debug, Parser)]
#[command(
    name = "notification-service",
    version,
    about = "Preference-aware notifications about invitations"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The HS256 secret shared by both services.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
    /// A file holding the secret, used when JWT_SECRET is unset.
    #[arg(long, env = "JWT_SECRET_FILE", global = true)]
    pub jwt_secret_file: Option<PathBuf>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Ask the server on --listen-addr (127.0.0.1 for 0.0.0.0) for its gRPC
    /// health: exit 0 when SERVING, 1 otherwise. For container health checks.
    Healthcheck {
        /// How long the connection and the call may take.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Check the data folder (--data-dir) offline, with the service
    /// stopped: exit 0 when sound, 1 when damaged, 2 when it cannot be
    /// checked. Prints what it found.
    Verify,
    /// Ask the server on --listen-addr (127.0.0.1 for 0.0.0.0) to copy its
    /// database, while it serves, into a new folder on its machine (needs
    /// the secret, to mint an operator's token).
    Backup {
        /// The folder to create (it must not exist, or be empty); relative
        /// paths are taken from the current folder.
        #[arg(long)]
        to: PathBuf,
    },
}

// `global` lets the flags follow `serve` as well as precede it.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on for gRPC.
    #[arg(
        long,
        env = "NOTIFICATION_LISTEN_ADDR",
        global = true,
        default_value = "0.0.0.0:50052"
    )]
    pub listen_addr: SocketAddr,
    /// Folder of the sled database.
    #[arg(
        long,
        env = "NOTIFICATION_DATA_DIR",
        global = true,
        default_value = "./data/notification-service"
    )]
    pub data_dir: PathBuf,
    /// Digest interval for users who set none.
    #[arg(long, env = "NOTIFICATION_DIGEST_INTERVAL", global = true, default_value = "15m", value_parser = parse_duration)]
    pub digest_interval: Duration,
    /// How long IMMEDIATE new-invitation notifications wait, so a quick
    /// withdrawal leaves no trace.
    #[arg(long, env = "NOTIFICATION_UNDO_WINDOW", global = true, default_value = "10s", value_parser = parse_duration)]
    pub undo_window: Duration,
    /// How often due notifications are looked for.
    #[arg(long, env = "NOTIFICATION_TIMER_TICK", global = true, default_value = "100ms", value_parser = parse_duration)]
    pub timer_tick: Duration,
    /// Reading calls (preferences, lists, counts, delivery status) one user
    /// may make per second, with a burst of twice that; 0 turns it off.
    #[arg(long, env = "NOTIFICATION_READS_PER_SECOND", global = true, default_value_t = 100)]
    pub reads_per_second: u32,
    /// Changing calls (UpdatePreferences, MarkRead) and Subscribe one user
    /// may make per second, with a burst of twice that; 0 turns it off.
    #[arg(long, env = "NOTIFICATION_WRITES_PER_SECOND", global = true, default_value_t = 20)]
    pub writes_per_second: u32,
    /// Concurrent calls one HTTP/2 connection may hold, open `Subscribe`
    /// streams included (advertised as SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, env = "NOTIFICATION_MAX_STREAMS_PER_CONNECTION", global = true,
          default_value_t = DEFAULT_MAX_STREAMS_PER_CONNECTION, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_connection: u32,
}

impl Cli {
    /// # Errors
    ///
    /// A message saying how to set the secret.
    pub fn into_config(self) -> Result<Config, String> {
        let jwt_secret =
            service_kit::config::resolve_jwt_secret(self.jwt_secret.as_deref(), self.jwt_secret_file.as_deref())?;
        let ServeArgs {
            listen_addr,
            data_dir,
            digest_interval,
            undo_window,
            timer_tick,
            reads_per_second,
            writes_per_second,
            max_streams_per_connection,
        } = self.serve;
        if digest_interval.is_zero() {
            return Err("--digest-interval (NOTIFICATION_DIGEST_INTERVAL) must be longer than 0s".to_owned());
        }
        Ok(Config {
            listen_addr,
            data_dir,
            jwt_secret,
            digest_interval,
            undo_window,
            timer_tick: timer_tick.max(Duration::from_millis(5)),
            rate: RateSettings {
                reads_per_second,
                writes_per_second,
            },
            max_streams_per_connection,
        })
    }
}
