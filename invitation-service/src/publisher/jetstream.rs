//! The outbox published to NATS JetStream (`EVENT_TRANSPORT=jetstream`):
//! each event to the subject of its recipient's partition, and also to its
//! sender's when that differs and the event is one the sender's partition
//! acts on (an acceptance tells the sender). `Nats-Msg-Id` is the event id
//! (with `/<partition>` for the sender's copy), so a republish after a crash
//! within the stream's duplicate window is dropped by JetStream, and one
//! after it by the consumer (see SCALING.md). An event counts as
//! acknowledged once every copy has its PubAck: stored on the stream's
//! replicas.
//!
//! The stream must hold events in outbox order, or the consumer, which
//! skips what is at or below the last event sequence it applied, would drop
//! one that arrived late (messages the client had buffered while the
//! connection was down reach the server after a newer session's). So each
//! message carries `Nats-Expected-Last-Msg-Id`, the id of the message before
//! it: JetStream refuses one out of order, the session ends, and the next
//! resumes after the stream's last message, read back from the stream.

use async_nats::{
    HeaderMap,
    jetstream::{self, context::PublishAckFuture, stream},
};
use bytes::Bytes;
use prost::Message as _;
use proto::invitations::v1::{InvitationEvent, invitation_event::Kind};
use service_kit::{
    jetstream::{Settings, subject},
    partition::partition_of,
};
use tokio::sync::mpsc;

use super::{EventSink, EventStream, SinkError};
use crate::storage::Store;

/// Publishes to the stream `INVITATION_EVENTS`.
#[derive(Debug)]
pub struct JetStreamSink {
    settings: Settings,
    store: Store,
    /// Connected on the first open; the client reconnects by itself after.
    connection: Option<(jetstream::Context, stream::Stream)>,
}

impl JetStreamSink {
    #[must_use]
    pub fn new(settings: Settings, store: Store) -> Self {
        Self {
            settings,
            store,
            connection: None,
        }
    }
}

fn nats(error: impl std::fmt::Display) -> SinkError {
    SinkError::Nats(error.to_string())
}

impl EventSink for JetStreamSink {
    type Stream = JetStreamStream;

