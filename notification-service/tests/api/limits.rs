//! Limits per caller and per connection: a user's rate per class of call,
//! and the streams one HTTP/2 connection may hold at once.

use std::time::Duration;

use proto::notifications::v1 as pb;
use service_kit::limits::RateSettings;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{PATIENCE, QUIET, eventually, spawn_app_with};

#[tokio::test]
async fn a_user_over_their_rate_is_refused_with_when_to_retry() {
    // Writes (MarkRead, UpdatePreferences, Subscribe): 2 a second, a burst of 4.
    let app = spawn_app_with(|config| {
        config.rate = RateSettings {
            reads_per_second: 1000,
            writes_per_second: 2,
        };
    })
    .await;
    let mut streams = Vec::new();
    for _ in 0..2 {
        streams.push(app.subscribe("bob", None).await);
    }
    for _ in 0..2 {
        app.client("bob")
            .mark_read(pb::MarkReadRequest {
                notification_ids: Vec::new(),
                all: true,
            })
            .await
            .unwrap();
    }
    let refused = app.try_subscribe("bob", None).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("too many writes"), "{}", refused.message());
    assert_eq!(
        refused.get_details_error_info().map(|i| i.reason),
        Some("RATE_LIMITED".to_owned())
    );
    let delay = refused
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("when to retry");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_millis(500),
        "{delay:?}"
    );
    assert_eq!(app.hub.stream_count(), 2, "the refused stream was never opened");

    // Reads have their own budget, and other users theirs.
    assert_eq!(app.unread("bob").await, 0);
    app.subscribe("carol", None).await;

    tokio::time::sleep(delay).await;
    app.subscribe("bob", None).await;
}

/// A connection holds at most `max_streams_per_connection` calls at once,
/// and the client knows it from the server's HTTP/2 settings: a call past
/// it waits on the client's side until one ends, instead of failing.
#[tokio::test]
async fn a_connection_holds_only_so_many_streams_and_the_next_waits_its_turn() {
    let app = spawn_app_with(|config| config.max_streams_per_connection = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app.subscribe("bob", None).await);
    }
    let mut client = app.client("bob");
    let mut fourth = Box::pin(client.subscribe(pb::SubscribeRequest { resume_after: None }));
    assert!(
        tokio::time::timeout(QUIET, &mut fourth).await.is_err(),
        "a fourth stream on the connection is not opened while three are"
    );
    assert_eq!(app.hub.stream_count(), 3);
    drop(open.pop());
    let opened = tokio::time::timeout(PATIENCE, fourth)
        .await
        .expect("opened once one ended");
    assert!(opened.is_ok(), "{opened:?}");
    eventually(PATIENCE, || async { (app.hub.stream_count() == 3).then_some(()) }).await;
}
