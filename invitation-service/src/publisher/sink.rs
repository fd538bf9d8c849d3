//! Where published events go, behind a small trait: the direct gRPC stream
//! to notification-service ([`super::GrpcSink`]), or the NATS JetStream
//! stream ([`super::JetStreamSink`]); the publisher's reading, windowing and
//! retrying are the same for both.

use std::{future::Future, time::Duration};

use proto::invitations::v1::InvitationEvent;

/// Opens streams to the receiver of the outbox.
pub trait EventSink: Send + 'static {
    type Stream: EventStream;

    /// Opens a stream, and returns it with the last sequence the receiver has
    /// applied (0 when none): the publisher resumes after it.
    fn open(&mut self) -> impl Future<Output = Result<(Self::Stream, u64), SinkError>> + Send;
}

/// One open stream of events.
pub trait EventStream: Send {
    /// Queues a batch of events in strictly increasing sequence order. It
    /// does not wait: the publisher bounds what is in flight.
    ///
    /// # Errors
    ///
    /// When the stream has ended.
    fn send(&mut self, events: Vec<InvitationEvent>) -> Result<(), SinkError>;

    /// The next acknowledgement: every sequence up to and including it is
    /// applied and durable at the receiver. Cancel-safe.
    fn next_ack(&mut self) -> impl Future<Output = Result<u64, SinkError>> + Send;
}

/// Why a stream could not be opened, or ended.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("notification-service answered {detail}")]
    Rpc { code: tonic::Code, detail: String },
    #[error("no resume point within {0:?}")]
    Timeout(Duration),
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("notification-service closed the stream")]
    Closed,
    #[error("NATS JetStream: {0}")]
    Nats(String),
}

impl From<tonic::Status> for SinkError {
    fn from(status: tonic::Status) -> Self {
        Self::Rpc {
            code: status.code(),
            detail: status.to_string(),
        }
    }
}
