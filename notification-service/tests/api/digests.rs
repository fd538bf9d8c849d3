//! Digests: invitations received inside one interval go out together, at the
//! interval the user chose; withdrawing revises or retracts a delivered
//! digest, and a digest left empty is never sent.

use std::time::Duration;

use proto::notifications::v1::{self as pb, Topic};

use crate::helpers::{DIGEST, MINUTE, at, delivered, ids, invitation, retracted, revised, spawn_app, well_formed_id};

#[tokio::test]
async fn invitations_inside_one_interval_make_one_digest() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    let mut stream = app.subscribe("bob", None).await;
    let a = invitation(&well_formed_id("inv-a"), "alice", "bob");
    let b = invitation(&well_formed_id("inv-b"), "carol", "bob");
    let c = invitation(&well_formed_id("inv-c"), "dave", "bob");

    publisher.publish([a.sent()]).await;
    app.advance(MINUTE);
    publisher.publish([b.sent()]).await;
    app.advance(MINUTE);
    publisher.publish([c.sent()]).await;
    for inv in [&a, &b, &c] {
        assert_eq!(
            app.delivery_status(&inv.sender, &inv.id).await,
            (false, at(DIGEST)),
            "{}'s goes out with the digest opened by the first",
            inv.sender
        );
    }

    // Everything due a second before the digest has fired, and not it.
    app.advance_settled(&mut publisher, DIGEST - 2 * MINUTE - Duration::from_secs(1))
        .await;
    assert_eq!(app.inbox("bob").await, []);

    app.advance(Duration::from_secs(1));
    let update = stream.next().await;
    let digest = delivered(&update).clone();
    assert_eq!(digest.topic(), Topic::InvitationReceived);
    assert_eq!(digest.item_count, 3);
    assert_eq!(ids(&digest), [&a.id, &b.id, &c.id]);
    assert_eq!(digest.title, "You have 3 new invitations to connect");
    assert_eq!(digest.body, "From Name-of-alice, Name-of-carol and Name-of-dave");
    assert_eq!((digest.actor_id.as_str(), digest.actor_name.as_str()), ("", ""));
    assert_eq!(digest.created_at, at(DIGEST));
    assert_eq!(app.inbox("bob").await, [digest]);
    assert_eq!(app.unread("bob").await, 1);
    for inv in [&a, &b, &c] {
        assert_eq!(app.delivery_status(&inv.sender, &inv.id).await, (true, None));
    }
    stream.assert_quiet().await;
}

#[tokio::test]
async fn withdrawing_from_a_delivered_digest_revises_it_then_retracts_it() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    let a = invitation("inv-a", "alice", "bob");
    let b = invitation("inv-b", "carol", "bob");
    let c = invitation("inv-c", "dave", "bob");
    publisher.publish([a.sent(), b.sent(), c.sent()]).await;
    app.advance_settled(&mut publisher, DIGEST).await;
    let [digest] = &app.inbox("bob").await[..] else {
        panic!("one digest")
    };
    let mut stream = app.subscribe("bob", Some(digest.cursor)).await;

    publisher.publish([b.withdrawn("")]).await;
    let update = stream.next().await;
    let revision = revised(&update).clone();
    assert_eq!(revision.id, digest.id, "the same notification, revised");
    assert_eq!(revision.item_count, 2);
    assert_eq!(ids(&revision), ["inv-a", "inv-c"]);
    assert_eq!(revision.title, "You have 2 new invitations to connect");
    assert!(!revision.body.contains("carol"), "{revision:?}");
    assert_eq!(update.cursor, digest.cursor + 1);
    assert_eq!(revision.cursor, update.cursor);
    assert_eq!(app.inbox("bob").await, std::slice::from_ref(&revision));
    assert_eq!(app.unread("bob").await, 1);

    publisher.publish([a.withdrawn("")]).await;
    let last = revised(&stream.next().await).clone();
    assert_eq!(ids(&last), ["inv-c"]);
    assert_eq!(last.item_count, 1);
    assert_eq!(last.actor_id, "dave", "a digest of one names its sender");

    publisher.publish([c.withdrawn("")]).await;
    assert_eq!(retracted(&stream.next().await), [digest.id.as_str()]);
    assert_eq!(app.inbox("bob").await, []);
    assert_eq!(app.unread("bob").await, 0);
}

#[tokio::test]
async fn a_digest_emptied_before_it_is_due_is_never_sent() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    let mut stream = app.subscribe("bob", None).await;
    let invitations = [
        invitation("inv-a", "alice", "bob"),
        invitation("inv-b", "carol", "bob"),
        invitation("inv-c", "dave", "bob"),
    ];
    publisher.publish(invitations.iter().map(|i| i.sent())).await;
    app.advance(MINUTE);
    publisher.publish(invitations.iter().map(|i| i.withdrawn(""))).await;
    app.advance_settled(&mut publisher, DIGEST).await;

    assert_eq!(app.inbox("bob").await, []);
    assert_eq!(app.unread("bob").await, 0);
    app.first_update_is_a_canary(&mut publisher, "bob", &mut stream).await;
    stream.assert_quiet().await;
}

#[tokio::test]
async fn a_burst_in_one_millisecond_makes_one_digest() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    let invitations: Vec<_> = (0..8)
        .map(|i| invitation(&format!("inv-{i}"), &format!("sender-{i}"), "bob"))
        .collect();
    // One batch, then single events, all at the same clock time.
    publisher.publish(invitations[..5].iter().map(|i| i.sent())).await;
    for i in &invitations[5..] {
        publisher.publish([i.sent()]).await;
    }
    app.advance_settled(&mut publisher, DIGEST).await;
    let inbox = app.inbox("bob").await;
    let [digest] = &inbox[..] else {
        panic!("one digest, not {inbox:?}")
    };
    assert_eq!(digest.item_count, 8);
    let expected: Vec<&str> = invitations.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids(digest), expected);
    assert_eq!(
        digest.body,
        "From Name-of-sender-0, Name-of-sender-1, Name-of-sender-2 and 5 others"
    );
}

#[tokio::test]
async fn the_digest_interval_the_user_chose_is_used() {
    let app = spawn_app().await;
    let hour = Duration::from_secs(3600);
    app.update_preferences(
        "bob",
        pb::Preferences {
            digest_interval: Some(prost_types::Duration::try_from(hour).unwrap()),
            ..pb::Preferences::default()
        },
        &["digest_interval"],
    )
    .await;
    let mut publisher = app.publisher().await;
    let to_bob = invitation(&well_formed_id("inv-bob"), "alice", "bob");
    let to_dan = invitation(&well_formed_id("inv-dan"), "alice", "dan");
    publisher.publish([to_bob.sent(), to_dan.sent()]).await;
    assert_eq!(app.delivery_status("alice", &to_bob.id).await, (false, at(hour)));
    assert_eq!(app.delivery_status("alice", &to_dan.id).await, (false, at(DIGEST)));

    app.advance_settled(&mut publisher, DIGEST).await;
    assert_eq!(app.inbox("dan").await.len(), 1, "dan has the server's default");
    assert_eq!(app.inbox("bob").await, [], "bob chose an hour");

    app.advance_settled(&mut publisher, hour - DIGEST).await;
    let [digest] = &app.inbox("bob").await[..] else {
        panic!("bob's digest")
    };
    assert_eq!(digest.created_at, at(hour));
    assert_eq!(ids(digest), [&to_bob.id]);
}
