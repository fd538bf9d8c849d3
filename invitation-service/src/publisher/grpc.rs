//! The direct stream to `notifications.v1.EventIngest/Publish`: a lazily
//! connected channel (tonic reconnects it on the next call), a service token
//! minted afresh for every stream, the hello naming the source, and the
//! resume point read before any event goes out.

use std::{sync::Arc, time::Duration};

use proto::{
    invitations::v1::InvitationEvent,
    notifications::v1::{
        Ack, PublishRequest, PublishResponse, ResumePoint, event_ingest_client::EventIngestClient,
        publish_response::Kind,
    },
};
use service_kit::{
    auth::{JwtKeys, PUBLISH_SCOPE},
    server::MAX_MESSAGE_BYTES,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{
    Request, Streaming,
    metadata::MetadataValue,
    transport::{Channel, Endpoint},
};

use super::{EventSink, EventStream, SOURCE, SinkError};

/// How long the service token of one stream is valid. A stream outliving it
/// keeps going (the token is checked when the stream opens); the next one
/// gets a new token.
const TOKEN_TTL: Duration = Duration::from_secs(3600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the resume point once the stream is requested.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings find a peer that vanished without closing the connection.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes over a gRPC stream to notification-service.
#[derive(Debug, Clone)]
pub struct GrpcSink {
    channel: Channel,
    keys: Arc<JwtKeys>,
}

impl GrpcSink {
    /// A sink for `endpoint` (`http://host:port`). Connects on first use;
    /// must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// What is wrong with the endpoint.
    pub fn new(endpoint: &str, keys: Arc<JwtKeys>) -> Result<Self, String> {
        let parsed = Endpoint::from_shared(endpoint.to_owned()).map_err(|e| e.to_string())?;
        if parsed.uri().scheme_str() != Some("http") || parsed.uri().host().is_none() {
            return Err("use the form http://host:port".to_owned());
        }
        let channel = parsed
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .connect_lazy();
        Ok(Self { channel, keys })
    }

    async fn open_stream(&self) -> Result<(GrpcStream, u64), SinkError> {
        let token = self
            .keys
            .mint(SOURCE, None, TOKEN_TTL, Some(PUBLISH_SCOPE))
            .expect("the service's own name is a valid user id");
        let authorization = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| SinkError::Protocol("the token is not a valid header value"))?;
        let (requests, outgoing) = mpsc::unbounded_channel();
        requests
            .send(PublishRequest {
                source: SOURCE.to_owned(),
                events: Vec::new(),
            })
            .map_err(|_| SinkError::Closed)?;
        let mut request = Request::new(UnboundedReceiverStream::new(outgoing));
        request.metadata_mut().insert("authorization", authorization);
        let mut client = EventIngestClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut responses = client.publish(request).await?.into_inner();
        match responses.message().await? {
            Some(PublishResponse {
                kind: Some(Kind::Resume(ResumePoint { last_applied_sequence })),
            }) => Ok((GrpcStream { requests, responses }, last_applied_sequence)),
            Some(PublishResponse {
                kind: Some(Kind::Ack(_)) | None,
            }) => Err(SinkError::Protocol("the first answer must be the resume point")),
            None => Err(SinkError::Closed),
        }
    }
}

impl EventSink for GrpcSink {
    type Stream = GrpcStream;

    async fn open(&mut self) -> Result<(GrpcStream, u64), SinkError> {
        tokio::time::timeout(HELLO_TIMEOUT, self.open_stream())
            .await
            .map_err(|_| SinkError::Timeout(HELLO_TIMEOUT))?
    }
}

/// An open Publish stream. Dropping it ends the request stream.
#[derive(Debug)]
pub struct GrpcStream {
    /// Unbounded: the publisher's window bounds what is queued.
    requests: mpsc::UnboundedSender<PublishRequest>,
    responses: Streaming<PublishResponse>,
}

impl EventStream for GrpcStream {
    fn send(&mut self, events: Vec<InvitationEvent>) -> Result<(), SinkError> {
        self.requests
            .send(PublishRequest {
                source: String::new(),
                events,
            })
            .map_err(|_| SinkError::Closed)
    }

    async fn next_ack(&mut self) -> Result<u64, SinkError> {
        match self.responses.message().await? {
            Some(PublishResponse {
                kind: Some(Kind::Ack(Ack { applied_through })),
            }) => Ok(applied_through),
            Some(PublishResponse {
                kind: Some(Kind::Resume(_)),
            }) => Err(SinkError::Protocol("a second resume point")),
            Some(PublishResponse { kind: None }) => Err(SinkError::Protocol("an empty answer")),
            None => Err(SinkError::Closed),
        }
    }
}
