//! `Subscribe`: several streams per user, resuming from a cursor without
//! gaps or repeats, cursors out of range, slow subscribers cut off with a
//! resume hint, and the cap on streams per user.

use std::time::Duration;

use notification_service::hub::{MAX_STREAMS_PER_USER, STREAM_BUFFER};
use proto::notifications::v1 as pb;
use tonic::Code;

use crate::helpers::{
    PATIENCE, Publisher, TestApp, UNDO, Updates, delivered, eventually, invitation, retracted, spawn_app,
    spawn_app_with,
};

/// A server that delivers new invitations to `user` at once (no undo
/// window, IMMEDIATE), so each Sent is one update.
async fn spawn_instant(user: &str) -> TestApp {
    let app = spawn_app_with(|config| config.undo_window = Duration::ZERO).await;
    app.receive_immediately(user).await;
    app
}

/// `n` Sent events to `user`, with invitation ids `inv-<first>`, ….
fn sents(user: &str, first: u64, n: u64) -> Vec<proto::invitations::v1::InvitationEvent> {
    (first..first + n)
        .map(|i| invitation(&format!("inv-{i}"), &format!("sender-{i}"), user).sent())
        .collect()
}

/// Publishes `total` Sent events from alice to bob, in batches of 100,
/// with large notes: large updates, so the transport holds few of them and
/// the stream's own buffer is what overflows.
async fn publish_large(publisher: &mut Publisher, total: u64) {
    const BATCH: u64 = 100;
    let note = "n".repeat(4000);
    for first in (1..=total).step_by(usize::try_from(BATCH).unwrap()) {
        let events = (first..first + BATCH).map(|i| {
            invitation(&format!("inv-{i}"), "alice", "bob")
                .with_message(&note)
                .sent()
        });
        publisher.publish(events).await;
    }
}

/// Reads a stream until it ends with a status, checking there is no gap;
/// returns the last cursor read and the status.
async fn read_until_cut(stream: &mut Updates) -> (u64, tonic::Status) {
    let mut last = 0;
    loop {
        match stream.next_result().await {
            Ok(update) => {
                assert_eq!(update.cursor, last + 1, "no silent gap");
                last = update.cursor;
            }
            Err(status) => return (last, status),
        }
    }
}

/// Reads `n` updates and checks their cursors run on from `after` with no
/// gap and no repeat.
async fn read_run(stream: &mut Updates, after: u64, n: u64) -> Vec<pb::NotificationUpdate> {
    let mut updates = Vec::new();
    for expected in after + 1..=after + n {
        let update = stream.next().await;
        assert_eq!(update.cursor, expected, "cursors run on without gaps or repeats");
        updates.push(update);
    }
    updates
}

#[tokio::test]
async fn every_stream_of_a_user_gets_every_update() {
    let app = spawn_app().await;
    app.receive_immediately("bob").await;
    let mut publisher = app.publisher().await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(app.subscribe("bob", None).await);
    }
    let a = invitation("inv-a", "alice", "bob");
    publisher
        .publish([a.sent(), invitation("inv-b", "carol", "bob").sent()])
        .await;
    app.advance(UNDO);
    let mut first = Vec::new();
    for stream in &mut streams {
        first.push(read_run(stream, 0, 2).await);
    }
    publisher.publish([a.withdrawn("")]).await;

    let expected = &first[0];
    assert_eq!(delivered(&expected[0]).invitation_ids, ["inv-a"]);
    assert_eq!(delivered(&expected[1]).invitation_ids, ["inv-b"]);
    for (stream, seen) in streams.iter_mut().zip(&first) {
        assert_eq!(seen, expected, "each stream sees the same updates");
        let retraction = stream.next().await;
        assert_eq!(retraction.cursor, 3);
        assert_eq!(retracted(&retraction), [delivered(&expected[0]).id.clone()]);
    }
}

