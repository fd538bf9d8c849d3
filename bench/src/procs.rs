//! The processes under test. The two services start through the end-to-end
//! harness (`e2e::Service`/`e2e::Pair`: the release binaries beside this one,
//! port 0, the `listening addr=` line); the echo baseline is this binary's
//! hidden `echo-server` subcommand, started the same way. Every server is
//! pinned to the server cores when pinning is on.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    panic::AssertUnwindSafe,
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use e2e::{Kind, Pair, Service};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::sys;

/// How the servers are started: their cores, their log filter.
#[derive(Debug, Clone)]
pub(crate) struct Servers {
    /// taskset CPU list for server processes; `None` leaves them unpinned.
    pub(crate) cpus: Option<String>,
    /// `RUST_LOG` for the services.
    pub(crate) log: String,
}

impl Servers {
    /// Pins `pid` to the server cores (when pinning is on).
    pub(crate) fn pin(&self, pid: Option<u32>) {
        if let (Some(cpus), Some(pid)) = (&self.cpus, pid)
            && let Err(e) = sys::pin(Some(pid), cpus)
        {
            eprintln!("warning: {e}");
        }
    }

    fn env<'a>(&self, extra: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
        let mut env = vec![("RUST_LOG", self.log.clone())];
        // The load comes from a few users at thousands of calls a second:
        // the per-user rate limits would measure themselves, not the server.
        for limit in [
            "INVITATION_READS_PER_SECOND",
            "INVITATION_WRITES_PER_SECOND",
            "NOTIFICATION_READS_PER_SECOND",
            "NOTIFICATION_WRITES_PER_SECOND",
        ] {
            env.push((limit, "0".to_owned()));
        }
        env.extend(extra.iter().cloned());
        env
    }

    /// Both services, wired together, pinned.
    ///
    /// # Errors
    ///
    /// When either does not start.
    pub(crate) async fn pair(
        &self,
        notification_env: &[(&'static str, String)],
        invitation_env: &[(&'static str, String)],
    ) -> Result<Pair, String> {
        let (n, i) = (self.env(notification_env), self.env(invitation_env));
        let pair = blocking("starting the services", move || Pair::start(&n, &i)).await?;
        self.pin(pair.notification.pid());
        self.pin(pair.invitation.pid());
        // Over JetStream the NATS server is a server too.
        self.pin(pair.nats.as_ref().and_then(e2e::nats::NatsServer::pid));
        wait_serving(&pair.notification.endpoint(), Duration::from_secs(30)).await?;
        wait_serving(&pair.invitation.endpoint(), Duration::from_secs(30)).await?;
        Ok(pair)
    }

    /// One service on `data_dir`, pinned, once it reports SERVING. Returns it
    /// with the time from spawning the process to SERVING.
    ///
    /// # Errors
    ///
    /// When it does not start.
    pub(crate) async fn service(
        &self,
        kind: Kind,
        data_dir: &Path,
        env: &[(&'static str, String)],
    ) -> Result<(Service, Duration), String> {
        let env = self.env(env);
        let dir = data_dir.to_path_buf();
        let started = Instant::now();
        let service = blocking("starting a service", move || Service::start(kind, &dir, &env)).await?;
        self.pin(service.pid());
        wait_serving(&service.endpoint(), Duration::from_secs(60)).await?;
        Ok((service, started.elapsed()))
    }

    /// Starts a stopped service again (same port and folder), pinned; returns
    /// its pid and the time from spawning to SERVING.
    ///
    /// # Errors
    ///
    /// When it does not start.
    pub(crate) async fn restart(&self, service: &mut Service) -> Result<(Option<u32>, Duration), String> {
        let started = Instant::now();
        tokio::task::block_in_place(|| std::panic::catch_unwind(AssertUnwindSafe(|| service.restart())))
            .map_err(|panic| format!("restarting a service: {}", panic_message(panic.as_ref())))?;
        self.pin(service.pid());
        wait_serving(&service.endpoint(), Duration::from_secs(60)).await?;
        Ok((service.pid(), started.elapsed()))
    }

    /// The echo baseline as its own process, pinned.
    ///
    /// # Errors
    ///
    /// When it does not start.
    pub(crate) fn echo(&self) -> Result<EchoProcess, String> {
        let echo = EchoProcess::start()?;
        self.pin(Some(echo.pid()));
        Ok(echo)
    }
}

/// Runs harness code (which blocks, and panics on failure) off the async
/// workers, turning a panic into an error.
async fn blocking<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        let reason = e
            .try_into_panic()
            .map_or_else(|_| "task failed".to_owned(), |p| panic_message(p.as_ref()));
        format!("{what}: {reason}")
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panicked".to_owned())
}

/// Polls the gRPC health check until the server reports SERVING.
///
/// # Errors
///
/// When it does not within `timeout`.
pub(crate) async fn wait_serving(endpoint: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let channel = Channel::from_shared(endpoint.to_owned())
        .map_err(|e| e.to_string())?
        .connect_lazy();
    let mut health = HealthClient::new(channel);
    loop {
        let status = health
            .check(HealthCheckRequest { service: String::new() })
            .await
            .map(|r| r.into_inner().status);
        if status.is_ok_and(|s| s == ServingStatus::Serving as i32) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{endpoint} did not report SERVING within {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The echo server process; killed when dropped.
#[derive(Debug)]
pub(crate) struct EchoProcess {
    child: Child,
    addr: SocketAddr,
}

impl EchoProcess {
    fn start() -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        let mut child = Command::new(exe)
            .args(["echo-server", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the echo server: {e}"))?;
        let stderr = child.stderr.take().ok_or("echo server stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening addr=").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                } else {
                    eprintln!("[echo-server] {line}");
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the echo server did not start".to_owned())?
            .parse()
            .map_err(|e| format!("echo server address: {e}"))?;
        Ok(Self { child, addr })
    }

    #[must_use]
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    #[must_use]
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    #[must_use]
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EchoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
