//! `GetDeliveryStatus`: the sender's "if I withdraw now, will they know?",
//! which only the sender may ask and which an ignore must not change.

use tonic::Code;

use crate::helpers::{DIGEST, MINUTE, UNDO, at, invitation, spawn_app};

#[tokio::test]
async fn the_sender_sees_when_the_recipient_will_be_told() {
    let app = spawn_app().await;
    app.receive_immediately("dan").await;
    let mut publisher = app.publisher().await;
    app.advance(MINUTE / 2);
    publisher
        .publish([
            invitation("inv-digest", "alice", "bob").sent(),
            invitation("inv-held", "alice", "dan").sent(),
        ])
        .await;
    assert_eq!(
        app.delivery_status("alice", "inv-digest").await,
        (false, at(MINUTE / 2 + DIGEST)),
        "in a digest: when the digest goes out"
    );
    assert_eq!(
        app.delivery_status("alice", "inv-held").await,
        (false, at(MINUTE / 2 + UNDO)),
        "held: the end of the undo window"
    );
    // A second invitation joins the open digest and goes out with it.
    app.advance(MINUTE);
    publisher
        .publish([invitation("inv-later", "carol", "bob").sent()])
        .await;
    assert_eq!(
        app.delivery_status("carol", "inv-later").await,
        (false, at(MINUTE / 2 + DIGEST))
    );

    app.wait_for_inbox("dan", 1).await;
    assert_eq!(app.delivery_status("alice", "inv-held").await, (true, None));
    assert!(!app.delivery_status("alice", "inv-digest").await.0);
    app.advance_settled(&mut publisher, DIGEST).await;
    assert_eq!(app.delivery_status("alice", "inv-digest").await, (true, None));
    assert_eq!(app.delivery_status("carol", "inv-later").await, (true, None));
}

#[tokio::test]
async fn only_the_sender_may_ask() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    publisher.publish([invitation("inv-a", "alice", "bob").sent()]).await;

    let unknown = app.try_delivery_status("alice", "inv-never").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    for user in ["bob", "mallory"] {
        let refused = app.try_delivery_status(user, "inv-a").await.unwrap_err();
        assert_eq!(refused.code(), Code::NotFound, "{user}: {refused:?}");
        assert_eq!(
            refused.message(),
            unknown.message(),
            "{user} cannot tell it from an unknown invitation"
        );
    }
    let empty = app.try_delivery_status("alice", "").await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn an_ignore_cannot_be_seen_by_the_sender() {
    let app = spawn_app().await;
    app.receive_immediately("carol").await;
    app.receive_immediately("erin").await;
    let mut publisher = app.publisher().await;
    // Each ignored invitation has a twin whose recipient does nothing.
    let ignored_digest = invitation("inv-ignored-digest", "alice", "bob");
    let twin_digest = invitation("inv-twin-digest", "alice", "dan");
    let ignored_held = invitation("inv-ignored-held", "alice", "carol");
    let twin_held = invitation("inv-twin-held", "alice", "erin");
    publisher
        .publish([
            ignored_digest.sent(),
            twin_digest.sent(),
            ignored_held.sent(),
            twin_held.sent(),
        ])
        .await;
    let pairs = [(&ignored_digest, &twin_digest), (&ignored_held, &twin_held)];
    let before = [
        app.delivery_status("alice", &twin_digest.id).await,
        app.delivery_status("alice", &twin_held.id).await,
    ];

    app.advance(UNDO / 2);
    publisher
        .publish([ignored_digest.ignored(), ignored_held.ignored()])
        .await;
    for ((ignored, twin), before) in pairs.iter().zip(&before) {
        let seen = app.delivery_status("alice", &ignored.id).await;
        assert_eq!(&seen, before, "deliver_at unchanged by the ignore");
        assert_eq!(seen, app.delivery_status("alice", &twin.id).await);
    }

    // Past the undo window the held twin is delivered, and so, to the
    // sender, is the ignored one.
    app.advance(UNDO);
    app.wait_for_inbox("erin", 1).await;
    assert_eq!(app.delivery_status("alice", &ignored_held.id).await, (true, None));
    assert_eq!(app.delivery_status("alice", &twin_held.id).await, (true, None));
    assert_eq!(app.delivery_status("alice", &ignored_digest.id).await, before[0]);

    app.advance_settled(&mut publisher, DIGEST).await;
    for (ignored, twin) in pairs {
        assert_eq!(app.delivery_status("alice", &ignored.id).await, (true, None));
        assert_eq!(app.delivery_status("alice", &twin.id).await, (true, None));
    }
    // The recipients who ignored were told nothing.
    assert_eq!(app.inbox("bob").await, []);
    assert_eq!(app.inbox("carol").await, []);
}
