//! Events from NATS JetStream (`EVENT_TRANSPORT=jetstream`): one durable
//! pull consumer per partition (`notification-<partition>`, filtered on
//! `invitations.events.<partition>`). A fetched batch is applied in one
//! transaction with the partition's position (see
//! [`Store::apply_partition`](crate::storage::Store::apply_partition)),
//! flushed, and only then acknowledged, each message explicitly.
//!
//! The stored position, not the consumer's state on the server, is the
//! truth (as Kafka Streams keeps offsets with its state): whenever consuming
//! (re)starts, the consumer is made afresh to deliver from the message after
//! the stored stream sequence. Otherwise messages delivered to a process
//! that died before applying them would come back only after the ack wait,
//! behind newer ones, and an event sequence already passed would drop them.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt as _;
use prost::Message as _;
use proto::invitations::v1 as ipb;
use service_kit::{
    backoff::Backoff,
    jetstream::{Settings, consumer_name, subject},
};
use tokio::sync::watch;

use crate::{domain::Event, service::Notifier};

/// Most messages fetched (and applied in one transaction) at once.
const FETCH_BATCH: usize = 1024;
/// How long a fetch waits for messages when there are none.
const FETCH_WAIT: Duration = Duration::from_secs(1);
/// How long past its expiry a fetch may take before the connection is
/// taken for lost.
const FETCH_GRACE: Duration = Duration::from_secs(4);
/// Messages delivered and not yet acknowledged, per partition.
const MAX_ACK_PENDING: i64 = 4 * FETCH_BATCH as i64;
/// How long JetStream waits for an acknowledgement before redelivering.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// Consumes every partition until `stop` changes, reconnecting with backoff.
pub async fn run(notifier: Notifier, settings: Settings, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut down_since: Option<std::time::Instant> = None;
    loop {
        let outcome = tokio::select! {
            outcome = consume_all(&notifier, &settings, &mut backoff, &mut down_since) => outcome,
            _ = stop.changed() => return,
        };
        match outcome {
            Err(crate::error::Error::StorageFailed) => return,
            Err(e) => {
                if down_since.is_none() {
                    tracing::warn!(error = %e, "cannot consume events from NATS JetStream; retrying with backoff");
                    down_since = Some(std::time::Instant::now());
                }
            }
            Ok(()) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Connects and consumes every partition, until one fails.
async fn consume_all(
    notifier: &Notifier,
    settings: &Settings,
    backoff: &mut Backoff,
    down_since: &mut Option<std::time::Instant>,
) -> Result<(), crate::error::Error> {
    let (_, stream) = service_kit::jetstream::connect(settings)
        .await
        .map_err(crate::error::Error::Transport)?;
    let mut consumers = Vec::new();
    for partition in 0..settings.partition_count {
        let failed = |e: &dyn std::fmt::Display| {
            crate::error::Error::Transport(format!("consumer of partition {partition}: {e}"))
        };
        let (stream_sequence, _) = notifier.partition_position(partition).await?;
        let name = consumer_name(partition);
        // Not found is fine: the first start, or a stream made anew.
        let _ = stream.delete_consumer(&name).await;
        let consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name),
                filter_subject: subject(partition),
                deliver_policy: match stream_sequence {
                    0 => consumer::DeliverPolicy::All,
                    applied => consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: applied + 1,
                    },
                },
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: MAX_ACK_PENDING,
                ..consumer::pull::Config::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        consumers.push((partition, consumer));
    }
    if let Some(since) = down_since.take() {
        tracing::info!(outage = ?since.elapsed(), "consuming events from NATS JetStream again");
    } else {
        tracing::info!(
            partitions = settings.partition_count,
            "consuming events from NATS JetStream"
        );
    }
    backoff.reset();
    let count = settings.partition_count;
    let mut tasks = tokio::task::JoinSet::new();
    for (partition, consumer) in consumers {
        let notifier = notifier.clone();
        tasks.spawn(async move { consume(&notifier, partition, count, &consumer).await });
    }
    // The first partition to fail ends them all; the caller reconnects.
    let failed = tasks.join_next().await;
    tasks.abort_all();
    match failed {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(crate::error::Error::Transport(format!("a consumer task ended: {e}"))),
        None => Ok(()),
    }
}

/// Applies one partition's messages as they come.
async fn consume(
    notifier: &Notifier,
    partition: u32,
    count: u32,
    consumer: &consumer::PullConsumer,
) -> Result<(), crate::error::Error> {
    let transport = |e: &dyn std::fmt::Display| crate::error::Error::Transport(format!("partition {partition}: {e}"));
    loop {
        // A pull request lost with the connection is never answered: a
        // fetch that outlives its expiry by far ends consuming, and the
        // caller starts again from the stored position.
        let fetch = async {
            let mut batch = consumer
                .fetch()
                .max_messages(FETCH_BATCH)
                .expires(FETCH_WAIT)
                .messages()
                .await
                .map_err(|e| transport(&e))?;
            let mut messages: Vec<jetstream::Message> = Vec::new();
            while let Some(message) = batch.next().await {
                messages.push(message.map_err(|e| transport(&e))?);
            }
            Ok::<_, crate::error::Error>(messages)
        };
        let messages = tokio::time::timeout(FETCH_WAIT + FETCH_GRACE, fetch)
            .await
            .map_err(|_| transport(&"a fetch went unanswered"))??;
        let Some(last) = messages.last() else { continue };
        let stream_sequence = last.info().map_err(|e| transport(&e))?.stream_sequence;
        let mut events: Vec<Event> = Vec::with_capacity(messages.len());
        for message in &messages {
            match ipb::InvitationEvent::decode(message.payload.clone())
                .map_err(|e| e.to_string())
                .and_then(|e| crate::ingest::event(e).map_err(|s| s.message().to_owned()))
            {
                Ok(event) => events.push(event),
                // Not ours to apply, ever: say so once and move past it.
                Err(reason) => {
                    tracing::error!(partition, %reason, "skipping a message that is not an invitation event")
                }
            }
        }
        notifier
            .apply_partition(partition, count, events, stream_sequence)
            .await?;
        for message in &messages {
            message.ack().await.map_err(|e| transport(&e))?;
        }
    }
}
