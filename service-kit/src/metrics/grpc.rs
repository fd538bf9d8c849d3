//! Per-RPC metrics under the names grpc-ecosystem's go-grpc-prometheus made
//! standard, so existing dashboards and alerts work unchanged:
//! `grpc_server_started_total`, `grpc_server_handled_total` and the
//! `grpc_server_handling_seconds` histogram, labelled `grpc_type`,
//! `grpc_service`, `grpc_method` (and `grpc_code` once handled). A call is
//! handled when its status is sent: at once for a reply without a body, at
//! the trailers otherwise (a stream's end), or as `Canceled` when the
//! client goes away first.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, ready},
    time::Instant,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use prost::Message as _;
use tonic::{Code, Status, body::Body, codegen::http};

/// go-grpc-prometheus's (and Prometheus's) default buckets, in seconds.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_type: &'static str,
    grpc_service: Arc<str>,
    grpc_method: Arc<str>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_type: &'static str,
    grpc_service: Arc<str>,
    grpc_method: Arc<str>,
    grpc_code: &'static str,
}

type HistogramFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

/// The per-RPC counters and histogram; cheap to clone (they are shared).
#[derive(Debug, Clone)]
pub struct GrpcMetrics {
    /// Every method this server may serve, by path, with its series made
    /// at start-up: a call costs one lookup, no label hashing, and a
    /// client cannot grow the label sets with made-up paths.
    methods: Arc<HashMap<String, Arc<Method>>>,
}

/// One method's series.
#[derive(Debug)]
struct Method {
    labels: MethodLabels,
    started: Counter,
    handling: Histogram,
    handled: Family<HandledLabels, Counter>,
    /// `handled`'s series for each code, made when first used.
    by_code: [OnceLock<Counter>; 17],
}

impl Method {
    fn handled(&self, code: Code) -> &Counter {
        let slot = usize::try_from(code as i32).unwrap_or(usize::from(Code::Unknown as u8));
        self.by_code[slot.min(16)].get_or_init(|| {
            let MethodLabels {
                grpc_type,
                grpc_service,
                grpc_method,
            } = self.labels.clone();
            self.handled
                .get_or_create(&HandledLabels {
                    grpc_type,
                    grpc_service,
                    grpc_method,
                    grpc_code: code_name(code),
                })
                .clone()
        })
    }
}

impl GrpcMetrics {
    /// Registers the three families in `registry`, for the methods of every
    /// service in the encoded `FileDescriptorSet`s `descriptor_sets`; every
    /// method starts at zero, so a rate over a quiet method reads 0, not
    /// nothing.
    ///
    /// # Panics
    ///
    /// If a descriptor set does not decode (they are compiled in).
    pub fn register(registry: &mut Registry, descriptor_sets: &[&[u8]]) -> Self {
        let started = Family::<MethodLabels, Counter>::default();
        let handled = Family::<HandledLabels, Counter>::default();
        let handling: HistogramFamily = Family::new_with_constructor(|| Histogram::new(BUCKETS));
        let methods = methods(descriptor_sets)
            .into_iter()
            .map(|(path, labels)| {
                let method = Method {
                    started: started.get_or_create(&labels).clone(),
                    handling: handling.get_or_create(&labels).clone(),
                    handled: handled.clone(),
                    by_code: std::array::from_fn(|_| OnceLock::new()),
                    labels,
                };
                (path, Arc::new(method))
            })
            .collect();
        registry.register(
            "grpc_server_started",
            "Total number of RPCs started on the server.",
            started,
        );
        registry.register(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            handled,
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
            handling,
        );
        Self {
            methods: Arc::new(methods),
        }
    }

    /// A call to `path` starting now, counted as started; `None` for a path
    /// no service here has.
    fn start(&self, path: &str) -> Option<Call> {
        let method = Arc::clone(self.methods.get(path)?);
        method.started.inc();
        Some(Call {
            method,
            started: Instant::now(),
            done: false,
        })
    }
}

