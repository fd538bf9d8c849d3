//! The discreet withdrawal: an invitation withdrawn before its notification
//! went out leaves no trace; one withdrawn after is retracted; notices and
//! apology notes follow the recipient's preferences; MINIMAL hides the
//! sender.

use proto::notifications::v1::{self as pb, Topic};

use crate::helpers::{
    DIGEST, Digest, Full, Immediate, MINUTE, Minimal, UNDO, at, delivered, invitation, retracted, spawn_app, topic,
    well_formed_id,
};

#[tokio::test]
async fn an_invitation_withdrawn_before_its_digest_leaves_no_trace() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    let mut stream = app.subscribe("bob", None).await;
    let a = invitation(&well_formed_id("inv-a"), "alice", "bob");

    publisher.publish([a.sent()]).await;
    assert_eq!(app.delivery_status("alice", &a.id).await, (false, at(DIGEST)));
    app.advance(MINUTE);
    publisher.publish([a.withdrawn("")]).await;
    app.advance_settled(&mut publisher, DIGEST).await;

    assert_eq!(app.inbox("bob").await, [], "nothing was delivered");
    assert_eq!(app.unread("bob").await, 0);
    let unread_only = app.try_list("bob", 10, "", true).await.unwrap();
    assert_eq!(unread_only.notifications, []);
    app.first_update_is_a_canary(&mut publisher, "bob", &mut stream).await;
    stream.assert_quiet().await;
}

#[tokio::test]
async fn immediate_notifications_wait_out_the_undo_window() {
    let app = spawn_app().await;
    app.receive_immediately("bob").await;
    let mut publisher = app.publisher().await;
    let mut stream = app.subscribe("bob", None).await;
    let a = invitation(&well_formed_id("inv-a"), "alice", "bob");
    let b = invitation(&well_formed_id("inv-b"), "carol", "bob");

    publisher.publish([a.sent()]).await;
    assert_eq!(app.inbox("bob").await, [], "held, not delivered at once");
    assert_eq!(app.delivery_status("alice", &a.id).await, (false, at(UNDO)));
    app.advance(UNDO / 2);
    publisher.publish([b.sent()]).await;
    app.advance(UNDO / 2);

    // The timers fire in due order: when inv-a arrives, the pass that
    // delivered it had no reason to deliver inv-b, due 5 s later.
    let first = delivered(&stream.next().await).clone();
    assert_eq!(first.invitation_ids, std::slice::from_ref(&a.id));
    assert_eq!(first.created_at, at(UNDO));
    assert_eq!(app.inbox("bob").await, std::slice::from_ref(&first));
    assert_eq!(app.delivery_status("alice", &a.id).await, (true, None));
    assert_eq!(app.delivery_status("carol", &b.id).await, (false, at(UNDO + UNDO / 2)));

    app.advance(UNDO / 2);
    let second = delivered(&stream.next().await).clone();
    assert_eq!(second.invitation_ids, std::slice::from_ref(&b.id));
    assert_eq!(app.inbox("bob").await, [second, first]);
    assert_eq!(app.unread("bob").await, 2);
}

#[tokio::test]
async fn an_invitation_withdrawn_inside_the_undo_window_is_never_delivered() {
    let app = spawn_app().await;
    app.receive_immediately("bob").await;
    let mut publisher = app.publisher().await;
    let mut stream = app.subscribe("bob", None).await;
    let a = invitation(&well_formed_id("inv-a"), "alice", "bob");

    publisher.publish([a.sent()]).await;
    app.advance(UNDO / 2);
    publisher.publish([a.withdrawn("")]).await;
    assert_eq!(app.delivery_status("alice", &a.id).await, (false, None));
    app.advance_settled(&mut publisher, UNDO * 6).await;

    assert_eq!(app.inbox("bob").await, []);
    assert_eq!(app.unread("bob").await, 0);
    app.first_update_is_a_canary(&mut publisher, "bob", &mut stream).await;
    stream.assert_quiet().await;
}

