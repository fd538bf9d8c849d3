//! A harness for end-to-end tests: starts the two service binaries as real
//! processes on loopback (port 0, their own data folders), restarts and
//! kills them, and hands out clients that carry a user's token.
//!
//! The binaries are the ones `cargo test --workspace` builds next to the
//! test executable (both service crates have integration tests, so cargo
//! builds their binaries), or the ones beside a program in `target/<profile>`
//! that uses this harness (the `bench` binary); `E2E_BIN_DIR` overrides the
//! folder.

#![forbid(unsafe_code)]

pub mod inbox;
pub mod nats;
pub mod sinks;

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use proto::{
    invitations::v1::invitation_service_client::InvitationServiceClient,
    notifications::v1::notification_service_client::NotificationServiceClient,
};
use service_kit::auth::JwtKeys;
use tonic::{
    Request, Status,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

pub const SECRET: &str = "end-to-end-test-secret-0123456789";

/// Which binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invitation,
    Notification,
}

impl Kind {
    fn binary(self) -> &'static str {
        match self {
            Self::Invitation => "invitation-service",
            Self::Notification => "notification-service",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Invitation => "INVITATION",
            Self::Notification => "NOTIFICATION",
        }
    }
}

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("E2E_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let own = exe.parent().expect("executable folder");
    // A program in target/<profile> has the binaries beside it.
    if own.join(Kind::Invitation.binary()).exists() {
        return own.to_path_buf();
    }
    // target/<profile>/deps/e2e-<hash> → target/<profile>
    own.parent().expect("target folder").to_path_buf()
}

/// A service process and everything it has logged.
#[derive(Debug)]
pub struct Service {
    kind: Kind,
    child: Option<Child>,
    addr: SocketAddr,
    data_dir: PathBuf,
    env: Vec<(String, String)>,
    log: Arc<Mutex<String>>,
}

impl Service {
    /// Starts `kind` on 127.0.0.1:0 with `data_dir` and extra environment.
    #[must_use]
    pub fn start(kind: Kind, data_dir: &Path, env: &[(&str, String)]) -> Self {
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let mut service = Self {
            kind,
            child: None,
            addr: "127.0.0.1:0".parse().expect("address"),
            data_dir: data_dir.to_path_buf(),
            env,
            log: Arc::new(Mutex::new(String::new())),
        };
        service.spawn("127.0.0.1:0");
        service
    }

    fn spawn(&mut self, listen: &str) {
        let path = bin_dir().join(self.kind.binary());
        assert!(
            path.exists(),
            "{} not found: run `cargo test --workspace` (which builds both binaries) or set E2E_BIN_DIR",
            path.display()
        );
        let prefix = self.kind.prefix();
        let mut cmd = Command::new(&path);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("JWT_SECRET", SECRET)
            .env(format!("{prefix}_LISTEN_ADDR"), listen)
            .env(format!("{prefix}_DATA_DIR"), &self.data_dir)
            // Many services run at once: each serves /metrics on a port of
            // its own, which `metrics_addr` reads from the log.
            .env(format!("{prefix}_METRICS_ADDR"), "127.0.0.1:0")
            .env("RUST_LOG", std::env::var("E2E_LOG").unwrap_or_else(|_| "info".into()))
            // Tests and the bench tell one user more than 20 things an hour;
            // a test of the throttle sets its own limit.
            .env("NOTIFICATION_MAX_IMMEDIATE_PER_HOUR", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let echo = std::env::var_os("E2E_LOG").is_some();
        let name = self.kind.binary();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("[{name}] {line}");
                }
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let found = log
                .lock()
                .expect("log lock")
                .lines()
                .find_map(|l| l.split("listening addr=").nth(1).map(|a| a.trim().to_owned()));
            if let Some(addr) = found {
                break addr.parse().expect("a socket address");
            }
            if let Some(status) = child.try_wait().expect("wait") {
                panic!(
                    "{} exited with {status}: {}",
                    self.kind.binary(),
                    log.lock().expect("log lock")
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start: {}",
                self.kind.binary(),
                log.lock().expect("log lock")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.addr = addr;
        self.log = log;
        self.child = Some(child);
    }

    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it serves `/metrics`, as its log says.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.log()
            .lines()
            .rev()
            .find_map(|l| l.split("serving metrics on /metrics addr=").nth(1))
            .and_then(|a| a.trim().parse().ok())
    }

    /// The process id while it runs (for reading its CPU time and memory).
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The data folder (for measuring what the service writes).
    #[must_use]
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    #[must_use]
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// `kill -9`: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop after SIGTERM",
                self.kind.binary()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for the process to exit by itself, without
    /// signalling it: its status, or `None` while it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the process again on the same port and data folder (a
    /// stopped, killed or exited one).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        let listen = self.addr.to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The old process's port or folder lock may take a moment to free.
            let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.spawn(&listen)));
            match attempt {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => std::panic::resume_unwind(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Both services, wired together, each with its own data folder: by the
/// direct stream, or, when `E2E_TRANSPORT=jetstream`, through a
/// `nats-server` of their own.
#[derive(Debug)]
pub struct Pair {
    pub notification: Service,
    pub invitation: Service,
    pub nats: Option<nats::NatsServer>,
    _dirs: Option<tempfile::TempDir>,
}

impl Pair {
    /// Starts notification-service, then invitation-service pointed at it.
    /// `notification_env` and `invitation_env` add to each one's environment.
    #[must_use]
    pub fn start(notification_env: &[(&str, String)], invitation_env: &[(&str, String)]) -> Self {
        let dirs = tempfile::tempdir().expect("temp dir");
        let mut pair = Self::start_in(
            &dirs.path().join("notification"),
            &dirs.path().join("invitation"),
            notification_env,
            invitation_env,
        );
        pair._dirs = Some(dirs);
        pair
    }

    /// Like [`Pair::start`], with the data folders where the caller puts
    /// them (one on a small tmpfs, say); the caller keeps them.
    #[must_use]
    pub fn start_in(
        notification_dir: &Path,
        invitation_dir: &Path,
        notification_env: &[(&str, String)],
        invitation_env: &[(&str, String)],
    ) -> Self {
        let nats = nats::jetstream_requested().then(nats::NatsServer::start);
        let transport = nats.as_ref().map(nats::NatsServer::env).unwrap_or_default();
        let mut env = transport.clone();
        env.extend(notification_env.iter().cloned());
        let notification = Service::start(Kind::Notification, notification_dir, &env);
        let mut env = transport;
        env.push(("NOTIFICATION_ENDPOINT", notification.endpoint()));
        env.extend(invitation_env.iter().cloned());
        let invitation = Service::start(Kind::Invitation, invitation_dir, &env);
        Self {
            notification,
            invitation,
            nats,
            _dirs: None,
        }
    }
}

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Debug, Clone)]
pub struct Bearer(String);

