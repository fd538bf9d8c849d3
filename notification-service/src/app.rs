//! Start-up and shutdown: [`App::build`] opens storage and binds (port 0 is
//! fine); [`App::run`] serves until the shutdown future resolves, ends live
//! streams with a resume hint, drains, and flushes. `main` and the tests take
//! the same path.

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc};

use proto::{
    notifications::v1::{
        event_ingest_server::EventIngestServer, notification_service_server::NotificationServiceServer,
    },
    ops::v1::admin_server::AdminServer,
    service_names,
};
use service_kit::{
    admin::{ADMIN_SCOPE, AdminApi},
    auth::{Authenticator, JwtKeys, PUBLISH_SCOPE},
    failstop::FailStop,
    limits::RateLimits,
    metrics::ServiceMetrics,
    server::{self as kit, MAX_MESSAGE_BYTES},
    storage::{OpenError, open_checked, spawn_checkpointer, write_final_checkpoint},
};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

use crate::{
    channels::ChannelMetrics,
    config::Config,
    domain::{Clock, Settings},
    grpc::NotificationApi,
    ingest::Ingest,
    service::Notifier,
    storage::Store,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Secret(String),
    #[error("data folder {} is in use by another process (is another notification-service running on it?)", .0.display())]
    DataDirLocked(PathBuf),
    #[error("cannot use data folder {}: {error}", path.display())]
    DataDir { path: PathBuf, error: String },
    #[error("{}", service_kit::storage::damaged_message("notification-service", path, problem))]
    DataDamaged { path: PathBuf, problem: String },
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("{0} (NOTIFICATION_METRICS_ADDR; empty turns the endpoint off)")]
    Metrics(#[from] service_kit::metrics::BindError),
    #[error("server: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(
        "storage failed ({0}): stopped so that a restart recovers what is on disk; fix the cause (e.g. free disk space) and start again"
    )]
    StorageFailed(String),
}

const SERVICES: &[&str] = &[
    service_names::NOTIFICATION_SERVICE,
    service_names::EVENT_INGEST,
    service_names::ADMIN,
];

#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    notifier: Notifier,
    keys: Arc<JwtKeys>,
    config: Config,
    metrics: ServiceMetrics,
    channel_metrics: ChannelMetrics,
}

impl App {
    /// Opens storage and binds the listener.
    ///
    /// # Errors
    ///
    /// A weak secret, an unusable data folder, or an address that cannot be
    /// bound.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let keys = Arc::new(JwtKeys::new(&config.jwt_secret).map_err(|e| StartError::Secret(e.to_string()))?);
        let store = open_checked(config.data_dir.clone(), Store::open, Store::durable_figures)
            .await
            .map_err(|e| match e {
                OpenError::Locked => StartError::DataDirLocked(config.data_dir.clone()),
                OpenError::Damaged(problem) => StartError::DataDamaged {
                    path: config.data_dir.clone(),
                    problem,
                },
                OpenError::Sled(e) => StartError::DataDir {
                    path: config.data_dir.clone(),
                    error: e.to_string(),
                },
            })?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|e| StartError::Bind(config.listen_addr, e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(config.listen_addr, e))?;
        let settings = Settings {
            undo_window: config.undo_window,
            default_digest_interval: config.digest_interval,
            channels: config.channels.available(),
            max_immediate_per_hour: config.max_immediate_per_hour,
        };
        let notifier = Notifier::new(store, clock, settings, FailStop::for_folder(&config.data_dir));
        let mut metrics = ServiceMetrics::bind(config.metrics_addr).await?;
        crate::metrics::register(&mut metrics.registry, &notifier);
        let channel_metrics = ChannelMetrics::register(&mut metrics.registry);
        Ok(Self {
            channel_metrics,
            listener,
            local_addr,
            notifier,
            keys,
            config,
            metrics,
        })
    }

    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The live fan-out, for tests that look at what it holds.
    #[must_use]
    pub fn hub(&self) -> Arc<crate::hub::Hub> {
        Arc::clone(self.notifier.hub())
    }

    /// Serves until `shutdown` resolves, then drains and flushes.
    ///
    /// # Errors
    ///
    /// When the server fails.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
        let Self {
            listener,
            local_addr: _,
            notifier,
            keys,
            config,
            metrics,
            channel_metrics,
        } = self;
        let grpc_metrics = metrics.grpc.clone();
        let metrics = metrics.serve();
        let (reporter, health) = kit::health(SERVICES).await;
        let (reflection_v1, reflection_v1alpha) = kit::reflection(SERVICES);
        let limits = RateLimits::new(config.rate);
        let housekeeping = limits.spawn_housekeeping();
        let api = InterceptedService::new(
            NotificationServiceServer::new(NotificationApi::new(notifier.clone(), limits))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            Authenticator::new(Arc::clone(&keys)),
        );
        let ingest = InterceptedService::new(
            EventIngestServer::new(Ingest::new(notifier.clone()))
                .max_decoding_message_size(4 * 1024 * 1024)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            Authenticator::requiring_scope(Arc::clone(&keys), PUBLISH_SCOPE),
        );
        let admin = InterceptedService::new(
            AdminServer::new(AdminApi::new(crate::grpc::Backups::new(notifier.clone()))),
            Authenticator::requiring_scope(keys, ADMIN_SCOPE),
        );

        let (stop_timers, timers_stopped) = tokio::sync::watch::channel(false);
        let senders = crate::channels::spawn(
            &notifier,
            &config.channels,
            &channel_metrics,
            config.timer_tick,
            &timers_stopped,
        );
        let consumer = config
            .jetstream
            .clone()
            .map(|settings| tokio::spawn(crate::consume::run(notifier.clone(), settings, timers_stopped.clone())));
        let timers = tokio::spawn(crate::timers::run(notifier.clone(), config.timer_tick, timers_stopped));

        let router = kit::server(config.max_streams_per_connection, grpc_metrics)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(api)
            .add_service(ingest)
            .add_service(admin);
        let hub = Arc::clone(notifier.hub());
        // A storage fault stops the server as a signal would, then fails the run.
        let fail = notifier.fail_stop().clone();
        let stop = fail.or_tripped(shutdown);
        let checkpointer = {
            let notifier = notifier.clone();
            spawn_checkpointer(&config.data_dir, move || notifier.durable_figures(), fail.clone())
        };
        let served = kit::serve(router, listener, reporter, SERVICES, stop, move || hub.close()).await;

        checkpointer.abort();
        housekeeping.abort();
        metrics.stop().await;
        let _ = stop_timers.send(true);
        let _ = timers.await;
        if let Some(consumer) = consumer {
            let _ = consumer.await;
        }
        for sender in senders {
            let _ = sender.await;
        }
        if fail.is_tripped() {
            // sled flushes when its last handle is dropped, and after some
            // faults (a blob write that ran out of space) that flush waits
            // forever: keep one handle; the process exits right after.
            std::mem::forget(notifier.store().clone());
        }
        served?;
        if let Some(reason) = fail.reason() {
            return Err(StartError::StorageFailed(reason.to_owned()));
        }
        let store = notifier.store().clone();
        let flushed = tokio::task::spawn_blocking(move || store.flush().map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match flushed {
            Ok(()) => write_final_checkpoint(&config.data_dir, notifier.durable_figures()).await,
            Err(e) => tracing::error!(error = %e, "final flush failed"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}
