//! A real `nats-server` with JetStream (Debian's `nats-server` package), on
//! a free loopback port with its store in a folder of its own, for tests of
//! `EVENT_TRANSPORT=jetstream`. Killed when dropped.

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// Whether the end-to-end tests run over JetStream (`E2E_TRANSPORT=jetstream`)
/// rather than the direct stream.
#[must_use]
pub fn jetstream_requested() -> bool {
    std::env::var("E2E_TRANSPORT").is_ok_and(|t| t == "jetstream")
}

/// Where `nats-server` is: `NATS_SERVER`, the PATH, or where Debian puts it.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.exists());
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    url: String,
    port: String,
    store: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server and waits until it takes clients.
    ///
    /// # Panics
    ///
    /// When `nats-server` is missing (install Debian's `nats-server`, or set
    /// `NATS_SERVER`) or does not start within 10 s.
    #[must_use]
    pub fn start() -> Self {
        let store = tempfile::tempdir().expect("a folder for JetStream");
        let (child, addr) = spawn(store.path(), "-1");
        let port = addr.rsplit(':').next().expect("host:port").to_owned();
        Self {
            child: Some(child),
            url: format!("nats://{addr}"),
            port,
            store,
        }
    }

    /// Kills the server (`kill -9`): clients see the connection drop.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the same store.
    ///
    /// # Panics
    ///
    /// When it does not start within 10 s.
    pub fn restart(&mut self) {
        self.kill();
        let (child, _) = spawn(self.store.path(), &self.port);
        self.child = Some(child);
    }
}

/// Starts `nats-server` on `port` (`-1`: any free one) with its JetStream
/// store in `store`; returns it and the address it listens on.
fn spawn(store: &std::path::Path, port: &str) -> (Child, String) {
    {
        let path = binary();
        let mut child = Command::new(&path)
            .args(["-a", "127.0.0.1", "-p", port, "-js", "-sd"])
            .arg(store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}): install Debian's nats-server, or set NATS_SERVER",
                    path.display()
                )
            });
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("Listening for client connections on ").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
                if std::env::var_os("E2E_LOG").is_some() {
                    eprintln!("[nats-server] {line}");
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("nats-server listens within 10 s");
        (child, addr)
    }
}

impl NatsServer {
    /// The server's process id, while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The environment that points both services at this server.
    #[must_use]
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("EVENT_TRANSPORT", "jetstream".to_owned()),
            ("NATS_URL", self.url.clone()),
        ]
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
