//! Start-up and shutdown. [`App::build`] opens storage and binds (port 0 is
//! fine) so the caller can read [`App::local_addr`]; [`App::run`] serves
//! until the shutdown future resolves, then drains and flushes. `main` and
//! the tests take the same path.

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc};

use proto::{
    invitations::v1::invitation_service_server::InvitationServiceServer, ops::v1::admin_server::AdminServer,
    service_names,
};
use service_kit::{
    admin::{ADMIN_SCOPE, AdminApi},
    auth::{Authenticator, JwtKeys},
    failstop::FailStop,
    limits::RateLimits,
    metrics::ServiceMetrics,
    server::{self as kit, MAX_MESSAGE_BYTES},
    storage::{OpenError, open_checked, spawn_checkpointer, write_final_checkpoint},
};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

use crate::{
    config::Config,
    domain::Clock,
    grpc::InvitationApi,
    metrics::PublisherLink,
    publisher::{self, GrpcSink, JetStreamSink},
    service::Invitations,
    storage::{self, Store},
};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Secret(String),
    #[error("data folder {} is in use by another process (is another invitation-service running on it?)", .0.display())]
    DataDirLocked(PathBuf),
    #[error("cannot use data folder {}: {error}", path.display())]
    DataDir { path: PathBuf, error: String },
    #[error("{}", service_kit::storage::damaged_message("invitation-service", path, problem))]
    DataDamaged { path: PathBuf, problem: String },
    #[error("invalid NOTIFICATION_ENDPOINT {endpoint:?}: {reason}")]
    NotificationEndpoint { endpoint: String, reason: String },
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("{0} (INVITATION_METRICS_ADDR; empty turns the endpoint off)")]
    Metrics(#[from] service_kit::metrics::BindError),
    #[error("cannot start: {0}")]
    Writer(crate::Error),
    #[error("server: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(
        "storage failed ({0}): stopped so that a restart recovers what is on disk; fix the cause (e.g. free disk space) and start again"
    )]
    StorageFailed(String),
}

/// A bound, ready-to-run invitation-service.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    invitations: Invitations,
    keys: Arc<JwtKeys>,
    sink: Sink,
    config: Config,
    metrics: ServiceMetrics,
    link: PublisherLink,
}

const SERVICES: &[&str] = &[service_names::INVITATION_SERVICE, service_names::ADMIN];

