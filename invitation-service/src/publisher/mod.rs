//! The outbox publisher: streams outbox events in sequence order to
//! notification-service, resuming after the last sequence it applied, with a
//! bounded window of unacknowledged events in flight. It runs beside request
//! handling and never holds it up: while notification-service is away,
//! events wait in the outbox and the publisher retries with backoff. It also
//! prunes events acknowledged long enough ago (see `prune.rs`).
//!
//! Events are at least once on the wire (a reconnect resends what was not
//! acknowledged); the receiver applies each sequence once.

mod grpc;
mod jetstream;
mod prune;
mod session;
mod sink;

use std::time::Duration;

use tokio::{sync::watch, time::Instant};

use crate::{
    error::Error,
    metrics::PublisherLink,
    service::Invitations,
    storage::{Store, StoreError},
};

pub use grpc::{GrpcSink, GrpcStream};
pub use jetstream::{JetStreamSink, JetStreamStream};
pub(crate) use prune::prune_periodically;
pub use sink::{EventSink, EventStream, SinkError};

use service_kit::backoff::Backoff;

/// The source name in the hello, and the subject of the service token.
pub const SOURCE: &str = "invitation-service";

/// Most events in one `PublishRequest`.
pub const MAX_BATCH_EVENTS: usize = 256;

/// Most events sent and not yet acknowledged.
pub const MAX_IN_FLIGHT: u64 = 4096;

/// Most encoded event bytes in one `PublishRequest`: half the message limit,
/// leaving room for framing.
const MAX_BATCH_BYTES: usize = service_kit::server::MAX_MESSAGE_BYTES / 2;

/// How often the outbox is read even without a signal from the write path.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why a publishing session ended.
#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("reading the outbox: {0}")]
    Local(#[from] Error),
}

/// Publishes through `sink` until `stop` changes; `link` tells whether it
/// is streaming now.
pub(crate) async fn run<S: EventSink>(
    mut sink: S,
    invitations: Invitations,
    link: PublisherLink,
    mut stop: watch::Receiver<bool>,
) {
    tokio::select! {
        () = publish_forever(&mut sink, &invitations, link.clone()) => {}
        _ = stop.changed() => {}
    }
    link.set(false);
}

async fn publish_forever<S: EventSink>(sink: &mut S, invitations: &Invitations, link: PublisherLink) {
    let mut retry = Retry {
        // Reconnections: 100 ms, doubling to at most 5 s.
        backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
        link: Link::Starting,
        connected: link,
    };
    loop {
        let error = match sink.open().await {
            Ok((stream, resume)) => {
                let Err(e) = session::publish(stream, resume, invitations, &mut retry).await;
                e
            }
            Err(e) => PublishError::Sink(e),
        };
        let delay = retry.failed(&error);
        tokio::time::sleep(delay).await;
    }
}

/// The state of the link, so that an outage is logged once when it starts
/// and once when it ends, not at every attempt.
#[derive(Debug)]
enum Link {
    Starting,
    Up,
    Down { since: Instant, attempts: u32 },
}

#[derive(Debug)]
struct Retry {
    backoff: Backoff,
    link: Link,
    /// What the metrics read.
    connected: PublisherLink,
}

impl Retry {
    /// Publishing made progress (caught up, or an acknowledgement advanced).
    fn healthy(&mut self) {
        self.connected.set(true);
        match std::mem::replace(&mut self.link, Link::Up) {
            Link::Starting => tracing::info!("publishing events"),
            Link::Up => {}
            Link::Down { since, attempts } => tracing::info!(
                outage = ?since.elapsed(),
                attempts,
                "publishing events again"
            ),
        }
        self.backoff.reset();
    }

    /// Records a failure and returns how long to wait before the next attempt.
    fn failed(&mut self, error: &PublishError) -> Duration {
        self.connected.set(false);
        match &mut self.link {
            Link::Starting | Link::Up => {
                match error {
                    PublishError::Sink(e) => tracing::warn!(
                        error = %e,
                        "cannot publish events; they wait in the outbox, retrying with backoff"
                    ),
                    PublishError::Local(e) => {
                        tracing::error!(error = %e, "cannot publish the outbox; retrying with backoff")
                    }
                }
                self.link = Link::Down {
                    since: Instant::now(),
                    attempts: 1,
                };
            }
            Link::Down { attempts, .. } => {
                *attempts += 1;
                tracing::debug!(error = %error, attempts = *attempts, "publishing still failing");
            }
        }
        self.backoff.next_delay()
    }
}

/// Runs storage work on the blocking pool, as a write outside the writer
/// (the publisher records acknowledgements and prunes the outbox): none
/// after a storage fault, and a fault here trips the fail-stop like any
/// other.
async fn blocking<T: Send + 'static>(
    invitations: &Invitations,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Error> {
    invitations
        .blocking(move |store| {
            let _writing = store.writing_outside_writer();
            Ok(f(store)?)
        })
        .await
}
