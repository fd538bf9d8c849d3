//! Rough figures for the stream between the services, on this machine:
//! catch-up rate (a backlog built while notification-service is down, then
//! applied after it starts) and send → delivered latency on a live stream.
//! Not a benchmark suite (that is `bench/`, still to come): one run, medians.
//!
//! `cargo build --release && cargo run --release -p e2e --example stream_figures`

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use e2e::{Pair, eventually, invitations, invitations_at, notifications};
use proto::{invitations::v1 as ipb, notifications::v1 as npb};

const BACKLOG: usize = 20_000;
const SAMPLES: usize = 300;
/// Warnings only, but the line the harness reads the address from.
const QUIET: &str = "warn,service_kit::server=info";

#[tokio::main]
async fn main() {
    let mut pair = Pair::start(
        &[("NOTIFICATION_UNDO_WINDOW", "0s".into()), ("RUST_LOG", QUIET.into())],
        &[
            ("RUST_LOG", QUIET.into()),
            ("INVITATION_WEEKLY_LIMIT", "1000000".into()),
        ],
    );

    // Catch-up: a backlog of sends while notification-service is down.
    pair.notification.kill();
    let next = Arc::new(AtomicUsize::new(0));
    let endpoint = pair.invitation.endpoint();
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (next, endpoint) = (next.clone(), endpoint.clone());
            tokio::spawn(async move {
                let mut last = None;
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= BACKLOG {
                        return last;
                    }
                    let mut client = invitations_at(&endpoint, &format!("s{n}"));
                    let request = ipb::SendInvitationRequest {
                        recipient_id: format!("r{}", n % 500),
                        message: "hi".into(),
                        idempotency_key: String::new(),
                    };
                    let id = client.send_invitation(request).await.expect("send").into_inner().id;
                    last = Some((n, id));
                }
            })
        })
        .collect();
    let mut last = (0, String::new());
    for task in tasks {
        if let Some(found) = task.await.expect("task")
            && found.0 >= last.0
        {
            last = found;
        }
    }
    let send_secs = started.elapsed().as_secs_f64();
    println!(
        "backlog: {BACKLOG} durable sends in {send_secs:.2} s ({:.0}/s, 64 concurrent clients)",
        BACKLOG as f64 / send_secs
    );

    let restart = Instant::now();
    pair.notification.restart();
    let (n, id) = last;
    let sender = notifications(&pair.notification, &format!("s{n}"));
    // Events apply in sequence order; the send with the highest number is
    // among the last few sequences, close enough for a rate.
    eventually(Duration::from_secs(300), || {
        let mut sender = sender.clone();
        let id = id.clone();
        async move {
            sender
                .get_delivery_status(npb::GetDeliveryStatusRequest { invitation_id: id })
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;
    let catch_up = restart.elapsed().as_secs_f64();
    println!(
        "catch-up: {BACKLOG} events applied in {catch_up:.2} s after restart ({:.0} events/s, including process start)",
        BACKLOG as f64 / catch_up
    );

    // Latency: send → delivered on the recipient's live stream.
    let mut bob = notifications(&pair.notification, "latency-bob");
    let topic = npb::TopicPreference {
        enabled: true,
        delivery: npb::Delivery::Immediate.into(),
        detail: npb::Detail::Full.into(),
    };
    bob.update_preferences(npb::UpdatePreferencesRequest {
        preferences: Some(npb::Preferences {
            invitation_received: Some(topic),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["invitation_received".into()],
        }),
    })
    .await
    .expect("preferences");
    let mut stream = bob
        .subscribe(npb::SubscribeRequest { resume_after: None })
        .await
        .expect("subscribe")
        .into_inner();
    let mut latencies = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let mut sender = invitations(&pair.invitation, &format!("latency-{i}"));
        let t = Instant::now();
        let request = ipb::SendInvitationRequest {
            recipient_id: "latency-bob".into(),
            message: String::new(),
            idempotency_key: String::new(),
        };
        sender.send_invitation(request).await.expect("send");
        stream.message().await.expect("stream").expect("update");
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    println!(
        "send → delivered ({SAMPLES} sequential sends, undo window 0): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
}