#[tokio::test]
async fn resume_after_replays_what_followed_then_goes_on_live() {
    let app = spawn_instant("bob").await;
    let mut publisher = app.publisher().await;
    let mut live = app.subscribe("bob", None).await;
    publisher.publish(sents("bob", 1, 5)).await;
    let original = read_run(&mut live, 0, 5).await;

    let mut resumed = app.subscribe("bob", Some(2)).await;
    let replayed = read_run(&mut resumed, 2, 3).await;
    assert_eq!(replayed, original[2..], "the replay is the updates as they were");
    publisher.publish(sents("bob", 6, 2)).await;
    let continued = read_run(&mut resumed, 5, 2).await;
    assert_eq!(continued, read_run(&mut live, 5, 2).await);
    resumed.assert_quiet().await;

    // From the start, and from the very last cursor (nothing to replay).
    let mut everything = app.subscribe("bob", Some(0)).await;
    read_run(&mut everything, 0, 7).await;
    let mut up_to_date = app.subscribe("bob", Some(7)).await;
    publisher.publish(sents("bob", 8, 1)).await;
    assert_eq!(up_to_date.next().await.cursor, 8);
    assert_eq!(everything.next().await.cursor, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_while_updates_flow_misses_and_repeats_nothing() {
    const TOTAL: u64 = 200;
    let app = spawn_instant("bob").await;
    let mut publisher = app.publisher().await;
    let producer = tokio::spawn(async move {
        for i in 1..=TOTAL {
            publisher.publish(sents("bob", i, 1)).await;
        }
        publisher
    });
    // Reconnect every few updates, from the last cursor seen, while the
    // producer goes on: the replay and the live updates must join exactly.
    let mut last = 0;
    let mut reconnects = 0;
    while last < TOTAL {
        let mut stream = app.subscribe("bob", Some(last)).await;
        reconnects += 1;
        let n = (TOTAL - last).min(7);
        last = read_run(&mut stream, last, n).await.last().unwrap().cursor;
    }
    assert!(reconnects > 10);
    let _publisher = producer.await.unwrap();
}

#[tokio::test]
async fn a_cursor_no_longer_kept_or_never_issued_is_out_of_range() {
    const KEPT: u64 = notification_service::storage::UPDATES_KEPT;
    let app = spawn_instant("bob").await;
    let mut publisher = app.publisher().await;
    publisher.publish(sents("bob", 1, KEPT + 5)).await;
    let last = KEPT + 5;

    for (after, what) in [(4, "older than the updates kept"), (last + 1, "beyond the last")] {
        let refused = app.try_subscribe("bob", Some(after)).await.unwrap_err();
        assert_eq!(refused.code(), Code::OutOfRange, "{what}: {refused:?}");
        assert!(
            refused.message().contains("subscribe without resume_after"),
            "the message says what to do: {}",
            refused.message()
        );
    }
    // The oldest cursor still resumable replays all that is kept.
    let mut oldest = app.subscribe("bob", Some(5)).await;
    let replay = read_run(&mut oldest, 5, KEPT).await;
    assert_eq!(delivered(&replay[0]).invitation_ids, ["inv-6"]);
    let mut newest = app.subscribe("bob", Some(last)).await;
    publisher.publish(sents("bob", last + 1, 1)).await;
    assert_eq!(newest.next().await.cursor, last + 1);
    assert_eq!(oldest.next().await.cursor, last + 1);
    // Another user's cursors are their own.
    let refused = app.try_subscribe("carol", Some(1)).await.unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_is_cut_off_with_a_resume_hint() {
    const TOTAL: u64 = 1000;
    let app = spawn_instant("bob").await;
    let mut publisher = app.publisher().await;
    let mut slow = app.subscribe_alone("bob", None).await;
    publish_large(&mut publisher, TOTAL).await;

    let (last, status) = read_until_cut(&mut slow).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains(&format!("resume_after={last}")),
        "it says where to resume: {}",
        status.message()
    );
    let buffer = u64::try_from(STREAM_BUFFER).unwrap();
    assert!(
        last < TOTAL - buffer,
        "cut off after {last} of {TOTAL}, not kept waiting for a reader"
    );

    let mut resumed = app.subscribe("bob", Some(last)).await;
    read_run(&mut resumed, last, TOTAL - last).await;
}

#[tokio::test]
async fn a_user_may_hold_only_so_many_streams() {
    let app = spawn_app().await;
    let mut streams = Vec::new();
    for _ in 0..MAX_STREAMS_PER_USER {
        streams.push(app.subscribe("bob", None).await);
    }
    let refused = app.try_subscribe("bob", None).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("close one"), "{}", refused.message());
    assert!(app.try_subscribe("carol", None).await.is_ok(), "the cap is per user");
    assert_eq!(streams.len(), MAX_STREAMS_PER_USER);
}

#[tokio::test]
async fn a_closed_stream_frees_its_slot() {
    let app = spawn_app().await;
    for _ in 0..MAX_STREAMS_PER_USER {
        let stream = app.subscribe("bob", None).await;
        drop(stream);
    }
    let _ = eventually(PATIENCE / 2, || async { app.try_subscribe("bob", None).await.ok() }).await;
}

/// A stream that stalls is cut off with a resume hint, and its client
/// reads the hint only after what the transport held for it, while updates
/// keep coming: far more than the log usually keeps. The hint still works.
/// (Before resume points were pinned, resuming from it was OUT_OF_RANGE.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_hint_still_works_when_its_reader_comes_back_late() {
    const BEFORE: u64 = 1000;
    const AFTER: u64 = 1500;
    let app = spawn_instant("bob").await;
    let mut publisher = app.publisher().await;
    let mut stalled = app.subscribe_alone("bob", None).await;
    publish_large(&mut publisher, BEFORE + AFTER).await;
    let total = BEFORE + AFTER;
    assert!(total > 2 * notification_service::storage::UPDATES_KEPT);

    // Only now does the reader look at its stream.
    let (last, status) = read_until_cut(&mut stalled).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains(&format!("resume_after={last}")),
        "{}",
        status.message()
    );
    assert!(
        last + notification_service::storage::UPDATES_KEPT < total,
        "cut off at {last}: the usual log alone would not reach back"
    );
    let mut resumed = app.subscribe("bob", Some(last)).await;
    read_run(&mut resumed, last, total - last).await;
}

/// Users who subscribe and go away leave nothing behind in the hub: a
/// server would otherwise grow by every user who ever opened a stream.
/// (Before, an entry with its buffer stayed until an update for that user
/// came along, which for most never did.)
#[tokio::test]
async fn users_who_stop_listening_leave_nothing_in_the_hub() {
    let app = spawn_app().await;
    for round in 0..3 {
        let mut streams = Vec::new();
        // All on one connection, within its limit on concurrent streams.
        for i in 0..150 {
            streams.push(app.subscribe(&format!("user-{round}-{i}"), None).await);
        }
        // Two streams of one user: the entry stays while either is open.
        let phone = app.subscribe("dana", None).await;
        let laptop = app.subscribe("dana", None).await;
        assert_eq!(app.hub.user_count(), 151);
        drop(streams);
        drop(phone);
        eventually(PATIENCE, || async { (app.hub.user_count() == 1).then_some(()) }).await;
        assert_eq!(app.hub.stream_count(), 1, "dana's laptop still listens");
        drop(laptop);
        eventually(PATIENCE, || async { (app.hub.user_count() == 0).then_some(()) }).await;
    }
}
