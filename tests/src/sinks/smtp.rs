//! The `smtp_sink` binary as a child process: started on port 0, killed
//! with SIGKILL, restarted on the port it had, its folder read back as
//! parsed messages.

use std::{
    fs, io,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{Mail, write_atomically};

const BINARY: &str = "smtp_sink";
/// How long a start may take before the test fails.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// A running (or killed) `smtp_sink` and its folder: `port`, `reply`,
/// `mail/NNNNNN.eml` and `smtp_sink.log` (what it printed).
#[derive(Debug)]
pub struct SmtpSink {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl SmtpSink {
    /// Starts the sink on 127.0.0.1:0 keeping its mail in `dir` (created
    /// when missing), and waits until it accepts connections.
    #[must_use]
    pub fn start(dir: &Path) -> Self {
        let mut sink = Self {
            child: None,
            dir: dir.to_path_buf(),
            port: 0,
        };
        if let Err(e) = sink.spawn("127.0.0.1:0") {
            panic!("{BINARY} did not start: {e}");
        }
        sink
    }

    /// Where a client sends mail: `smtp://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `kill -9`, then reaps it: the port refuses connections afterwards.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
    }

    /// Starts it again on the same port and folder (killing it first if it
    /// still runs); the numbering of kept mail goes on.
    pub fn restart(&mut self) {
        self.kill();
        let listen = format!("127.0.0.1:{}", self.port);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            // The port may take a moment to be free again.
            match self.spawn(&listen) {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => panic!("{BINARY} did not restart on {listen}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// From now on, MAIL FROM and the end of DATA are answered with `code`
    /// (a 4xx or 5xx) and nothing is kept; `None` accepts mail again.
    pub fn set_reply(&self, code: Option<u16>) {
        let path = self.dir.join("reply");
        match code {
            Some(code) => write_atomically(&path, code.to_string().as_bytes()).expect("write the reply file"),
            None => match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => panic!("cannot remove {}: {e}", path.display()),
            },
        }
    }

    /// Every message kept so far, oldest first.
    #[must_use]
    pub fn mails(&self) -> Vec<Mail> {
        let folder = self.dir.join("mail");
        let mut files: Vec<PathBuf> = match fs::read_dir(&folder) {
            Ok(entries) => entries
                .map(|entry| entry.expect("a folder entry").path())
                .filter(|path| {
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(".eml") && !n.starts_with('.'))
                })
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("cannot list {}: {e}", folder.display()),
        };
        // Zero-padded numbers: the names sort in the order of arrival.
        files.sort();
        files
            .into_iter()
            .map(|file| {
                let bytes = fs::read(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
                Mail::parse(file, &bytes)
            })
            .collect()
    }

    /// What the sink printed (errors only).
    #[must_use]
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("smtp_sink.log")).unwrap_or_default()
    }

    fn spawn(&mut self, listen: &str) -> Result<(), String> {
        let path = crate::bin_dir().join(BINARY);
        assert!(
            path.exists(),
            "{} not found: `cargo test -p e2e` builds it (for any integration test), as does \
             `cargo build -p e2e --bins`; or set E2E_BIN_DIR",
            path.display()
        );
        fs::create_dir_all(&self.dir).map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let port_file = self.dir.join("port");
        // The file of an earlier run would name the right port too early.
        match fs::remove_file(&port_file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", port_file.display())),
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("smtp_sink.log"))
            .map_err(|e| format!("cannot open its log: {e}"))?;
        let mut child = Command::new(&path)
            .arg("--listen")
            .arg(listen)
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(text) = fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse()
            {
                self.port = port;
                self.child = Some(child);
                return Ok(());
            }
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("it exited with {status}: {}", self.log()));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no port file within {START_DEADLINE:?}: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
