//! Reminders of invitations still pending: their own topic and preference
//! (on, DIGEST, FULL by default), and no trace of a reminder once its
//! invitation is withdrawn, whether it was waiting in a digest or already
//! delivered.

use proto::notifications::v1::{self as pb, Topic};

use crate::helpers::{
    DIGEST, Full, Immediate, Inv, Minimal, Publisher, TestApp, Updates, delivered, ids, invitation, retracted, revised,
    spawn_app, topic, well_formed_id,
};

/// The app, its publisher and bob's stream, once bob has had his digest of
/// an invitation from each of `senders` (returned, with the digest).
async fn bob_told_of(senders: &[&str]) -> (TestApp, Publisher, Updates, Vec<Inv>, pb::Notification) {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    let mut stream = app.subscribe("bob", None).await;
    let sent: Vec<Inv> = senders
        .iter()
        .map(|sender| invitation(&well_formed_id(&format!("from-{sender}")), sender, "bob"))
        .collect();
    publisher.publish(sent.iter().map(Inv::sent)).await;
    app.advance_settled(&mut publisher, DIGEST).await;
    let received = delivered(&stream.next().await).clone();
    assert_eq!(received.topic(), Topic::InvitationReceived);
    (app, publisher, stream, sent, received)
}

#[tokio::test]
async fn reminders_gather_in_a_digest_of_their_own() {
    let (app, mut publisher, mut stream, sent, received) = bob_told_of(&["alice", "carol"]).await;
    let [a, c] = &sent[..] else { unreachable!() };

    publisher.publish([a.reminded(1), c.reminded(1)]).await;
    // A second reminder of the same invitation does not repeat it.
    publisher.publish([a.reminded(2)]).await;
    app.advance_settled(&mut publisher, DIGEST).await;
    let reminder = delivered(&stream.next().await).clone();
    assert_eq!(reminder.topic(), Topic::InvitationReminder);
    assert_eq!(ids(&reminder), [&a.id, &c.id]);
    assert_eq!(reminder.title, "2 invitations are still waiting for your answer");
    assert_eq!(reminder.body, "From Name-of-alice and Name-of-carol");
    assert_eq!(app.inbox("bob").await, [reminder, received]);
    assert_eq!(app.unread("bob").await, 2);
    stream.assert_quiet().await;
}

#[tokio::test]
async fn a_withdrawal_takes_back_reminders_waiting_and_delivered() {
    let (app, mut publisher, mut stream, sent, received) = bob_told_of(&["alice", "carol"]).await;
    let [a, c] = &sent[..] else { unreachable!() };

    // The first reminders are delivered; carol's second waits in a digest.
    publisher.publish([a.reminded(1), c.reminded(1)]).await;
    app.advance_settled(&mut publisher, DIGEST).await;
    let first = delivered(&stream.next().await).clone();
    assert_eq!(ids(&first), [&a.id, &c.id]);
    publisher.publish([c.reminded(2)]).await;

    // carol withdraws: out of the delivered invitation digest and the
    // delivered reminder digest (both revised), and the waiting reminder
    // digest, left empty, is never sent.
    publisher.publish([c.withdrawn("")]).await;
    let mut revisions = vec![
        revised(&stream.next().await).clone(),
        revised(&stream.next().await).clone(),
    ];
    revisions.sort_by_key(|n| n.id.clone());
    for n in &revisions {
        assert_eq!(ids(n), [&a.id], "{:?} no longer mentions carol's", n.topic());
        assert!(!format!("{n:?}").contains("carol"), "{n:?}");
    }
    app.advance_settled(&mut publisher, DIGEST).await;
    let inbox = app.inbox("bob").await;
    assert_eq!(inbox.len(), 2, "{inbox:#?}");
    assert!(
        !format!("{inbox:?}").contains("carol") && !format!("{inbox:?}").contains(&c.id),
        "nothing of carol's invitation is left: {inbox:#?}"
    );

    // alice withdraws too: both notifications were about her alone now.
    publisher.publish([a.withdrawn("")]).await;
    let mut gone = [
        retracted(&stream.next().await).to_vec(),
        retracted(&stream.next().await).to_vec(),
    ];
    gone.sort();
    let mut expected = [vec![received.id.clone()], vec![first.id.clone()]];
    expected.sort();
    assert_eq!(gone, expected);
    assert_eq!(app.inbox("bob").await, []);
    assert_eq!(app.unread("bob").await, 0);
    stream.assert_quiet().await;
}

#[tokio::test]
async fn an_acceptance_drops_a_waiting_reminder_and_keeps_a_delivered_one() {
    let (app, mut publisher, mut stream, sent, received) = bob_told_of(&["alice"]).await;
    let a = &sent[0];

    publisher.publish([a.reminded(1), a.accepted()]).await;
    app.advance_settled(&mut publisher, DIGEST).await;
    assert_eq!(
        app.inbox("bob").await,
        std::slice::from_ref(&received),
        "the reminder was moot"
    );

    // Told at once, a reminder is delivered, and stays true after.
    let d = invitation(&well_formed_id("inv-d"), "dave", "bob");
    app.set_topic("bob", "invitation_reminder", topic(true, Immediate, Full))
        .await;
    publisher.publish([d.sent()]).await;
    app.advance_settled(&mut publisher, DIGEST).await;
    let received_d = delivered(&stream.next().await).clone();
    publisher.publish([d.reminded(1)]).await;
    let reminder = delivered(&stream.next().await).clone();
    assert_eq!(reminder.title, "Name-of-dave is still waiting for your answer");
    assert_eq!(reminder.body, "Note-from-dave");
    publisher.publish([d.accepted()]).await;
    app.advance_settled(&mut publisher, DIGEST).await;
    assert_eq!(app.inbox("bob").await, [reminder, received_d, received]);
    stream.assert_quiet().await;
}

#[tokio::test]
async fn the_reminder_preference_turns_them_off_or_anonymous() {
    let (app, mut publisher, mut stream, sent, received) = bob_told_of(&["alice"]).await;
    let a = &sent[0];
    app.set_topic("bob", "invitation_reminder", topic(false, Immediate, Full))
        .await;
    publisher.publish([a.reminded(1)]).await;
    app.advance_settled(&mut publisher, DIGEST).await;
    assert_eq!(app.inbox("bob").await, [received], "off: no reminder");

    app.set_topic("bob", "invitation_reminder", topic(true, Immediate, Minimal))
        .await;
    publisher.publish([a.reminded(2)]).await;
    let reminder = delivered(&stream.next().await).clone();
    assert_eq!(reminder.title, "An invitation is still waiting for your answer");
    assert_eq!(
        (
            reminder.body.as_str(),
            reminder.actor_id.as_str(),
            reminder.actor_name.as_str()
        ),
        ("", "", "")
    );
}