#[tokio::test]
async fn an_invitation_withdrawn_after_delivery_is_retracted() {
    let app = spawn_app().await;
    app.receive_immediately("bob").await;
    let mut publisher = app.publisher().await;
    let mut phone = app.subscribe("bob", None).await;
    let mut laptop = app.subscribe("bob", None).await;
    let a = invitation("inv-a", "alice", "bob");
    let b = invitation("inv-b", "carol", "bob");

    publisher.publish([a.sent(), b.sent()]).await;
    app.advance(UNDO);
    let delivery = phone.next().await;
    let notification = delivered(&delivery).clone();
    assert_eq!(notification.invitation_ids, ["inv-a"]);
    assert_eq!(laptop.next().await, delivery);
    let other = phone.next().await;
    assert_eq!(laptop.next().await, other);
    assert_eq!(app.inbox("bob").await.len(), 2);
    assert_eq!(app.unread("bob").await, 2);

    publisher.publish([a.withdrawn("")]).await;
    let retraction = phone.next().await;
    assert_eq!(retracted(&retraction), [notification.id.as_str()]);
    assert!(retraction.cursor > other.cursor);
    assert_eq!(laptop.next().await, retraction);

    let inbox = app.inbox("bob").await;
    assert_eq!(inbox, [delivered(&other).clone()], "only inv-b is left");
    assert_eq!(app.unread("bob").await, 1);
    let read = app
        .client("bob")
        .mark_read(pb::MarkReadRequest {
            notification_ids: vec![notification.id.clone()],
            all: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.unread_count, 1, "a retracted notification is no longer counted");
    phone.assert_quiet().await;
}

#[tokio::test]
async fn a_withdrawal_notice_goes_only_to_those_who_asked_for_one() {
    let app = spawn_app().await;
    app.set_topic("dan", "invitation_withdrawn", topic(true, Immediate, Full))
        .await;
    let mut publisher = app.publisher().await;
    let mut bob_stream = app.subscribe("bob", None).await;
    let mut dan_stream = app.subscribe("dan", None).await;
    let to_bob = invitation("inv-bob", "alice", "bob");
    let to_dan = invitation("inv-dan", "alice", "dan");

    publisher.publish([to_bob.sent(), to_dan.sent()]).await;
    app.advance(MINUTE);
    // Blank notes are no notes.
    publisher
        .publish([to_bob.withdrawn(""), to_dan.withdrawn("  \n ")])
        .await;

    let notice = delivered(&dan_stream.next().await).clone();
    assert_eq!(notice.topic(), Topic::InvitationWithdrawn);
    assert_eq!(notice.invitation_ids, ["inv-dan"]);
    assert_eq!(notice.actor_id, "alice");
    assert_eq!(notice.actor_name, "Name-of-alice");
    assert!(notice.title.contains("Name-of-alice"), "{notice:?}");
    assert!(
        !notice.body.contains("Note-from-alice"),
        "the notice does not carry the invitation's note"
    );
    assert_eq!(notice.created_at, at(MINUTE));

    app.advance_settled(&mut publisher, DIGEST).await;
    assert_eq!(app.inbox("dan").await, [notice], "the notice, and no digest");
    assert_eq!(app.inbox("bob").await, []);
    app.first_update_is_a_canary(&mut publisher, "bob", &mut bob_stream)
        .await;
    bob_stream.assert_quiet().await;
}

#[tokio::test]
async fn an_apology_note_reaches_the_recipient_in_the_detail_they_chose() {
    let app = spawn_app().await;
    app.set_topic("dan", "withdrawal_note", topic(true, Immediate, Minimal))
        .await;
    let mut publisher = app.publisher().await;
    let to_bob = invitation("inv-bob", "alice", "bob");
    let to_dan = invitation("inv-dan", "alice", "dan");
    let note = "Sorry, I meant another person";

    publisher.publish([to_bob.sent(), to_dan.sent()]).await;
    publisher
        .publish([to_bob.withdrawn(note), to_dan.withdrawn(note)])
        .await;

    let [full] = &app.inbox("bob").await[..] else {
        panic!("bob has one notification");
    };
    assert_eq!(full.topic(), Topic::WithdrawalNote);
    assert_eq!(full.body, note);
    assert_eq!(
        (full.actor_id.as_str(), full.actor_name.as_str()),
        ("alice", "Name-of-alice")
    );
    assert!(full.title.contains("Name-of-alice"), "{full:?}");

    let [minimal] = &app.inbox("dan").await[..] else {
        panic!("dan has one notification");
    };
    assert_eq!(minimal.topic(), Topic::WithdrawalNote);
    assert_eq!((minimal.actor_id.as_str(), minimal.actor_name.as_str()), ("", ""));
    for secret in ["alice", "Name-of-alice", "Sorry", "another person", "Note-from-alice"] {
        assert!(
            !minimal.title.contains(secret) && !minimal.body.contains(secret),
            "MINIMAL shows {secret:?}: {minimal:?}"
        );
    }

    // The invitations themselves are gone, whatever the note.
    app.advance_settled(&mut publisher, DIGEST).await;
    assert_eq!(app.inbox("bob").await.len(), 1);
    assert_eq!(app.inbox("dan").await.len(), 1);
}

#[tokio::test]
async fn minimal_detail_keeps_the_sender_on_the_server() {
    let app = spawn_app().await;
    app.set_topic("bob", "invitation_received", topic(true, Immediate, Minimal))
        .await;
    app.set_topic("dan", "invitation_received", topic(true, Digest, Minimal))
        .await;
    let mut publisher = app.publisher().await;
    let mut stream = app.subscribe("bob", None).await;
    let secret = "Secret-personal-note";
    let to_bob = invitation("inv-bob", "alice-id-7", "bob").with_message(secret);
    let to_dan = [
        invitation("inv-dan-1", "alice-id-7", "dan").with_message(secret),
        invitation("inv-dan-2", "carol-id-9", "dan").with_message(secret),
    ];
    publisher
        .publish([to_bob.sent(), to_dan[0].sent(), to_dan[1].sent()])
        .await;
    app.advance_settled(&mut publisher, DIGEST).await;

    let live = delivered(&stream.next().await).clone();
    let [single] = &app.inbox("bob").await[..] else {
        panic!("bob has one notification");
    };
    assert_eq!(&live, single);
    let [digest] = &app.inbox("dan").await[..] else {
        panic!("dan has one digest");
    };
    assert_eq!(digest.item_count, 2);
    for notification in [single, digest] {
        assert_eq!(notification.topic(), Topic::InvitationReceived);
        assert_eq!(
            (notification.actor_id.as_str(), notification.actor_name.as_str()),
            ("", "")
        );
        assert!(!notification.title.is_empty(), "it still says something happened");
        for leak in [
            "alice-id-7",
            "Name-of-alice-id-7",
            "carol-id-9",
            "Name-of-carol-id-9",
            secret,
        ] {
            assert!(
                !notification.title.contains(leak) && !notification.body.contains(leak),
                "MINIMAL shows {leak:?}: {notification:?}"
            );
        }
    }
    // What a resumed stream replays is just as discreet.
    let mut replay = app.subscribe("bob", Some(0)).await;
    assert_eq!(delivered(&replay.next().await), single);
}

#[tokio::test]
async fn full_detail_names_the_sender_and_shows_the_note() {
    let app = spawn_app().await;
    app.receive_immediately("bob").await;
    let mut publisher = app.publisher().await;
    let a = invitation("inv-a", "alice", "bob").with_message("Let us connect");
    publisher.publish([a.sent()]).await;
    app.advance(UNDO);
    let [n] = &app.wait_for_inbox("bob", 1).await[..] else {
        unreachable!("waited for one")
    };
    assert_eq!(n.topic(), Topic::InvitationReceived);
    assert_eq!((n.actor_id.as_str(), n.actor_name.as_str()), ("alice", "Name-of-alice"));
    assert_eq!(n.title, "Name-of-alice wants to connect");
    assert_eq!(n.body, "Let us connect");
    assert_eq!((n.item_count, n.read), (1, false));
    assert_eq!(n.created_at, at(UNDO));
    assert!(n.cursor > 0);
}

/// Notification ids are per-user numbers: when the number of a notification
/// that was withdrawn before delivery is skipped, the recipient can tell a
/// withdrawn invitation from one that never was.
#[tokio::test]
async fn notification_ids_do_not_reveal_a_withdrawn_invitation() {
    let app = spawn_app().await;
    app.receive_immediately("bob").await;
    app.receive_immediately("dan").await;
    let mut publisher = app.publisher().await;
    // bob's world: alice invites and withdraws within the undo window, then
    // carol invites. dan's world: only carol invites.
    let withdrawn = invitation("inv-withdrawn", "alice", "bob");
    publisher.publish([withdrawn.sent()]).await;
    app.advance(UNDO / 2);
    publisher.publish([withdrawn.withdrawn("")]).await;
    publisher
        .publish([
            invitation("inv-bob", "carol", "bob").sent(),
            invitation("inv-dan", "carol", "dan").sent(),
        ])
        .await;
    app.advance(UNDO);
    let bob = app.wait_for_inbox("bob", 1).await;
    let dan = app.wait_for_inbox("dan", 1).await;
    assert_eq!(
        (bob[0].id.as_str(), bob[0].cursor),
        (dan[0].id.as_str(), dan[0].cursor),
        "the two worlds look alike"
    );
    assert_eq!(bob[0].created_at, dan[0].created_at);
}
