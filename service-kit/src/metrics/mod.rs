//! Prometheus metrics: the registry each service fills, the per-RPC
//! [`grpc`] metrics, storage's own (flush latency, faults), figures read
//! when scraped ([`Sampler`]), and the `/metrics` HTTP endpoint serving them
//! in the OpenMetrics text format.

mod grpc;

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{
        MetricType,
        counter::{ConstCounter, Counter},
        gauge::ConstGauge,
        histogram::Histogram,
    },
    registry::Registry,
};

pub use grpc::{GrpcMetrics, GrpcMetricsLayer, Metered};

/// What `/metrics` answers with: Prometheus asks for OpenMetrics first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Flush latencies span a page-cache write (sub-millisecond) to a slow
/// disk's sync (seconds).
const FLUSH_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5];

/// What storage measures itself, wherever it is used in the process.
#[derive(Debug)]
pub struct StorageMetrics {
    /// How long making writes durable takes (sled's flush and fdatasync).
    pub flush_seconds: Histogram,
    /// Storage faults reported (each one; the first stops the service).
    pub faults: Counter,
}

/// The process's storage metrics.
pub fn storage() -> &'static StorageMetrics {
    static STORAGE: OnceLock<StorageMetrics> = OnceLock::new();
    STORAGE.get_or_init(|| StorageMetrics {
        flush_seconds: Histogram::new(FLUSH_BUCKETS),
        faults: Counter::default(),
    })
}

/// Registers [`storage`]'s metrics in `registry`.
pub fn register_storage(registry: &mut Registry) {
    let storage = storage();
    registry.register(
        "storage_flush_seconds",
        "How long making writes durable took (sled flush and fdatasync), in seconds.",
        storage.flush_seconds.clone(),
    );
    registry.register(
        "storage_faults",
        "Storage faults (failed writes, flushes or reads); the first one stops the service for a restart.",
        storage.faults.clone(),
    );
}

/// One figure read at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    Gauge {
        name: &'static str,
        help: &'static str,
        value: f64,
    },
    Counter {
        name: &'static str,
        help: &'static str,
        value: u64,
    },
    /// One gauge per value of one label (e.g. per channel).
    GaugeBy {
        name: &'static str,
        help: &'static str,
        label: &'static str,
        values: Vec<(&'static str, f64)>,
    },
}

type Read = dyn Fn() -> Vec<Sample> + Send + Sync;

/// Figures read from the service each time Prometheus scrapes (a queue's
/// length, a live count), rather than kept up to date on every change.
pub struct Sampler {
    read: Box<Read>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler").finish_non_exhaustive()
    }
}

impl Sampler {
    /// Registers `read` in `registry`, to be called on every scrape.
    pub fn register(registry: &mut Registry, read: impl Fn() -> Vec<Sample> + Send + Sync + 'static) {
        registry.register_collector(Box::new(Self { read: Box::new(read) }));
    }
}

impl Collector for Sampler {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for sample in (self.read)() {
            match sample {
                Sample::Gauge { name, help, value } => {
                    let gauge = ConstGauge::new(value);
                    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
                }
                Sample::Counter { name, help, value } => {
                    let counter = ConstCounter::new(value);
                    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
                }
                Sample::GaugeBy {
                    name,
                    help,
                    label,
                    values,
                } => {
                    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                    for (value_of_label, value) in values {
                        let labels = [(label, value_of_label)];
                        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The metrics endpoint's address cannot be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// What one service exposes: the registry it fills at start-up, which
/// already holds the per-RPC and the storage metrics, and where it serves
/// them.
#[derive(Debug)]
pub struct ServiceMetrics {
    pub registry: Registry,
    /// For [`crate::server::server`].
    pub grpc: GrpcMetrics,
    listener: Option<tokio::net::TcpListener>,
}

impl ServiceMetrics {
    /// The registry with the per-RPC and storage metrics, and the endpoint
    /// bound on `addr` (none for `None`).
    ///
    /// # Errors
    ///
    /// When `addr` cannot be bound.
    pub async fn bind(addr: Option<SocketAddr>) -> Result<Self, BindError> {
        let mut registry = Registry::default();
        let grpc = GrpcMetrics::register(&mut registry, &crate::server::DESCRIPTOR_SETS);
        register_storage(&mut registry);
        let listener = match addr {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| BindError { addr, source })?,
            ),
            None => None,
        };
        Ok(Self {
            registry,
            grpc,
            listener,
        })
    }

    /// Serves `/metrics` (when bound) until [`MetricsServer::stop`].
    #[must_use]
    pub fn serve(self) -> MetricsServer {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let registry = Arc::new(self.registry);
        let task = self.listener.map(|listener| {
            tokio::spawn(async move {
                let shutdown = async {
                    let _ = stopped.await;
                };
                if let Err(e) = serve(listener, registry, shutdown).await {
                    tracing::error!(error = %e, "the metrics endpoint failed");
                }
            })
        });
        MetricsServer { stop, task }
    }
}

/// A running metrics endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl MetricsServer {
    /// Stops serving and waits until it has.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

/// `registry` in the OpenMetrics text format.
#[must_use]
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail, nor can our collectors.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::error!(error = %e, "cannot encode the metrics");
    }
    text
}

/// Serves `GET /metrics` from `registry` on `listener` until `shutdown`.
///
/// # Errors
///
/// When the server fails.
async fn serve(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::{http::header, routing::get};
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                // Sampled figures may read storage: off the async workers.
                let text = tokio::task::spawn_blocking(move || render(&registry))
                    .await
                    .unwrap_or_default();
                ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
            }
        }),
    );
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving metrics on /metrics");
    }
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_figures_are_read_at_each_scrape() {
        let mut registry = Registry::default();
        let length = Arc::new(std::sync::atomic::AtomicU64::new(3));
        let read = length.clone();
        Sampler::register(&mut registry, move || {
            vec![
                Sample::Gauge {
                    name: "queue_length",
                    help: "Entries waiting.",
                    value: read.load(std::sync::atomic::Ordering::Relaxed) as f64,
                },
                Sample::Counter {
                    name: "events_applied",
                    help: "Events applied.",
                    value: 9,
                },
            ]
        });
        let first = render(&registry);
        assert!(
            first.contains("# TYPE queue_length gauge\nqueue_length 3.0\n"),
            "{first}"
        );
        assert!(first.contains("events_applied_total 9\n"), "{first}");
        assert!(first.ends_with("# EOF\n"), "{first}");
        length.store(5, std::sync::atomic::Ordering::Relaxed);
        assert!(render(&registry).contains("queue_length 5.0\n"));
    }
}
