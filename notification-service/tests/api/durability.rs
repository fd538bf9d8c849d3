//! Restarts: what fell due while the server was down fires once, late by no
//! more than the downtime; the resume point and the update log survive; live
//! streams are told where to resume.

use tonic::Code;

use crate::helpers::{DIGEST, MINUTE, PATIENCE, at, delivered, invitation, spawn_app, well_formed_id};

#[tokio::test]
async fn a_digest_due_while_the_server_is_down_fires_once_after_restart() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    let a = invitation(&well_formed_id("inv-a"), "alice", "bob");
    publisher
        .publish([a.sent(), invitation("inv-b", "carol", "bob").sent()])
        .await;
    drop(publisher);
    let stopped = app.stop().await;
    stopped.clock.advance(DIGEST + MINUTE);
    let app = stopped.start().await;

    let [digest] = &app.wait_for_inbox("bob", 1).await[..] else {
        unreachable!("waited for one")
    };
    assert_eq!(digest.item_count, 2);
    assert_eq!(digest.created_at, at(DIGEST + MINUTE), "late by the downtime only");
    assert_eq!(app.delivery_status("alice", &a.id).await, (true, None));

    // The log holds one delivery; the next update is the canary's.
    let mut replay = app.subscribe("bob", Some(0)).await;
    let first = replay.next().await;
    assert_eq!((first.cursor, delivered(&first)), (1, digest));
    let mut publisher = app.publisher().await;
    assert_eq!(publisher.resume, 2, "the resume point survives a restart");
    let canary = app.first_update_is_a_canary(&mut publisher, "bob", &mut replay).await;
    assert_eq!(canary.cursor, 2);
    drop((publisher, replay));

    // Nor does a second restart fire it again.
    let app = app.restart().await;
    let mut publisher = app.publisher().await;
    assert_eq!(publisher.resume, 4);
    app.advance_settled(&mut publisher, DIGEST).await;
    assert_eq!(app.inbox("bob").await.len(), 2);
    assert_eq!(app.unread("bob").await, 2);
}

#[tokio::test]
async fn live_streams_are_told_where_to_resume_when_the_server_stops() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    let mut stream = app.subscribe("bob", None).await;
    app.first_update_is_a_canary(&mut publisher, "bob", &mut stream).await;
    drop(publisher);

    let stopping = tokio::spawn(app.stop());
    let status = stream.next_result().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("resume_after=1"), "{}", status.message());
    let app = stopping.await.unwrap().start().await;

    let mut resumed = app.subscribe("bob", Some(1)).await;
    let mut publisher = app.publisher().await;
    let next = app.first_update_is_a_canary(&mut publisher, "bob", &mut resumed).await;
    assert_eq!(next.cursor, 2);
}

/// invitation-service keeps its publish stream open all the time, so a
/// shutdown must end that stream as it ends the `Subscribe` streams.
#[tokio::test]
async fn a_connected_publisher_does_not_hold_up_shutdown() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    publisher.publish([invitation("inv-a", "alice", "bob").sent()]).await;
    let stopped = tokio::time::timeout(PATIENCE, app.stop())
        .await
        .expect("the server stops well within its shutdown grace");
    let ended = publisher.send(vec![invitation("inv-b", "alice", "bob").sent()]).await;
    assert!(ended.is_err(), "the publish stream was ended: {ended:?}");
    assert_eq!(stopped.start().await.publisher().await.resume, 1);
}
