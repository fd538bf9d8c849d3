//! A digest that fell due while notification-service was down fires once
//! after it restarts, late by no more than the downtime.

use std::time::{SystemTime, UNIX_EPOCH};

use e2e::{Pair, eventually, invitations, notifications};
use proto::notifications::v1::{self as npb, notification_update::Kind};

use crate::common::{WAIT, inbox, send};

fn millis(t: &prost_types::Timestamp) -> u128 {
    u128::try_from(t.seconds).unwrap_or(0) * 1000 + u128::try_from(t.nanos / 1_000_000).unwrap_or(0)
}

fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_due_during_downtime_fires_once_after_restart() {
    let mut pair = Pair::start(&[("NOTIFICATION_DIGEST_INTERVAL", "2s".into())], &[]);
    let mut alice = invitations(&pair.invitation, "alice");
    let id = send(&mut alice, "bob", "hello").await.expect("send");
    // The sender can see when Bob's digest is due.
    let alice_n = notifications(&pair.notification, "alice");
    let due = eventually(WAIT, || {
        let mut client = alice_n.clone();
        let id = id.clone();
        async move {
            let status = client
                .get_delivery_status(npb::GetDeliveryStatusRequest { invitation_id: id })
                .await
                .ok()?;
            status.into_inner().deliver_at
        }
    })
    .await;
    let due_ms = millis(&due);

    pair.notification.kill();
    // Stay down until the digest is overdue.
    eventually(WAIT, || async { (now_millis() > due_ms + 300).then_some(()) }).await;
    pair.notification.restart();

    let mut bob = notifications(&pair.notification, "bob");
    let delivered = eventually(WAIT, || {
        let mut bob = bob.clone();
        async move {
            let listed = inbox(&mut bob).await;
            (!listed.is_empty()).then_some(listed)
        }
    })
    .await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].invitation_ids, vec![id.clone()]);
    let created = millis(delivered[0].created_at.as_ref().expect("created_at"));
    assert!(
        created > due_ms + 300,
        "delivered after the restart, not before it was due"
    );

    // Exactly once: the update log holds one delivery of it, and it stays one.
    let mut stream = bob
        .subscribe(npb::SubscribeRequest { resume_after: Some(0) })
        .await
        .expect("subscribe")
        .into_inner();
    let first = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("replay")
        .expect("ok")
        .expect("open");
    assert!(matches!(first.kind, Some(Kind::Delivered(ref n)) if n.invitation_ids == vec![id.clone()]));
    pair.notification.terminate();
    pair.notification.restart();
    let mut bob = notifications(&pair.notification, "bob");
    assert_eq!(inbox(&mut bob).await.len(), 1, "a second restart fires nothing again");
    let unread = bob
        .get_unread_count(npb::GetUnreadCountRequest {})
        .await
        .expect("unread")
        .into_inner()
        .unread_count;
    assert_eq!(unread, 1);
}
