//! Starts the real server in-process (the same `App` path as `main`) on
//! port 0 with a temporary data folder and a clock the test moves, and hands
//! out typed clients that carry a user's token.

use std::{sync::Arc, time::Duration};

use invitation_service::{
    App, Config,
    domain::{ManualClock, Policy, Timestamp},
};
use proto::invitations::v1::invitation_service_client::InvitationServiceClient;
use service_kit::auth::JwtKeys;
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{
    Request, Status,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

pub(crate) const SECRET: &str = "integration-test-secret-0123456789";

/// 2026-01-01T00:00:00Z, where every test's clock starts.
pub(crate) const START: Timestamp = Timestamp::from_millis(1_767_225_600_000);

pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);

/// Adds `authorization: Bearer <token>` to every request, or nothing.
#[derive(Debug, Clone)]
pub(crate) struct Bearer(Option<String>);

impl Bearer {
    pub(crate) fn new(token: &str) -> Self {
        Self(Some(token.to_owned()))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        Ok(request)
    }
}

pub(crate) type Client = InvitationServiceClient<InterceptedService<Channel, Bearer>>;

/// A connection to a server the test started itself at `addr`, and a
/// client on it acting as `user`.
pub(crate) async fn connect_as(addr: std::net::SocketAddr, user: &str) -> (Channel, Client) {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = JwtKeys::new(SECRET)
        .unwrap()
        .mint(user, None, Duration::from_secs(600), None)
        .unwrap();
    let client = InvitationServiceClient::with_interceptor(channel.clone(), Bearer::new(&token));
    (channel, client)
}

/// A running server and what a test needs to drive it.
#[derive(Debug)]
pub(crate) struct TestApp {
    pub(crate) clock: ManualClock,
    pub(crate) keys: JwtKeys,
    pub(crate) channel: Channel,
    pub(crate) config: Config,
    pub(crate) data_dir: Arc<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Default policy, with the sweeper fast so expiry tests wait little.
pub(crate) fn test_config(data_dir: &std::path::Path, policy: Policy) -> Config {
    Config {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        notification_endpoint: "http://127.0.0.1:1".into(),
        jetstream: None,
        jwt_secret: SECRET.into(),
        policy,
        metrics_addr: None,
        sweep_interval: Duration::from_millis(20),
        outbox_retention: 7 * DAY,
        outbox_prune_interval: Duration::from_millis(20),
        // Tests call as fast as they can; the limits' own tests turn them on.
        rate: service_kit::limits::RateSettings::OFF,
        max_streams_per_connection: service_kit::server::DEFAULT_MAX_STREAMS_PER_CONNECTION,
    }
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(Policy::default()).await
}

pub(crate) async fn spawn_app_with(policy: Policy) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = test_config(dir.path(), policy);
    start(config, dir, ManualClock::starting_at(START)).await
}

pub(crate) async fn start(config: Config, data_dir: Arc<TempDir>, clock: ManualClock) -> TestApp {
    service_kit::telemetry::init_for_tests();
    // A server stopped a moment ago may still be releasing the folder's lock.
    let app = eventually(Duration::from_secs(5), || {
        let (config, clock) = (config.clone(), clock.clone());
        async move {
            match App::build(config, Arc::new(clock)).await {
                Ok(app) => Some(app),
                Err(invitation_service::StartError::DataDirLocked(_)) => None,
                Err(e) => panic!("server does not start: {e}"),
            }
        }
    })
    .await;
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connects");
    TestApp {
        clock,
        keys: JwtKeys::new(SECRET).unwrap(),
        channel,
        config,
        data_dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// A signed token for `user`.
    pub(crate) fn token(&self, user: &str) -> String {
        self.keys
            .mint(
                user,
                Some(&format!("{user} (display)")),
                Duration::from_secs(3600),
                None,
            )
            .unwrap_or_else(|e| panic!("no token for {user:?}: {e}"))
    }

    /// A client acting as `user`.
    pub(crate) fn client(&self, user: &str) -> Client {
        self.client_with_token(Some(self.token(user)))
    }

    /// A client sending `token` as it is (or no authorization header).
    pub(crate) fn client_with_token(&self, token: Option<String>) -> Client {
        InvitationServiceClient::with_interceptor(self.channel.clone(), Bearer(token))
    }

    /// Stops the server gracefully and waits for it.
    pub(crate) async fn stop(mut self) -> (Config, Arc<TempDir>, ManualClock) {
        self.shutdown_and_wait().await;
        (self.config.clone(), Arc::clone(&self.data_dir), self.clock.clone())
    }

    async fn shutdown_and_wait(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task ends cleanly");
        }
    }

    /// Stops the server and starts a new one on the same data folder and
    /// clock (a new port).
    pub(crate) async fn restart(self) -> TestApp {
        let (config, dir, clock) = self.stop().await;
        start(config, dir, clock).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Waits until `check` returns `Some`, polling, or panics after `timeout`.
pub(crate) async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Like [`spawn_app`], with the config changed by `adjust` (for example to
/// point the publisher at a test double); also returns the running server's
/// store, for tests that watch the outbox. Drop the store before restarting
/// on the same folder.
pub(crate) async fn spawn_app_with_config(
    adjust: impl FnOnce(&mut Config),
) -> (TestApp, invitation_service::storage::Store) {
    service_kit::telemetry::init_for_tests();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(dir.path(), Policy::default());
    adjust(&mut config);
    let clock = ManualClock::starting_at(START);
    let app = App::build(config.clone(), Arc::new(clock.clone()))
        .await
        .expect("server starts");
    let store = app.store().clone();
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connects");
    let app = TestApp {
        clock,
        keys: JwtKeys::new(SECRET).unwrap(),
        channel,
        config,
        data_dir: dir,
        shutdown: Some(tx),
        server: Some(server),
    };
    (app, store)
}
