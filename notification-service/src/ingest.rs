//! `notifications.v1.EventIngest`: the stream invitation-service publishes
//! its outbox on. The first message names the source and gets the resume
//! point; every batch after it is applied (with the applied sequence, in one
//! transaction), made durable, and then acknowledged. Requests already
//! waiting are applied together, so a backlog costs one flush per group of
//! batches rather than per event.

use std::collections::HashMap;

use futures::FutureExt as _;
use proto::{invitations::v1 as ipb, notifications::v1 as pb};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    convert,
    domain::{Event, EventKind},
    service::Notifier,
};

/// Most events applied in one transaction (and one flush).
const MAX_EVENTS_PER_APPLY: usize = 2048;

/// Most events naming one user (as sender or recipient) in one transaction.
/// An event makes at most three updates for one user, and a transaction's
/// updates reach the live streams at once, so this keeps them within a
/// stream's buffer (`hub::STREAM_BUFFER`).
const MAX_EVENTS_PER_USER_PER_APPLY: usize = 128;

/// Splits off the longest front of `pending` that one transaction may apply
/// (see the two bounds above), leaving the rest in `pending`.
fn next_batch(pending: &mut Vec<Event>) -> Vec<Event> {
    let mut per_user: HashMap<&str, usize> = HashMap::new();
    let mut end = 0;
    for event in pending.iter().take(MAX_EVENTS_PER_APPLY) {
        let mut fits = true;
        for user in [event.sender_id.as_str(), event.recipient_id.as_str()] {
            let count = per_user.entry(user).or_default();
            *count += 1;
            fits &= *count <= MAX_EVENTS_PER_USER_PER_APPLY;
        }
        if !fits {
            break;
        }
        end += 1;
    }
    let rest = pending.split_off(end);
    std::mem::replace(pending, rest)
}

#[derive(Debug, Clone)]
pub struct Ingest {
    notifier: Notifier,
}

impl Ingest {
    #[must_use]
    pub fn new(notifier: Notifier) -> Self {
        Self { notifier }
    }
}

fn invalid(reason: &str) -> Status {
    Status::invalid_argument(reason.to_owned())
}

/// An event from the wire in domain terms.
pub(crate) fn event(e: ipb::InvitationEvent) -> Result<Event, Status> {
    use ipb::invitation_event::Kind as K;
    let ipb::InvitationEvent {
        sequence,
        event_id: _,
        occurred_at,
        invitation,
        kind,
    } = e;
    if sequence == 0 {
        return Err(invalid("event sequence must start at 1"));
    }
    let invitation = invitation.ok_or_else(|| invalid("event without its invitation"))?;
    let kind = match kind.ok_or_else(|| invalid("event without a kind"))? {
        K::Sent(_) => EventKind::Sent,
        K::Withdrawn(w) => EventKind::Withdrawn { note: w.note },
        K::Accepted(_) => EventKind::Accepted,
        K::Ignored(_) => EventKind::Ignored,
        K::Expired(_) => EventKind::Expired,
        K::Reminded(r) => EventKind::Reminded { ordinal: r.ordinal },
    };
    for (field, value) in [
        ("invitation.id", &invitation.id),
        ("invitation.sender_id", &invitation.sender_id),
        ("invitation.recipient_id", &invitation.recipient_id),
    ] {
        if value.is_empty() || value.len() > 128 {
            return Err(Status::invalid_argument(format!("{field} must be 1 to 128 bytes")));
        }
    }
    Ok(Event {
        sequence,
        invitation_id: invitation.id,
        sender_id: invitation.sender_id,
        sender_name: invitation.sender_name,
        recipient_id: invitation.recipient_id,
        message: invitation.message,
        kind,
        occurred_at: occurred_at.as_ref().map(convert::from_timestamp).unwrap_or_default(),
    })
}

type Outbound = tokio::sync::mpsc::Sender<Result<pb::PublishResponse, Status>>;

async fn apply_and_ack(notifier: &Notifier, source: &str, events: Vec<Event>, out: &Outbound) -> Result<(), Status> {
    let applied_through = notifier
        .apply_events(source.to_owned(), events)
        .await
        .map_err(Status::from)?;
    let ack = pb::PublishResponse {
        kind: Some(pb::publish_response::Kind::Ack(pb::Ack { applied_through })),
    };
    out.send(Ok(ack))
        .await
        .map_err(|_| Status::cancelled("publisher went away"))
}

