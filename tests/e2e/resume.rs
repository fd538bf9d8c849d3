//! A stream resumed from a cursor misses nothing and repeats nothing, also
//! across a restart of notification-service.

use e2e::{Pair, invitations, notifications};
use proto::notifications::v1 as npb;

use crate::common::{immediate, next_update, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_stream_misses_nothing_and_repeats_nothing() {
    let mut pair = Pair::start(&[("NOTIFICATION_UNDO_WINDOW", "0s".into())], &[]);
    let mut bob = notifications(&pair.notification, "bob");
    immediate(&mut bob, npb::Detail::Full).await;
    let mut stream = bob
        .subscribe(npb::SubscribeRequest { resume_after: None })
        .await
        .expect("subscribe")
        .into_inner();
    for i in 0..5 {
        let mut sender = invitations(&pair.invitation, &format!("early-{i}"));
        send(&mut sender, "bob", "").await.expect("send");
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next_update(&mut stream).await.cursor);
    }
    drop(stream);
    let resume_from = *seen.last().expect("three updates");

    for i in 0..5 {
        let mut sender = invitations(&pair.invitation, &format!("late-{i}"));
        send(&mut sender, "bob", "").await.expect("send");
    }
    // Restart notification-service in between: the log is durable.
    pair.notification.terminate();
    pair.notification.restart();
    let mut bob = notifications(&pair.notification, "bob");
    let mut stream = bob
        .subscribe(npb::SubscribeRequest {
            resume_after: Some(resume_from),
        })
        .await
        .expect("resume")
        .into_inner();
    let mut resumed = Vec::new();
    for _ in 0..7 {
        resumed.push(next_update(&mut stream).await.cursor);
    }
    let expected: Vec<u64> = (resume_from + 1..=resume_from + 7).collect();
    assert_eq!(resumed, expected, "every update after the cursor, once, in order");

    // And the stream goes on live.
    let mut sender = invitations(&pair.invitation, "live");
    send(&mut sender, "bob", "").await.expect("send");
    assert_eq!(next_update(&mut stream).await.cursor, resume_from + 8);
}
