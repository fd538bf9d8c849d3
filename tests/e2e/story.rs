//! The product's story across both services: a quick withdrawal leaves no
//! trace; a later one is retracted live and in the inbox.

use e2e::{Pair, invitations, notifications};
use proto::notifications::v1::{self as npb, notification_update::Kind};

use crate::common::{immediate, inbox, next_update, send, unread, withdraw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_inside_the_undo_window_leaves_no_trace_and_a_later_one_is_retracted() {
    let pair = Pair::start(
        &[
            ("NOTIFICATION_UNDO_WINDOW", "2s".into()),
            ("NOTIFICATION_TIMER_TICK", "20ms".into()),
        ],
        &[],
    );
    let mut bob = notifications(&pair.notification, "bob");
    immediate(&mut bob, npb::Detail::Full).await;
    let mut stream = bob
        .subscribe(npb::SubscribeRequest { resume_after: None })
        .await
        .expect("subscribe")
        .into_inner();

    // Alice sends by mistake and withdraws at once.
    let mut alice = invitations(&pair.invitation, "alice");
    let mistake = send(&mut alice, "bob", "oops").await.expect("send");
    withdraw(&mut alice, &mistake).await;
    // Carol's invitation, sent after, is due after Alice's would have been:
    // the first thing Bob hears of must be Carol's.
    let mut carol = invitations(&pair.invitation, "carol");
    let carols = send(&mut carol, "bob", "hello from Carol").await.expect("send");
    let first = next_update(&mut stream).await;
    let Some(Kind::Delivered(notification)) = first.kind else {
        panic!("expected a delivery, got {first:?}")
    };
    assert_eq!(notification.invitation_ids, vec![carols.clone()]);
    assert_eq!(notification.actor_id, "carol");
    let listed = inbox(&mut bob).await;
    assert_eq!(listed.len(), 1, "only Carol's notification: {listed:?}");
    assert!(listed.iter().all(|n| !n.invitation_ids.contains(&mistake)));
    assert_eq!(unread(&mut bob).await, 1);

    // Dave's invitation is delivered, then withdrawn: it is retracted live
    // and from the inbox.
    let mut dave = invitations(&pair.invitation, "dave");
    let daves = send(&mut dave, "bob", "hi").await.expect("send");
    let delivered = next_update(&mut stream).await;
    let Some(Kind::Delivered(dave_notification)) = delivered.kind else {
        panic!("expected a delivery")
    };
    assert_eq!(dave_notification.invitation_ids, vec![daves.clone()]);
    assert_eq!(unread(&mut bob).await, 2);
    withdraw(&mut dave, &daves).await;
    let retraction = next_update(&mut stream).await;
    let Some(Kind::Retracted(retracted)) = retraction.kind else {
        panic!("expected a retraction, got {retraction:?}")
    };
    assert_eq!(retracted.notification_ids, vec![dave_notification.id.clone()]);
    assert!(retraction.cursor > delivered.cursor);
    let listed = inbox(&mut bob).await;
    assert_eq!(
        listed.iter().map(|n| n.invitation_ids.clone()).collect::<Vec<_>>(),
        vec![vec![carols]]
    );
    assert_eq!(unread(&mut bob).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minimal_recipient_never_learns_who_invited_them() {
    let pair = Pair::start(&[("NOTIFICATION_UNDO_WINDOW", "0s".into())], &[]);
    let mut bob = notifications(&pair.notification, "bob");
    immediate(&mut bob, npb::Detail::Minimal).await;
    let mut stream = bob
        .subscribe(npb::SubscribeRequest { resume_after: None })
        .await
        .expect("subscribe")
        .into_inner();
    let mut alice = invitations(&pair.invitation, "alice");
    send(&mut alice, "bob", "a very personal note").await.expect("send");
    let update = next_update(&mut stream).await;
    let Some(Kind::Delivered(n)) = update.kind else {
        panic!("expected a delivery")
    };
    assert!(n.actor_id.is_empty() && n.actor_name.is_empty());
    for text in [&n.title, &n.body] {
        assert!(!text.contains("alice") && !text.contains("personal"), "{text}");
    }
}