/// Where the outbox goes (`EVENT_TRANSPORT`).
#[derive(Debug)]
enum Sink {
    Grpc(GrpcSink),
    /// Boxed: it holds the stream's handle, far larger than a channel.
    JetStream(Box<JetStreamSink>),
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
        let grpc_sink = GrpcSink::new(&config.notification_endpoint, Arc::clone(&keys)).map_err(|reason| {
            StartError::NotificationEndpoint {
                endpoint: config.notification_endpoint.clone(),
                reason,
            }
        })?;
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
        let policy = &config.policy;
        if let Some(late) = policy.reminders.offsets().iter().find(|&&o| o >= policy.pending_ttl) {
            tracing::warn!(
                offset = %humantime::format_duration(*late),
                pending_ttl = %humantime::format_duration(policy.pending_ttl),
                "a reminder offset is not before INVITATION_PENDING_TTL: invitations expire first, so it never fires"
            );
        }
        let sink = match &config.jetstream {
            None => Sink::Grpc(grpc_sink),
            Some(settings) => Sink::JetStream(Box::new(JetStreamSink::new(settings.clone(), store.clone()))),
        };
        let invitations = Invitations::new(
            store,
            clock,
            config.policy.clone(),
            FailStop::for_folder(&config.data_dir),
        )
        .map_err(StartError::Writer)?;
        let link = PublisherLink::default();
        let mut metrics = ServiceMetrics::bind(config.metrics_addr).await?;
        crate::metrics::register(&mut metrics.registry, &invitations, &link);
        Ok(Self {
            listener,
            local_addr,
            invitations,
            keys,
            sink,
            config,
            metrics,
            link,
        })
    }

    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Tripped by the first storage fault; tests trip it by hand to see
    /// the service stop.
    #[must_use]
    pub fn fail_stop(&self) -> service_kit::failstop::FailStop {
        self.invitations.fail_stop().clone()
    }

    /// The open store (shared with the running server), for tests that
    /// watch the outbox.
    #[must_use]
    pub fn store(&self) -> &Store {
        self.invitations.store()
    }

    /// Serves, and publishes the outbox, until `shutdown` resolves; then
    /// reports NOT_SERVING, lets in-flight requests finish (at most
    /// `SHUTDOWN_GRACE`), stops the background tasks and flushes.
    ///
    /// # Errors
    ///
    /// When the server fails.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
        let Self {
            listener,
            local_addr: _,
            invitations,
            keys,
            sink,
            config,
            metrics,
            link,
        } = self;
        let grpc_metrics = metrics.grpc.clone();
        let metrics = metrics.serve();
        let (reporter, health) = kit::health(SERVICES).await;
        let (reflection_v1, reflection_v1alpha) = kit::reflection(SERVICES);
        let limits = RateLimits::new(config.rate);
        let housekeeping = limits.spawn_housekeeping();
        let api = InterceptedService::new(
            InvitationServiceServer::new(InvitationApi::new(invitations.clone(), limits.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            Authenticator::new(Arc::clone(&keys)),
        );
        let admin = InterceptedService::new(
            AdminServer::new(AdminApi::new(crate::grpc::Backups::new(invitations.clone()))),
            Authenticator::requiring_scope(keys, ADMIN_SCOPE),
        );

        let (stop_background, background_stopped) = tokio::sync::watch::channel(false);
        let sweeper = tokio::spawn(sweep(
            invitations.clone(),
            config.sweep_interval,
            background_stopped.clone(),
        ));
        let publisher = match sink {
            Sink::Grpc(sink) => tokio::spawn(publisher::run(
                sink,
                invitations.clone(),
                link,
                background_stopped.clone(),
            )),
            Sink::JetStream(sink) => tokio::spawn(publisher::run(
                *sink,
                invitations.clone(),
                link,
                background_stopped.clone(),
            )),
        };
        let pruner = tokio::spawn(publisher::prune_periodically(
            invitations.clone(),
            config.outbox_retention,
            config.outbox_prune_interval,
            background_stopped,
        ));

        let router = kit::server(config.max_streams_per_connection, grpc_metrics)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(api)
            .add_service(admin);
        // A storage fault stops the server as a signal would, then fails the run.
        let fail = invitations.fail_stop().clone();
        let stop = fail.or_tripped(shutdown);
        let checkpointer = {
            let invitations = invitations.clone();
            spawn_checkpointer(
                &config.data_dir,
                move || storage::figures(invitations.durable_through()),
                fail.clone(),
            )
        };
        let served = kit::serve(router, listener, reporter, SERVICES, stop, || {}).await;

        checkpointer.abort();
        housekeeping.abort();
        metrics.stop().await;
        let _ = stop_background.send(true);
        let _ = tokio::join!(sweeper, publisher, pruner);
        if !fail.is_tripped() {
            let store = invitations.store().clone();
            let flushed = tokio::task::spawn_blocking(move || store.flush().map_err(|e| e.to_string()))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            match flushed {
                Ok(()) => {
                    write_final_checkpoint(&config.data_dir, storage::figures(invitations.durable_through())).await
                }
                Err(e) => tracing::error!(error = %e, "final flush failed"),
            }
        }
        if fail.is_tripped() {
            // sled flushes when its last handle is dropped, and after some
            // faults (a blob write that ran out of space) that flush waits
            // forever: keep one handle; the process exits right after.
            std::mem::forget(invitations.store().clone());
        }
        served?;
        if let Some(reason) = fail.reason() {
            return Err(StartError::StorageFailed(reason.to_owned()));
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Expires due invitations and fires due reminders every `interval` until
/// told to stop.
async fn sweep(invitations: Invitations, interval: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        match invitations.sweep().await {
            Ok(crate::service::Swept {
                expired: 0,
                reminded: 0,
            }) => {}
            Ok(crate::service::Swept { expired, reminded }) => {
                tracing::info!(expired, reminded, "expired invitations and sent reminders");
            }
            Err(crate::Error::StorageFailed) => return,
            Err(e) => tracing::error!(error = %e, "expiry and reminder sweep failed"),
        }
    }
}