/// The next request, or UNAVAILABLE once the server is shutting down (so an
/// idle publisher does not hold up the drain; it reconnects and resumes).
async fn next(
    inbound: &mut Streaming<pb::PublishRequest>,
    closing: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Option<pb::PublishRequest>, Status> {
    if *closing.borrow() {
        return Err(shutting_down());
    }
    tokio::select! {
        request = inbound.message() => request,
        _ = closing.changed() => Err(shutting_down()),
    }
}

fn shutting_down() -> Status {
    Status::unavailable("notification-service is shutting down: reconnect and resume from the resume point")
}

async fn run(notifier: Notifier, mut inbound: Streaming<pb::PublishRequest>, out: Outbound) -> Result<(), Status> {
    let mut closing = notifier.hub().closing();
    let first = next(&mut inbound, &mut closing)
        .await?
        .ok_or_else(|| invalid("the stream ended before its first message"))?;
    let source = first.source;
    if source.is_empty() || source.len() > 128 {
        return Err(invalid("the first message must name its source (1 to 128 bytes)"));
    }
    let last_applied_sequence = notifier.applied(source.clone()).await.map_err(Status::from)?;
    tracing::info!(%source, last_applied_sequence, "publisher connected");
    let resume = pb::PublishResponse {
        kind: Some(pb::publish_response::Kind::Resume(pb::ResumePoint {
            last_applied_sequence,
        })),
    };
    out.send(Ok(resume))
        .await
        .map_err(|_| Status::cancelled("publisher went away"))?;

    let mut pending: Vec<Event> = first.events.into_iter().map(event).collect::<Result<_, _>>()?;
    loop {
        if pending.is_empty() {
            match next(&mut inbound, &mut closing).await? {
                Some(request) => pending.extend(request.events.into_iter().map(event).collect::<Result<Vec<_>, _>>()?),
                None => return Ok(()),
            }
        }
        // Take whatever else has already arrived, up to a bound.
        while pending.len() < MAX_EVENTS_PER_APPLY {
            match inbound.message().now_or_never() {
                Some(Ok(Some(request))) => {
                    pending.extend(request.events.into_iter().map(event).collect::<Result<Vec<_>, _>>()?);
                }
                Some(Ok(None)) | None => break,
                Some(Err(status)) => return Err(status),
            }
        }
        while !pending.is_empty() {
            apply_and_ack(&notifier, &source, next_batch(&mut pending), &out).await?;
        }
    }
}

#[tonic::async_trait]
impl pb::event_ingest_server::EventIngest for Ingest {
    type PublishStream = ReceiverStream<Result<pb::PublishResponse, Status>>;

    async fn publish(
        &self,
        request: Request<Streaming<pb::PublishRequest>>,
    ) -> Result<Response<Self::PublishStream>, Status> {
        let inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let notifier = self.notifier.clone();
        tokio::spawn(async move {
            if let Err(status) = run(notifier, inbound, tx.clone()).await {
                // Cancelled: the publisher went away; Unavailable: we are shutting down.
                if !matches!(status.code(), tonic::Code::Cancelled | tonic::Code::Unavailable) {
                    tracing::warn!(code = ?status.code(), message = status.message(), "publish stream ended with an error");
                }
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(sequence: u64, sender: &str, recipient: &str) -> Event {
        Event {
            sequence,
            invitation_id: format!("inv{sequence}"),
            sender_id: sender.into(),
            sender_name: String::new(),
            recipient_id: recipient.into(),
            message: String::new(),
            kind: EventKind::Sent,
            occurred_at: crate::domain::Timestamp::default(),
        }
    }

    fn sizes(mut pending: Vec<Event>) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut next = 1;
        while !pending.is_empty() {
            let batch = next_batch(&mut pending);
            assert!(!batch.is_empty());
            for e in &batch {
                assert_eq!(e.sequence, next, "in order, nothing lost or repeated");
                next += 1;
            }
            sizes.push(batch.len());
        }
        sizes
    }

    #[test]
    fn batches_hold_at_most_the_bound_of_events_and_of_events_per_user() {
        let distinct = (1..=5000)
            .map(|i| event(i, &format!("s{i}"), &format!("r{i}")))
            .collect();
        assert_eq!(sizes(distinct), vec![2048, 2048, 904]);

        let one_recipient = (1..=300).map(|i| event(i, &format!("s{i}"), "bob")).collect();
        assert_eq!(sizes(one_recipient), vec![128, 128, 44]);

        // bob as sender counts with bob as recipient.
        let both_roles = (1..=200)
            .map(|i| {
                if i % 2 == 0 {
                    event(i, "bob", &format!("r{i}"))
                } else {
                    event(i, &format!("s{i}"), "bob")
                }
            })
            .collect();
        assert_eq!(sizes(both_roles), vec![128, 72]);
    }
}
