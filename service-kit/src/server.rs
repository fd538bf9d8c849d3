//! Server start-up and shutdown pieces both services use: reflection (v1 and
//! v1alpha, since grpcurl 1.8 speaks only v1alpha), health that starts
//! NOT_SERVING, and the shutdown signal.

use std::time::Duration;

use tonic::{
    Code, Status,
    body::Body,
    codegen::http,
    transport::server::{Router as TonicRouter, Server},
};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::{
    layer::util::{Identity, Stack},
    util::MapResponseLayer,
};

use crate::metrics::{GrpcMetrics, GrpcMetricsLayer};

/// How long in-flight requests may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The largest request or reply message either service accepts or sends.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Concurrent streams (calls) one HTTP/2 connection may hold, by default.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 200;

type ResponseFix = MapResponseLayer<fn(http::Response<Body>) -> http::Response<Body>>;

/// The response fix inside, the metrics around it (so they count the
/// status the client gets).
type Layers = Stack<ResponseFix, Stack<GrpcMetricsLayer, Identity>>;

/// The server both services build, with [`server`]'s limits and fixes.
pub type Builder = Server<Layers>;

/// A [`Builder`] with its services added.
pub type Router = TonicRouter<Layers>;

/// Every service either binary may serve, as encoded descriptor sets: the
/// contract, health and reflection (for the per-method metrics).
pub const DESCRIPTOR_SETS: [&[u8]; 4] = [
    proto::FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

/// A server whose connections each hold at most `max_streams_per_connection`
/// concurrent calls: advertised to clients as HTTP/2's
/// SETTINGS_MAX_CONCURRENT_STREAMS (a well-behaved client queues beyond
/// it, the server refuses extra streams from one that does not) and
/// enforced again per connection. Requests over the message limit get
/// RESOURCE_EXHAUSTED, as gRPC's status guide says, not tonic's OUT_OF_RANGE.
/// Every call is counted in `metrics`.
#[must_use]
pub fn server(max_streams_per_connection: u32, metrics: GrpcMetrics) -> Builder {
    let fix: fn(http::Response<Body>) -> http::Response<Body> = too_large_is_resource_exhausted;
    Server::builder()
        .max_concurrent_streams(max_streams_per_connection)
        .concurrency_limit_per_connection(usize::try_from(max_streams_per_connection).unwrap_or(usize::MAX))
        .layer(GrpcMetricsLayer::new(metrics))
        .layer(MapResponseLayer::new(fix))
}

/// tonic refuses a request message over the limit before any handler runs,
/// with OUT_OF_RANGE in a headers-only reply; make it RESOURCE_EXHAUSTED
/// with a message a person can act on.
fn too_large_is_resource_exhausted(mut response: http::Response<Body>) -> http::Response<Body> {
    const TONIC_SAYS: &str = "Error, decoded message length too large: found ";
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    if status.code() != Code::OutOfRange {
        return response;
    }
    let Some(figures) = status.message().strip_prefix(TONIC_SAYS) else {
        return response;
    };
    // "{len} bytes, the limit is: {limit} bytes"
    let mut numbers = figures.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty());
    let (Some(found), Some(limit)) = (numbers.next(), numbers.next()) else {
        return response;
    };
    let replacement = Status::resource_exhausted(format!(
        "the request message is {found} bytes, over this service's limit of {limit} bytes"
    ));
    if replacement.add_header(response.headers_mut()).is_err() {
        tracing::warn!("cannot rewrite the status of an oversized request");
    }
    response
}

/// Reflection services, v1 and v1alpha, listing `services` (the ones this
/// binary serves), health and reflection itself.
///
/// # Panics
///
/// If the compiled-in descriptor sets do not decode, which the `proto`
/// crate's tests rule out.
#[must_use]
pub fn reflection(
    services: &[&str],
) -> (
    tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
    tonic_reflection::server::v1alpha::ServerReflectionServer<impl tonic_reflection::server::v1alpha::ServerReflection>,
) {
    let builder = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // So that clients such as grpcurl can decode our error details.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET);
        for name in services.iter().copied().chain([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]) {
            builder = builder.with_service_name(name);
        }
        builder
    };
    let v1 = builder().build_v1().expect("descriptor sets decode");
    let v1alpha = builder().build_v1alpha().expect("descriptor sets decode");
    (v1, v1alpha)
}

/// A health reporter whose overall status and every named service start
/// NOT_SERVING, and the health service to serve.
pub async fn health(
    services: &[&str],
) -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, service) = tonic_health::server::health_reporter();
    set_status(&reporter, services, ServingStatus::NotServing).await;
    (reporter, service)
}

/// Sets the overall status ("") and each named service's status.
pub async fn set_status(reporter: &HealthReporter, services: &[&str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for service in services {
        reporter.set_service_status(*service, status).await;
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT, shutting down"),
        () = terminate => tracing::info!("received SIGTERM, shutting down"),
    }
}

/// Serves `router` on `listener`, reporting SERVING for `services`, until
/// `shutdown` resolves. Then reports NOT_SERVING, calls `on_shutdown` (to end
/// long-lived streams), and lets in-flight requests finish for at most
/// [`SHUTDOWN_GRACE`].
///
/// # Errors
///
/// When the server fails.
pub async fn serve(
    router: Router,
    listener: tokio::net::TcpListener,
    reporter: HealthReporter,
    services: &'static [&'static str],
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_shutdown: impl FnOnce() + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let local_addr = listener.local_addr().ok();
    let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
    let signal_reporter = reporter.clone();
    let signal = async move {
        shutdown.await;
        set_status(&signal_reporter, services, ServingStatus::NotServing).await;
        on_shutdown();
        tracing::info!("draining in-flight requests");
        let _ = draining_tx.send(());
    };
    // Small replies and stream messages must not wait for Nagle's algorithm.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = router.serve_with_incoming_shutdown(incoming, signal);
    set_status(&reporter, services, ServingStatus::Serving).await;
    if let Some(addr) = local_addr {
        tracing::info!(%addr, "listening");
    }
    let grace = async {
        if draining_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = grace => {
            tracing::warn!("grace period over, closing remaining connections");
            Ok(())
        }
    }
}

/// Prints `<name>: <message>` on stderr and returns the failure exit code.
#[must_use]
pub fn fail(name: &str, message: &str) -> std::process::ExitCode {
    eprintln!("{name}: {message}");
    std::process::ExitCode::FAILURE
}

/// Runs a service binary: telemetry, a multi-threaded runtime, and `serve`
/// (which builds the app and runs it until [`shutdown_signal`]). An error is
/// printed as `<name>: <message>` with exit code 1.
pub fn run_main<Fut>(name: &str, serve: impl FnOnce() -> Fut) -> std::process::ExitCode
where
    Fut: std::future::Future<Output = Result<(), String>>,
{
    crate::telemetry::init("info");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(name, &format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(serve()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => fail(name, &message),
    }
}