/// Every method of every service in the descriptor sets, by its request
/// path `/package.Service/Method`, with its labels.
fn methods(descriptor_sets: &[&[u8]]) -> HashMap<String, MethodLabels> {
    let mut methods = HashMap::new();
    for bytes in descriptor_sets {
        let set = prost_types::FileDescriptorSet::decode(*bytes).expect("compiled-in descriptor sets decode");
        for file in set.file {
            let package = file.package();
            for service in &file.service {
                let service_name: Arc<str> = if package.is_empty() {
                    service.name().into()
                } else {
                    format!("{package}.{}", service.name()).into()
                };
                for method in &service.method {
                    let grpc_type = match (method.client_streaming(), method.server_streaming()) {
                        (false, false) => "unary",
                        (false, true) => "server_stream",
                        (true, false) => "client_stream",
                        (true, true) => "bidi_stream",
                    };
                    methods.insert(
                        format!("/{service_name}/{}", method.name()),
                        MethodLabels {
                            grpc_type,
                            grpc_service: service_name.clone(),
                            grpc_method: method.name().into(),
                        },
                    );
                }
            }
        }
    }
    methods
}

/// The name go-grpc-prometheus (Go's `codes.Code.String()`) gives a code.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// One call being served: counted as handled exactly once.
#[derive(Debug)]
struct Call {
    method: Arc<Method>,
    started: Instant,
    done: bool,
}

impl Call {
    /// Counts the call as handled with `code`; a refusal or failure is also
    /// logged, at info level, so that refused requests leave a trace at the
    /// default level (messages never hold tokens or the text sent).
    fn finish(&mut self, code: Code, message: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let labels = &self.method.labels;
        if code == Code::Cancelled {
            tracing::debug!(
                rpc = %labels.grpc_method,
                service = %labels.grpc_service,
                "call cancelled by the client"
            );
        } else if code != Code::Ok {
            tracing::info!(
                rpc = %labels.grpc_method,
                service = %labels.grpc_service,
                code = code_name(code),
                message,
                "request refused"
            );
        }
        self.method.handling.observe(self.started.elapsed().as_secs_f64());
        self.method.handled(code).inc();
    }

    /// Follows `response` to its status: in its headers (a reply without a
    /// body), or in the trailers at the end of its body.
    fn follow(mut self, response: http::Response<Body>) -> http::Response<Body> {
        if let Some(status) = Status::from_header_map(response.headers()) {
            self.finish(status.code(), status.message());
            return response;
        }
        response.map(|inner| Body::new(Followed { inner, call: self }))
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The body was dropped before its trailers: the client went away
        // (or the server closed the connection) mid-call.
        self.finish(Code::Cancelled, "");
    }
}

/// A response body that reports its call's status when the trailers pass.
#[derive(Debug)]
struct Followed {
    inner: Body,
    call: Call,
}

impl http_body::Body for Followed {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref() {
                    match Status::from_header_map(trailers) {
                        Some(status) => self.call.finish(status.code(), status.message()),
                        None => self.call.finish(Code::Unknown, "trailers without a status"),
                    }
                }
            }
            Some(Err(status)) => self.call.finish(status.code(), status.message()),
            None => self.call.finish(Code::Unknown, "the reply ended without a status"),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The tower layer that counts every call the server serves.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer {
    metrics: GrpcMetrics,
}

impl GrpcMetricsLayer {
    #[must_use]
    pub fn new(metrics: GrpcMetrics) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metered {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A service counted by [`GrpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
    metrics: GrpcMetrics,
}

impl<S, B> tower::Service<http::Request<B>> for Metered<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = self.metrics.start(request.uri().path());
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(match call {
                Some(call) => call.follow(response),
                None => response,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_of_the_contract_is_known_with_its_type() {
        let methods = methods(&[proto::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET]);
        let send = &methods["/invitations.v1.InvitationService/SendInvitation"];
        assert_eq!(
            (send.grpc_type, &*send.grpc_service, &*send.grpc_method),
            ("unary", "invitations.v1.InvitationService", "SendInvitation")
        );
        assert_eq!(
            methods["/notifications.v1.NotificationService/Subscribe"].grpc_type,
            "server_stream"
        );
        assert_eq!(methods["/grpc.health.v1.Health/Watch"].grpc_type, "server_stream");
        assert!(!methods.contains_key("/made.up/Path"));
    }

    #[test]
    fn codes_are_named_as_go_grpc_prometheus_names_them() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::Cancelled), "Canceled");
        assert_eq!(code_name(Code::ResourceExhausted), "ResourceExhausted");
    }
}
