//! The transport baseline: a bare tonic server whose one RPC answers each
//! `SendInvitationRequest` with itself. No auth, no storage, no logging: what
//! it costs is what tonic, HTTP/2 and the loopback cost. It runs as its own
//! process (`bench echo-server`), like the services.

use std::net::SocketAddr;

use proto::invitations::v1::SendInvitationRequest;
use tonic::{Request, Response, Status};

/// Generated code; lints that do not fit generated code are relaxed here only.
#[allow(
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    clippy::wildcard_enum_match_arm,
    rust_2018_idioms
)]
pub(crate) mod pb {
    tonic::include_proto!("bench.v1");
}

pub(crate) use pb::echo_client::EchoClient;

#[derive(Debug, Default)]
struct Echo;

#[tonic::async_trait]
impl pb::echo_server::Echo for Echo {
    async fn echo(&self, request: Request<SendInvitationRequest>) -> Result<Response<SendInvitationRequest>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// Serves the echo service on `listen` until killed, after writing
/// `listening addr=<addr>` to stderr (the line the harness waits for).
///
/// # Errors
///
/// When the address cannot be bound or the server fails.
pub(crate) async fn serve(listen: SocketAddr) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // The same accept settings as the services (service_kit::server::serve).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    eprintln!("listening addr={addr}");
    tonic::transport::Server::builder()
        .add_service(pb::echo_server::EchoServer::new(Echo))
        .serve_with_incoming(incoming)
        .await
        .map_err(|e| e.to_string())
}
