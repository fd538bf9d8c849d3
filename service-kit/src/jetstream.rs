//! The event log between the services when `EVENT_TRANSPORT=jetstream`
//! (see SCALING.md): the NATS JetStream stream `INVITATION_EVENTS`, its
//! subjects `invitations.events.<partition>`, and the settings both services
//! read. invitation-service publishes to it; notification-service consumes
//! it with one durable consumer per partition.

use std::time::Duration;

use async_nats::{
    ServerAddr,
    jetstream::{self, stream},
};

use crate::partition::MAX_PARTITIONS;

/// The stream of invitation events.
pub const STREAM: &str = "INVITATION_EVENTS";

/// How long JetStream remembers a `Nats-Msg-Id`: a republish within it (a
/// publisher restarting after a crash) is dropped as a duplicate.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long events stay in the stream: longer than an outage of
/// notification-service that we plan to survive.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The subject of `partition`.
#[must_use]
pub fn subject(partition: u32) -> String {
    format!("invitations.events.{partition}")
}

/// The durable consumer of `partition` in notification-service.
#[must_use]
pub fn consumer_name(partition: u32) -> String {
    format!("notification-{partition}")
}

/// How events travel from invitation-service to notification-service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// The direct gRPC stream (`notifications.v1.EventIngest`).
    Grpc,
    /// Through the NATS JetStream stream `INVITATION_EVENTS`.
    Jetstream,
}

/// The flags of the event transport, which both services take.
#[derive(Debug, Clone, clap::Args)]
pub struct TransportArgs {
    /// How events travel: `grpc` (the direct stream) or `jetstream`.
    #[arg(
        long,
        env = "EVENT_TRANSPORT",
        hide_env_values = true,
        value_enum,
        default_value = "grpc"
    )]
    pub event_transport: Transport,
    /// The NATS servers, comma-separated (`nats://host:4222,...`), for
    /// `jetstream`.
    #[arg(
        long,
        env = "NATS_URL",
        hide_env_values = true,
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// Replicas of the stream when it is created (3 on a three-node
    /// cluster; at most the number of servers).
    #[arg(long, env = "NATS_STREAM_REPLICAS", hide_env_values = true, default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub stream_replicas: u8,
    /// Partitions of the users (the same on every instance of both
    /// services).
    #[arg(long, env = "PARTITION_COUNT", hide_env_values = true, default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PARTITIONS)))]
    pub partition_count: u32,
}

/// Where the JetStream transport connects, and how the stream is made. Its
/// `Debug` form (logged at start-up) shows hosts and ports, never a user
/// or password in a server URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    pub servers: Vec<ServerAddr>,
    pub stream_replicas: usize,
    pub partition_count: u32,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("{}:{}", s.host(), s.port()))
            .collect();
        f.debug_struct("Settings")
            .field("servers", &servers)
            .field("stream_replicas", &self.stream_replicas)
            .field("partition_count", &self.partition_count)
            .finish()
    }
}

impl TransportArgs {
    /// The JetStream settings, when that is the transport.
    ///
    /// # Errors
    ///
    /// A message naming a server address that does not parse.
    pub fn jetstream(&self) -> Result<Option<Settings>, String> {
        if self.event_transport == Transport::Grpc {
            return Ok(None);
        }
        let servers = self
            .nats_url
            .split(',')
            .map(|url| {
                url.trim()
                    .parse::<ServerAddr>()
                    .map_err(|e| format!("NATS_URL: `{}` is not a server address ({e})", url.trim()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Settings {
            servers,
            stream_replicas: usize::from(self.stream_replicas),
            partition_count: self.partition_count,
        }))
    }
}

/// Connects to the servers (the client reconnects by itself from then on)
/// and makes sure the stream exists.
///
/// # Errors
///
/// When no server answers within the timeout, or the stream cannot be made.
pub async fn connect(settings: &Settings) -> Result<(jetstream::Context, stream::Stream), String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(settings.servers.clone())
        .await
        .map_err(|e| format!("cannot connect to NATS: {e}"))?;
    let context = jetstream::new(client);
    let stream = context
        .get_or_create_stream(stream::Config {
            name: STREAM.to_owned(),
            subjects: vec!["invitations.events.*".to_owned()],
            storage: stream::StorageType::File,
            num_replicas: settings.stream_replicas,
            duplicate_window: DUPLICATE_WINDOW,
            max_age: MAX_AGE,
            ..stream::Config::default()
        })
        .await
        .map_err(|e| format!("cannot open the stream {STREAM}: {e}"))?;
    Ok((context, stream))
}
