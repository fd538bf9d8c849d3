//! One open stream: sends the outbox after the resume point in batches,
//! keeping at most [`MAX_IN_FLIGHT`] events unacknowledged, and records each
//! acknowledgement. It reads again when the write path signals new events,
//! when an acknowledgement makes room, and every [`POLL_INTERVAL`] regardless.

use std::convert::Infallible;

use proto::invitations::v1::InvitationEvent;
use tokio::time::MissedTickBehavior;

use super::{
    EventStream, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_IN_FLIGHT, POLL_INTERVAL, PublishError, Retry, blocking,
};
use crate::{
    service::Invitations,
    storage::{Store, StoreError, records},
};

/// Publishes on `stream` until it fails; returns why.
pub(super) async fn publish<T: EventStream>(
    mut stream: T,
    resume: u64,
    invitations: &Invitations,
    retry: &mut Retry,
) -> Result<Infallible, PublishError> {
    let last = blocking(invitations, Store::last_sequence).await?;
    if resume > last {
        tracing::warn!(
            resume,
            last,
            "notification-service has applied more events than this outbox holds (another data folder?); \
             events up to its resume point will not be sent"
        );
    }
    blocking(invitations, move |s| s.record_acked(resume)).await?;
    tracing::debug!(resume_after = resume, "publish stream open");

    let (mut sent, mut acked) = (resume, resume);
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    poll.reset();
    let mut read_more = true;
    loop {
        let in_flight = sent - acked;
        // Only durable events leave: after a crash that lost them, their
        // sequences would be given to other events, which the receiver would
        // then drop as already applied.
        let durable = invitations.durable_through();
        if read_more && in_flight < MAX_IN_FLIGHT && durable > sent {
            let room = (MAX_IN_FLIGHT - in_flight).min(durable - sent);
            let after = sent;
            let read = blocking(invitations, move |s| read(s, after, room, durable)).await?;
            // A full read means more may be waiting once there is room.
            read_more = read.count == room;
            if let Some(first) = read.first
                && first != after + 1
            {
                tracing::warn!(
                    from = after + 1,
                    to = first - 1,
                    "outbox events were pruned before notification-service applied them"
                );
            }
            if read.count > 0 {
                for batch in read.batches {
                    let last = batch.last().map_or(sent, |e| e.sequence);
                    stream.send(batch)?;
                    sent = last;
                }
            }
            if sent == acked {
                retry.healthy();
            }
        }
        tokio::select! {
            ack = stream.next_ack() => {
                let through = ack?.min(sent);
                if through > acked {
                    acked = through;
                    blocking(invitations, move |s| s.record_acked(through)).await?;
                    retry.healthy();
                }
            }
            () = invitations.outbox_written() => read_more = true,
            _ = poll.tick() => read_more = true,
        }
    }
}

/// Events read from the outbox, split into requests.
#[derive(Debug)]
struct Read {
    batches: Vec<Vec<InvitationEvent>>,
    count: u64,
    first: Option<u64>,
}

/// Up to `limit` events after `after` and up to `through`, in batches of at
/// most [`MAX_BATCH_EVENTS`] events and [`MAX_BATCH_BYTES`] bytes.
fn read(store: &Store, after: u64, limit: u64, through: u64) -> Result<Read, StoreError> {
    let mut entries = store.outbox_after(after, usize::try_from(limit).unwrap_or(usize::MAX))?;
    entries.retain(|(sequence, _)| *sequence <= through);
    let mut batches = Vec::new();
    let mut batch: Vec<InvitationEvent> = Vec::new();
    let mut bytes = 0;
    for (sequence, value) in &entries {
        let event = records::decode_event(value)?;
        if event.sequence != *sequence {
            return Err(StoreError::Corrupt(format!(
                "outbox entry {sequence} holds event {}",
                event.sequence
            )));
        }
        // The stored value is the encoded event behind a version byte; a
        // repeated field adds a tag and a length.
        let size = value.len() + 4;
        if !batch.is_empty() && (batch.len() == MAX_BATCH_EVENTS || bytes + size > MAX_BATCH_BYTES) {
            batches.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes += size;
        batch.push(event);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    Ok(Read {
        batches,
        count: u64::try_from(entries.len()).unwrap_or(u64::MAX),
        first: entries.first().map(|(sequence, _)| *sequence),
    })
}
