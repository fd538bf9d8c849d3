//! Memory follows who is listening now, not everyone who ever listened:
//! users who subscribe and go away give back what their streams held.

use e2e::{Bearer, Kind, Service, token};
use proto::notifications::v1::{self as npb, notification_service_client::NotificationServiceClient};
use tonic::transport::Channel;

/// Resident memory of a process, from `/proc`.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process's status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a VmRSS line");
    kib * 1024
}

/// 2,000 new users subscribe and leave, five times over (the hostile run
/// that found the leak: notification-service grew about 16 KB per user, 32
/// MB a round, and never gave it back). Measured at each round's peak,
/// with all 2,000 streams open, memory stays level after the first round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_who_subscribe_and_leave_give_their_memory_back() {
    const USERS: usize = 2000;
    const ROUNDS: usize = 5;
    // 100 streams a connection, within the server's limit of 200.
    const CONNECTIONS: usize = USERS / 100;
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(Kind::Notification, dir.path(), &[]);
    let pid = service.pid().expect("running");
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(
            Channel::from_shared(service.endpoint())
                .unwrap()
                .connect()
                .await
                .expect("connects"),
        );
    }
    let mut peaks = Vec::new();
    for round in 0..ROUNDS {
        let mut streams = Vec::with_capacity(USERS);
        for i in 0..USERS {
            let channel = channels[i % CONNECTIONS].clone();
            let mut client =
                NotificationServiceClient::with_interceptor(channel, Bearer::new(token(&format!("u{round}-{i}"))));
            let stream = client
                .subscribe(npb::SubscribeRequest { resume_after: None })
                .await
                .unwrap_or_else(|s| panic!("round {round}, user {i}: {s:?}"))
                .into_inner();
            streams.push(stream);
        }
        peaks.push(rss_bytes(pid));
        drop(streams);
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let figures: Vec<String> = peaks.iter().map(|&b| format!("{:.1}", mib(b))).collect();
    eprintln!(
        "notification-service RSS at each round's peak (MiB): {}",
        figures.join(" → ")
    );
    let growth = peaks[ROUNDS - 1].saturating_sub(peaks[1]);
    assert!(
        growth < 12 * 1024 * 1024,
        "memory grew by {:.1} MiB over {} rounds of {USERS} new users: {figures:?}",
        mib(growth),
        ROUNDS - 2
    );
}