    async fn open(&mut self) -> Result<(JetStreamStream, u64), SinkError> {
        let (context, stream) = match &self.connection {
            Some(connection) => connection.clone(),
            None => {
                let connection = service_kit::jetstream::connect(&self.settings)
                    .await
                    .map_err(SinkError::Nats)?;
                self.connection = Some(connection.clone());
                connection
            }
        };
        let partitions = self.settings.partition_count;
        let (resume, mut previous) = match last_message(&stream, partitions).await? {
            Some(last) => last,
            // An empty stream (new, or aged out): after what it acknowledged.
            None => (self.store.acked_sequence().map_err(nats)?, None),
        };
        let (events, mut to_publish) = mpsc::unbounded_channel::<Vec<InvitationEvent>>();
        let (pending, mut to_confirm) = mpsc::unbounded_channel::<(u64, Vec<PublishAckFuture>)>();
        let (acks, acked) = mpsc::unbounded_channel::<Result<u64, SinkError>>();
        // Publishing queues messages on the connection without waiting for
        // their PubAcks; a second task awaits those, in order.
        tokio::spawn(async move {
            while let Some(batch) = to_publish.recv().await {
                for event in batch {
                    let sequence = event.sequence;
                    match publish(&context, &event, partitions, &mut previous).await {
                        Ok(futures) => {
                            if pending.send((sequence, futures)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            // Ends the stream: the publisher reconnects.
                            tracing::debug!(error = %e, "publishing to JetStream failed");
                            return;
                        }
                    }
                }
            }
        });
        tokio::spawn(async move {
            while let Some((sequence, futures)) = to_confirm.recv().await {
                for future in futures {
                    if let Err(e) = future.await {
                        let _ = acks.send(Err(nats(e)));
                        return;
                    }
                }
                if acks.send(Ok(sequence)).is_err() {
                    return;
                }
            }
            let _ = acks.send(Err(SinkError::Closed));
        });
        Ok((JetStreamStream { events, acked }, resume))
    }
}

/// Where to resume, from the stream's last message, if it holds any: after
/// its event, or at its event when that event's other copy is still to be
/// published (see [`publish`], which skips the copy already there). With
/// the last message's id, which the next one expects.
async fn last_message(stream: &stream::Stream, partitions: u32) -> Result<Option<(u64, Option<String>)>, SinkError> {
    let state = stream.get_info().await.map_err(nats)?.state;
    if state.messages == 0 {
        return Ok(None);
    }
    let message = stream.get_raw_message(state.last_sequence).await.map_err(nats)?;
    let event = InvitationEvent::decode(message.payload).map_err(nats)?;
    let id = message
        .headers
        .get(async_nats::header::NATS_MESSAGE_ID)
        .map(|id| id.as_str().to_owned());
    let copies = copies(&event, partitions)?;
    let complete = copies.last().map(|(_, last)| last) == id.as_ref();
    let resume = if complete { event.sequence } else { event.sequence - 1 };
    Ok(Some((resume, id)))
}

/// The messages of one event: (partition, message id), the recipient's
/// first.
fn copies(event: &InvitationEvent, partitions: u32) -> Result<Vec<(u32, String)>, SinkError> {
    let invitation = event
        .invitation
        .as_ref()
        .ok_or(SinkError::Protocol("an outbox event without its invitation"))?;
    let recipient = partition_of(&invitation.recipient_id, partitions);
    let sender = partition_of(&invitation.sender_id, partitions);
    let mut copies = vec![(recipient, event.event_id.clone())];
    // An acceptance tells the sender, in the sender's partition.
    if matches!(event.kind, Some(Kind::Accepted(_))) && sender != recipient {
        copies.push((sender, format!("{}/{sender}", event.event_id)));
    }
    Ok(copies)
}

/// Publishes one event to the partitions that act on it, each message
/// expecting `previous` as the stream's last (see the module's note), and
/// leaves its own id there.
async fn publish(
    context: &jetstream::Context,
    event: &InvitationEvent,
    partitions: u32,
    previous: &mut Option<String>,
) -> Result<Vec<PublishAckFuture>, SinkError> {
    let payload = Bytes::from(event.encode_to_vec());
    let copies = copies(event, partitions)?;
    let mut futures = Vec::with_capacity(copies.len());
    for (partition, id) in copies {
        // Already the stream's last message: resumed in the middle of an
        // event whose other copy had not gone out.
        if previous.as_deref() == Some(id.as_str()) {
            continue;
        }
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        if let Some(previous) = previous.as_deref() {
            headers.insert(async_nats::header::NATS_EXPECTED_LAST_MESSAGE_ID, previous);
        }
        *previous = Some(id.clone());
        let future = context
            .publish_with_headers(subject(partition), headers, payload.clone())
            .await
            .map_err(nats)?;
        futures.push(future);
    }
    Ok(futures)
}

/// An open publishing session. Dropping it stops its tasks.
#[derive(Debug)]
pub struct JetStreamStream {
    events: mpsc::UnboundedSender<Vec<InvitationEvent>>,
    acked: mpsc::UnboundedReceiver<Result<u64, SinkError>>,
}

impl EventStream for JetStreamStream {
    fn send(&mut self, events: Vec<InvitationEvent>) -> Result<(), SinkError> {
        self.events.send(events).map_err(|_| SinkError::Closed)
    }

    async fn next_ack(&mut self) -> Result<u64, SinkError> {
        // Cancel-safe: a receive either takes a value or none. Everything
        // confirmed meanwhile is folded into one acknowledgement.
        let mut through = self.acked.recv().await.unwrap_or(Err(SinkError::Closed))?;
        while let Ok(next) = self.acked.try_recv() {
            through = next?;
        }
        Ok(through)
    }
}
