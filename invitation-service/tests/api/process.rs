//! Out-of-process tests of the real binary, where the process boundary is
//! the point: `kill -9` right after OK replies, SIGTERM, start-up refusals,
//! and the `token` subcommand.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use proto::invitations::v1 as pb;
use service_kit::auth::JwtKeys;

use crate::helpers::{Client, SECRET, connect_as};

const BIN: &str = env!("CARGO_BIN_EXE_invitation-service");

/// The binary with a clean, explicit environment.
fn command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("JWT_SECRET", SECRET)
        .env("INVITATION_LISTEN_ADDR", "127.0.0.1:0")
        .env("INVITATION_DATA_DIR", data_dir)
        .env("INVITATION_METRICS_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A running server process and everything it has logged so far.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(data_dir: &Path) -> Self {
        let mut child = command(data_dir).spawn().expect("binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let found = log
                .lock()
                .unwrap()
                .lines()
                .find_map(|l| l.split("listening addr=").nth(1).map(|a| a.trim().to_owned()));
            if let Some(addr) = found {
                break addr.parse().expect("a socket address");
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("server exited with {status}: {}", log.lock().unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "server did not log its address: {}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self { child, addr, log }
    }

    async fn client(&self, user: &str) -> Client {
        connect_as(self.addr, user).await.1
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    fn wait_for_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "process still running after {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_invitation_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for sender in 0..8 {
        let mut client = server.client(&format!("sender-{sender}")).await;
        let acked = Arc::clone(&acked);
        senders.push(tokio::spawn(async move {
            for recipient in 0.. {
                let request = pb::SendInvitationRequest {
                    recipient_id: format!("recipient-{recipient}"),
                    message: format!("hello #{recipient}"),
                    idempotency_key: String::new(),
                };
                match client.send_invitation(request).await {
                    Ok(reply) => acked.lock().unwrap().push((sender, reply.into_inner().id)),
                    // The server is gone: whatever was not acknowledged may be lost.
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill while sends are in flight, once a good number were acknowledged.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 200 {
        assert!(Instant::now() < deadline, "too few sends acknowledged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap();
    server.wait_for_exit(Duration::from_secs(5));
    for task in senders {
        task.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let server = Server::start(dir.path());
    for sender in 0..8 {
        let mut client = server.client(&format!("sender-{sender}")).await;
        for (_, id) in acked.iter().filter(|(s, _)| *s == sender) {
            let inv = client
                .get_invitation(pb::GetInvitationRequest {
                    invitation_id: id.clone(),
                })
                .await
                .unwrap_or_else(|e| panic!("acknowledged invitation {id} lost after kill -9: {e}"))
                .into_inner();
            assert_eq!(inv.state(), pb::InvitationState::Pending);
        }
    }
    eprintln!(
        "figures: kill -9 of invitation-service right after OK replies: acknowledged={} lost=0",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_zero_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let mut alice = server.client("alice").await;
    let sent = alice
        .send_invitation(pb::SendInvitationRequest {
            recipient_id: "bob".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let started = Instant::now();
    server.signal("TERM");
    let status = server.wait_for_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}: {}", server.log.lock().unwrap());
    eprintln!("sigterm to exit: {:?}", started.elapsed());
    assert!(server.log.lock().unwrap().contains("received SIGTERM"));

    let server = Server::start(dir.path());
    let mut alice = server.client("alice").await;
    let again = alice
        .get_invitation(pb::GetInvitationRequest { invitation_id: sent.id })
        .await
        .unwrap();
    assert_eq!(again.into_inner().recipient_id, "bob");
}

#[test]
fn a_second_process_on_the_same_data_folder_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Server::start(dir.path());
    let output = command(dir.path()).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
}

#[test]
fn an_unusable_data_folder_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let output = command(&file).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot use data folder"), "{stderr}");
}

#[test]
fn without_a_secret_it_refuses_to_start_and_says_how_to_set_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path()).env_remove("JWT_SECRET").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("JWT_SECRET is not set") && stderr.contains("export JWT_SECRET="),
        "{stderr}"
    );

    let output = command(dir.path()).env("JWT_SECRET", "short").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("too short"));
}

#[test]
fn reminder_offsets_out_of_order_or_too_many_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |value: &str| {
        let output = command(dir.path()).env("INVITATION_REMINDERS", value).output().unwrap();
        assert!(!output.status.success(), "{value} was accepted");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = refused("14d,7d");
    assert!(
        stderr.contains("reminder offset 2 (7days) must be after the one before it"),
        "{stderr}"
    );
    let eleven: Vec<String> = (1..=11).map(|d| format!("{d}d")).collect();
    let stderr = refused(&eleven.join(","));
    assert!(stderr.contains("at most 10"), "{stderr}");
    let stderr = refused("weekly");
    assert!(stderr.contains("`weekly` is not a duration"), "{stderr}");
}

#[test]
fn token_prints_a_valid_token_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path())
        .args(["token", "--user", "alice", "--name", "Alice A."])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.strip_suffix('\n').expect("one line");
    assert!(!token.contains('\n'));
    let caller = JwtKeys::new(SECRET).unwrap().verify(token).expect("a valid token");
    assert_eq!(
        (caller.user_id.as_str(), caller.name.as_deref()),
        ("alice", Some("Alice A."))
    );

    for (args, says) in [
        (
            ["--user", "has space", "--name", "Has Space"],
            "invitation-service: --user must not contain whitespace (found U+0020)\n",
        ),
        (
            ["--user", "bo\u{200b}b", "--name", "Bob"],
            "invitation-service: --user must not contain control or invisible formatting characters (found U+200B)\n",
        ),
        (
            ["--user", "bob", "--name", "Bob\u{1b}[0m"],
            "invitation-service: --name must not contain control characters (found U+001B)\n",
        ),
    ] {
        let output = command(dir.path()).arg("token").args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&output.stderr), says);
    }
}

#[test]
fn healthcheck_exits_zero_for_a_serving_server_and_one_for_a_closed_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    // As in a container: the listen address is 0.0.0.0, checked on loopback,
    // and no secret is needed to ask.
    let listen = format!("0.0.0.0:{}", server.addr.port());
    let healthcheck = || {
        command(dir.path())
            .env_remove("JWT_SECRET")
            .env("INVITATION_LISTEN_ADDR", &listen)
            .arg("healthcheck")
            .output()
            .unwrap()
    };
    let output = healthcheck();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("127.0.0.1:{} is SERVING", server.addr.port())),
        "{stdout}"
    );

    server.child.kill().unwrap();
    server.wait_for_exit(Duration::from_secs(5));
    let output = healthcheck();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unhealthy: cannot connect"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}
