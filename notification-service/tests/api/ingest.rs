//! `EventIngest/Publish`: the resume point, acks, duplicates, gaps, malformed
//! events and who may publish at all.

use tonic::Code;

use crate::helpers::{SOURCE, UNDO, invitation, invitation_ids, numbered, spawn_app, well_formed_id};

#[tokio::test]
async fn the_first_reply_is_the_resume_point_and_acks_follow_what_was_applied() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    assert_eq!(publisher.resume, 0, "a fresh store has applied nothing");

    let events = (1..=3).map(|i| invitation(&format!("inv-{i}"), "alice", &format!("bob-{i}")).sent());
    assert_eq!(publisher.publish(events).await, 3);
    let more = [invitation("inv-4", "carol", "dan").sent()];
    assert_eq!(publisher.publish(more).await, 4);
    drop(publisher);

    assert_eq!(
        app.publisher().await.resume,
        4,
        "a new connection resumes after the last applied"
    );
    // Sequences are per source.
    let other = app
        .try_publisher(Some(app.publisher_token()), "another-source")
        .await
        .unwrap();
    assert_eq!(other.resume, 0);
}

#[tokio::test]
async fn an_event_sent_twice_is_applied_once() {
    let app = spawn_app().await;
    app.receive_immediately("bob").await;
    let a = invitation("inv-a", "alice", "bob");
    let b = invitation("inv-b", "carol", "bob");

    let mut publisher = app.publisher().await;
    assert_eq!(publisher.send(vec![numbered(1, a.sent())]).await.unwrap(), 1);
    assert_eq!(
        publisher.send(vec![numbered(1, a.sent())]).await.unwrap(),
        1,
        "a re-sent event is acknowledged, not applied again"
    );
    drop(publisher);
    // After a reconnect the publisher may resend what it did not see acked.
    let mut publisher = app.publisher().await;
    assert_eq!(
        publisher
            .send(vec![numbered(1, a.sent()), numbered(2, b.sent())])
            .await
            .unwrap(),
        2
    );

    app.advance_settled(&mut publisher, UNDO).await;
    let inbox = app.inbox("bob").await;
    assert_eq!(
        invitation_ids(&inbox),
        [vec!["inv-b".to_owned()], vec!["inv-a".to_owned()]],
        "one notification per invitation: {inbox:?}"
    );
    assert_eq!(app.unread("bob").await, 2);
}

#[tokio::test]
async fn a_gap_is_refused_and_nothing_of_its_batch_is_applied() {
    let app = spawn_app().await;
    let a = invitation(&well_formed_id("inv-a"), "alice", "bob");
    let b = invitation(&well_formed_id("inv-b"), "alice", "carol");
    let c = invitation(&well_formed_id("inv-c"), "alice", "dan");

    let mut publisher = app.publisher().await;
    assert_eq!(publisher.send(vec![numbered(1, a.sent())]).await.unwrap(), 1);
    let refused = publisher
        .send(vec![numbered(2, b.sent()), numbered(4, c.sent())])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(
        refused.message().contains("expected 3, got 4"),
        "the message says what was expected: {}",
        refused.message()
    );
    drop(publisher);

    let mut publisher = app.publisher().await;
    assert_eq!(publisher.resume, 1, "the refused batch moved nothing forward");
    // Had the Sent of inv-b been applied, its sender could ask about it.
    for inv in [&b, &c] {
        let status = app.try_delivery_status("alice", &inv.id).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::NotFound,
            "{} left no trace: {status:?}",
            inv.recipient
        );
    }
    assert!(app.try_delivery_status("alice", &a.id).await.is_ok());

    // The publisher resumes from the resume point and goes on.
    assert_eq!(
        publisher
            .send(vec![numbered(2, b.sent()), numbered(3, c.sent())])
            .await
            .unwrap(),
        3
    );
    assert!(app.try_delivery_status("alice", &c.id).await.is_ok());
}

#[tokio::test]
async fn only_a_token_with_the_publish_scope_may_publish() {
    let app = spawn_app().await;
    let refused = app.try_publisher(None, SOURCE).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    let user = app.try_publisher(Some(app.token("alice")), SOURCE).await.unwrap_err();
    assert_eq!(user.code(), Code::PermissionDenied, "{user:?}");
    assert!(user.message().contains("events:publish"), "{}", user.message());

    let forged = service_kit::auth::JwtKeys::new("some-other-secret-0123456789")
        .unwrap()
        .mint(
            SOURCE,
            None,
            std::time::Duration::from_secs(60),
            Some(service_kit::auth::PUBLISH_SCOPE),
        )
        .unwrap();
    let forged = app.try_publisher(Some(forged), SOURCE).await.unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated, "{forged:?}");

    assert_eq!(app.publisher().await.resume, 0);
}

#[tokio::test]
async fn malformed_events_are_invalid_and_change_nothing() {
    let app = spawn_app().await;
    let a = invitation(&well_formed_id("inv-a"), "alice", "bob");
    let without_invitation = {
        let mut event = numbered(1, a.sent());
        event.invitation = None;
        event
    };
    let without_kind = {
        let mut event = numbered(1, a.sent());
        event.kind = None;
        event
    };
    let without_recipient = numbered(1, invitation(&a.id, "alice", "").sent());
    let without_id = numbered(1, invitation("", "alice", "bob").sent());
    let sequence_zero = a.sent();
    for (what, event) in [
        ("no invitation", without_invitation),
        ("no kind", without_kind),
        ("no recipient", without_recipient),
        ("no invitation id", without_id),
        ("sequence 0", sequence_zero),
    ] {
        let mut publisher = app.publisher().await;
        let refused = publisher.send(vec![event]).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
    }

    let refused = app.try_publisher(Some(app.publisher_token()), "").await.unwrap_err();
    assert_eq!(
        refused.code(),
        Code::InvalidArgument,
        "a hello without a source: {refused:?}"
    );

    assert_eq!(app.publisher().await.resume, 0);
    let status = app.try_delivery_status("alice", &a.id).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}
