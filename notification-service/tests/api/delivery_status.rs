//! `GetDeliveryStatus`: the sender's "if I withdraw now, will they know?",
//! which only the sender may ask and which an ignore must not change.

use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{DIGEST, MINUTE, UNDO, at, invitation, spawn_app, well_formed_id};

#[tokio::test]
async fn the_sender_sees_when_the_recipient_will_be_told() {
    let app = spawn_app().await;
    app.receive_immediately("dan").await;
    let mut publisher = app.publisher().await;
    let in_digest = invitation(&well_formed_id("inv-digest"), "alice", "bob");
    let held = invitation(&well_formed_id("inv-held"), "alice", "dan");
    let later = invitation(&well_formed_id("inv-later"), "carol", "bob");
    app.advance(MINUTE / 2);
    publisher.publish([in_digest.sent(), held.sent()]).await;
    assert_eq!(
        app.delivery_status("alice", &in_digest.id).await,
        (false, at(MINUTE / 2 + DIGEST)),
        "in a digest: when the digest goes out"
    );
    assert_eq!(
        app.delivery_status("alice", &held.id).await,
        (false, at(MINUTE / 2 + UNDO)),
        "held: the end of the undo window"
    );
    // A second invitation joins the open digest and goes out with it.
    app.advance(MINUTE);
    publisher.publish([later.sent()]).await;
    assert_eq!(
        app.delivery_status("carol", &later.id).await,
        (false, at(MINUTE / 2 + DIGEST))
    );

    app.wait_for_inbox("dan", 1).await;
    assert_eq!(app.delivery_status("alice", &held.id).await, (true, None));
    assert!(!app.delivery_status("alice", &in_digest.id).await.0);
    app.advance_settled(&mut publisher, DIGEST).await;
    assert_eq!(app.delivery_status("alice", &in_digest.id).await, (true, None));
    assert_eq!(app.delivery_status("carol", &later.id).await, (true, None));
}

#[tokio::test]
async fn only_the_sender_may_ask() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    let a = invitation(&well_formed_id("inv-a"), "alice", "bob");
    publisher.publish([a.sent()]).await;

    let unknown = app
        .try_delivery_status("alice", &well_formed_id("inv-never"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    for user in ["bob", "mallory"] {
        let refused = app.try_delivery_status(user, &a.id).await.unwrap_err();
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
    let ignored_digest = invitation(&well_formed_id("inv-ignored-digest"), "alice", "bob");
    let twin_digest = invitation(&well_formed_id("inv-twin-digest"), "alice", "dan");
    let ignored_held = invitation(&well_formed_id("inv-ignored-held"), "alice", "carol");
    let twin_held = invitation(&well_formed_id("inv-twin-held"), "alice", "erin");
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

#[tokio::test]
async fn a_malformed_invitation_id_is_invalid_argument_as_in_invitation_service() {
    let app = spawn_app().await;

    for (id, says) in [
        ("not-an-id", "invitation_id: must be an invitation id (32 hex digits)"),
        ("", "invitation_id: is required"),
    ] {
        let status = app.try_delivery_status("alice", id).await.unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (Code::InvalidArgument, says),
            "{id:?}"
        );
        let violations = status
            .get_details_bad_request()
            .expect("bad request details")
            .field_violations;
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].field, "invitation_id");
    }
}

#[tokio::test]
async fn a_well_formed_unknown_invitation_id_is_not_found_and_hex_digits_match_in_any_case() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    let id = "0123456789abcdef0123456789abcdef";
    publisher.publish([invitation(id, "alice", "bob").sent()]).await;

    let unknown = app
        .try_delivery_status("alice", "fedcba9876543210fedcba9876543210")
        .await
        .unwrap_err();

    assert_eq!(
        (unknown.code(), unknown.message()),
        (Code::NotFound, "no delivery status for this invitation")
    );
    assert_eq!(
        app.delivery_status("alice", &id.to_uppercase()).await,
        app.delivery_status("alice", id).await
    );
}
