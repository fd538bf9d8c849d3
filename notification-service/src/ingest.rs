//! `notifications.v1.EventIngest`: the stream invitation-service publishes
//! its outbox on. The first message names the source and gets the resume
//! point; every batch after it is applied (with the applied sequence, in one
//! transaction), made durable, and then acknowledged. Requests already
//! waiting are applied together, so a backlog costs one flush per group of
//! batches rather than per event.

use futures::FutureExt as _;
use proto::{invitations::v1 as ipb, notifications::v1 as pb};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    convert,
    domain::{Event, EventKind},
    service::Notifier,
};

/// Most events applied in one transaction. An event makes at most three
/// updates for one user, so one transaction stays within a live stream's
/// buffer (`hub::STREAM_BUFFER`).
const MAX_EVENTS_PER_APPLY: usize = 128;

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
fn event(e: ipb::InvitationEvent) -> Result<Event, Status> {
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
            let rest = pending.split_off(pending.len().min(MAX_EVENTS_PER_APPLY));
            apply_and_ack(&notifier, &source, std::mem::replace(&mut pending, rest), &out).await?;
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
