//! How an invitation ends: an acceptance is told to its sender at once; an
//! ignore or an expiry takes the invitation out of the recipient's inbox and
//! is told to nobody.

use proto::notifications::v1::Topic;

use crate::helpers::{DIGEST, UNDO, delivered, invitation, retracted, spawn_app};

#[tokio::test]
async fn an_acceptance_is_told_to_the_sender_at_once() {
    let app = spawn_app().await;
    app.receive_immediately("bob").await;
    let mut publisher = app.publisher().await;
    let mut alice = app.subscribe("alice", None).await;
    let delivered_first = invitation("inv-delivered", "alice", "bob");
    let accepted_early = invitation("inv-early", "alice", "dan");

    publisher.publish([delivered_first.sent(), accepted_early.sent()]).await;
    app.advance(UNDO);
    let [told] = &app.wait_for_inbox("bob", 1).await[..] else {
        unreachable!("waited for one")
    };
    publisher.publish([delivered_first.accepted()]).await;

    // No clock moved: the notice is delivered with the event.
    let notice = delivered(&alice.next().await).clone();
    assert_eq!(notice.topic(), Topic::InvitationAccepted);
    assert_eq!(notice.invitation_ids, ["inv-delivered"]);
    assert_eq!(notice.actor_id, "bob");
    assert_eq!(notice.title, "bob accepted your invitation");
    assert_eq!(app.inbox("alice").await, [notice]);
    // What bob was told stays true.
    assert_eq!(app.inbox("bob").await, std::slice::from_ref(told));

    // dan accepts before his digest went out: it has nothing left to say.
    publisher.publish([accepted_early.accepted()]).await;
    let second = delivered(&alice.next().await).clone();
    assert_eq!(second.invitation_ids, ["inv-early"]);
    app.advance_settled(&mut publisher, DIGEST).await;
    assert_eq!(app.inbox("dan").await, []);
    assert_eq!(app.inbox("alice").await.len(), 2);
}

#[tokio::test]
async fn an_ignore_or_an_expiry_retracts_and_is_told_to_nobody() {
    let app = spawn_app().await;
    app.receive_immediately("bob").await;
    let mut publisher = app.publisher().await;
    let ignored = invitation("inv-ignored", "alice", "bob");
    let expired = invitation("inv-expired", "carol", "bob");
    let pending = invitation("inv-pending", "dave", "erin");

    publisher
        .publish([ignored.sent(), expired.sent(), pending.sent()])
        .await;
    app.advance(UNDO);
    let inbox = app.wait_for_inbox("bob", 2).await;
    assert_eq!(app.unread("bob").await, 2);
    let last_cursor = inbox.iter().map(|n| n.cursor).max();
    let mut bob = app.subscribe("bob", last_cursor).await;

    publisher.publish([ignored.ignored()]).await;
    let id = |invitation: &str| {
        inbox
            .iter()
            .find(|n| n.invitation_ids == [invitation])
            .map(|n| n.id.clone())
            .unwrap()
    };
    assert_eq!(retracted(&bob.next().await), [id("inv-ignored")]);
    publisher.publish([expired.expired()]).await;
    assert_eq!(retracted(&bob.next().await), [id("inv-expired")]);
    // erin's invitation expires while still in her digest.
    publisher.publish([pending.expired()]).await;

    app.advance_settled(&mut publisher, DIGEST).await;
    assert_eq!(app.inbox("bob").await, []);
    assert_eq!(app.unread("bob").await, 0);
    for user in ["alice", "carol", "dave", "erin"] {
        assert_eq!(app.inbox(user).await, [], "{user} is told nothing");
    }
    bob.assert_quiet().await;
}