impl Bearer {
    /// Sends `token` with every request.
    #[must_use]
    pub fn new(token: String) -> Self {
        Self(token)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let value = format!("Bearer {}", self.0)
            .parse()
            .map_err(|_| Status::internal("token header"))?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

pub type Invitations = InvitationServiceClient<InterceptedService<Channel, Bearer>>;
pub type Notifications = NotificationServiceClient<InterceptedService<Channel, Bearer>>;

/// A token for `user`.
#[must_use]
pub fn token(user: &str) -> String {
    JwtKeys::new(SECRET)
        .expect("secret")
        .mint(user, Some(&format!("{user} (name)")), Duration::from_secs(3600), None)
        .expect("a valid user id and name")
}

fn channel(endpoint: &str) -> Channel {
    Channel::from_shared(endpoint.to_owned())
        .expect("endpoint")
        .connect_lazy()
}

/// An invitation-service client acting as `user`.
#[must_use]
pub fn invitations(service: &Service, user: &str) -> Invitations {
    invitations_at(&service.endpoint(), user)
}

/// An invitation-service client at `endpoint` acting as `user`.
#[must_use]
pub fn invitations_at(endpoint: &str, user: &str) -> Invitations {
    InvitationServiceClient::with_interceptor(channel(endpoint), Bearer(token(user)))
}

/// A notification-service client acting as `user`.
#[must_use]
pub fn notifications(service: &Service, user: &str) -> Notifications {
    NotificationServiceClient::with_interceptor(channel(&service.endpoint()), Bearer(token(user)))
}

/// Waits until `check` returns `Some`, polling, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `kind`'s binary once with `args` and the test secret, its data
/// folder `data_dir` and port 0, and waits up to `timeout` for it to exit;
/// `None` when it was still running (it is then killed). For start-ups
/// that must fail, and for subcommands such as `verify`.
#[must_use]
pub fn run_to_exit(kind: Kind, data_dir: &Path, args: &[&str], timeout: Duration) -> Option<std::process::Output> {
    let prefix = kind.prefix();
    let mut child = Command::new(bin_dir().join(kind.binary()))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("JWT_SECRET", SECRET)
        .env(format!("{prefix}_LISTEN_ADDR"), "127.0.0.1:0")
        .env(format!("{prefix}_DATA_DIR"), data_dir)
        .env(format!("{prefix}_METRICS_ADDR"), "")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().expect("output"))
}
