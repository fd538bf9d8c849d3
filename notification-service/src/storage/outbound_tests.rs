//! The outbound queues: a delivery queues its mail and push in the same
//! transaction, a withdrawal before any try takes them back without a
//! trace, a withdrawal after a try queues a retraction behind the delivery,
//! a revision rewrites a message no try has begun, and each user's queue
//! goes out in order.

use std::time::Duration;

use super::{Outcome, Store};
use crate::domain::{
    Channel, ChannelState, Channels, Delivery, EmailAddress, Event, EventKind, Preferences, Settings, Timestamp,
    UpdateKind,
};

const SOURCE: &str = "invitation-service";
const NOW: Timestamp = Timestamp::from_millis(1_767_225_600_000);
const INTERVAL: Duration = Duration::from_secs(15 * 60);
const LEASE: Duration = Duration::from_secs(60);
const ALL: Channels = Channels::IN_APP.with(Channel::Email).with(Channel::Push);
const SETTINGS: Settings = Settings {
    undo_window: Duration::ZERO,
    default_digest_interval: INTERVAL,
    channels: ALL,
    max_immediate_per_hour: 20,
};

fn event(sequence: u64, invitation: &str, kind: EventKind) -> Event {
    Event {
        sequence,
        invitation_id: invitation.to_owned(),
        sender_id: "alice".to_owned(),
        sender_name: "Alice".to_owned(),
        recipient_id: "bob".to_owned(),
        message: "Hello".to_owned(),
        kind,
        occurred_at: NOW,
    }
}

fn withdrawn() -> EventKind {
    EventKind::Withdrawn { note: String::new() }
}

/// Bob hears of new invitations on every channel, at once or in digests.
fn store(dir: &std::path::Path, delivery: Delivery) -> Store {
    let store = Store::open(dir).unwrap();
    let mut bob = Preferences {
        email_address: Some(EmailAddress::parse("bob@example.com").unwrap()),
        ..Preferences::default()
    };
    bob.invitation_received.delivery = delivery;
    bob.invitation_received.channels = ALL;
    store.put_preferences("bob", &bob).unwrap();
    store
}

fn apply(store: &Store, events: &[Event], now: Timestamp) {
    store.apply_events(SOURCE, events, &SETTINGS, now).unwrap();
}

fn channel_state(store: &Store, invitation: &str, channel: Channel) -> (ChannelState, Option<Timestamp>) {
    let status = store
        .delivery_status(invitation, "alice", ALL, NOW)
        .unwrap()
        .expect("alice's invitation");
    let (_, state, at) = status.channels.into_iter().find(|(c, _, _)| *c == channel).unwrap();
    (state, at)
}

fn queued(store: &Store, channel: Channel) -> u64 {
    store.outbound_figures(channel, NOW).unwrap().0
}

#[test]
fn a_delivery_queues_mail_and_push_which_are_tried_once_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), Delivery::Immediate);
    apply(&store, &[event(1, "inv-1", EventKind::Sent)], NOW);
    for channel in [Channel::Email, Channel::Push] {
        assert_eq!(queued(&store, channel), 1);
        assert_eq!(
            channel_state(&store, "inv-1", channel),
            (ChannelState::Pending, Some(NOW))
        );
    }
    assert_eq!(
        channel_state(&store, "inv-1", Channel::InApp),
        (ChannelState::Sent, Some(NOW))
    );

    let due = store.due_jobs(Channel::Email, NOW, 10).unwrap();
    let jobs = store.begin_tries(&due, NOW, LEASE).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].email.as_str(), jobs[0].attempts), ("bob@example.com", 1));
    assert!(matches!(&jobs[0].update.kind, UpdateKind::Delivered(n) if n.items().len() == 1));
    assert_eq!(
        store.due_jobs(Channel::Email, NOW, 10).unwrap(),
        [],
        "leased while tried"
    );
    assert_eq!(store.begin_tries(&due, NOW, LEASE).unwrap(), [], "a try begins once");

    let later = NOW.plus(Duration::from_secs(1));
    store.finish_try(&jobs[0], Outcome::Sent, later).unwrap();
    assert_eq!(queued(&store, Channel::Email), 0);
    assert_eq!(
        channel_state(&store, "inv-1", Channel::Email),
        (ChannelState::Sent, Some(later))
    );
    assert_eq!(store.due_jobs(Channel::Email, later.plus(LEASE), 10).unwrap(), []);
    assert_eq!(queued(&store, Channel::Push), 1, "channels are independent");
}

#[test]
fn a_withdrawal_before_any_try_takes_everything_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), Delivery::Immediate);
    apply(
        &store,
        &[event(1, "inv-1", EventKind::Sent), event(2, "inv-1", withdrawn())],
        NOW,
    );
    for channel in [Channel::Email, Channel::Push] {
        assert_eq!(queued(&store, channel), 0, "{channel:?}");
        assert_eq!(store.due_jobs(channel, NOW.plus(LEASE), 10).unwrap(), []);
        assert_eq!(channel_state(&store, "inv-1", channel), (ChannelState::None, None));
    }
}

#[test]
fn a_withdrawal_after_a_try_began_queues_a_retraction_behind_the_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), Delivery::Immediate);
    apply(&store, &[event(1, "inv-1", EventKind::Sent)], NOW);
    let due = store.due_jobs(Channel::Push, NOW, 10).unwrap();
    let delivery = store.begin_tries(&due, NOW, LEASE).unwrap().remove(0);
    apply(&store, &[event(2, "inv-1", withdrawn())], NOW);
    assert_eq!(queued(&store, Channel::Push), 2);
    assert_eq!(
        store.due_jobs(Channel::Push, NOW, 10).unwrap(),
        [],
        "the retraction waits for the delivery"
    );
    // A mail whose try has not begun is taken back; one cannot be recalled.
    assert_eq!(queued(&store, Channel::Email), 0);

    // The delivery's try failed for now: it goes first again, later.
    let retry = NOW.plus(Duration::from_secs(5));
    store.finish_try(&delivery, Outcome::RetryAt(retry), NOW).unwrap();
    assert_eq!(store.due_jobs(Channel::Push, NOW, 10).unwrap(), []);
    let due = store.due_jobs(Channel::Push, retry, 10).unwrap();
    let again = store.begin_tries(&due, retry, LEASE).unwrap().remove(0);
    assert_eq!(
        (again.id.as_str(), again.attempts),
        (delivery.id.as_str(), 2),
        "the same id on every try"
    );
    store.finish_try(&again, Outcome::Sent, retry).unwrap();

    let due = store.due_jobs(Channel::Push, retry, 10).unwrap();
    let retraction = store.begin_tries(&due, retry, LEASE).unwrap().remove(0);
    assert!(
        matches!(retraction.update.kind, UpdateKind::Retracted(_)),
        "{retraction:?}"
    );
    assert_ne!(retraction.id, delivery.id);
    store.finish_try(&retraction, Outcome::Sent, retry).unwrap();
    assert_eq!(queued(&store, Channel::Push), 0);
}

/// Bob's digest of two invitations, delivered: its store, and when.
fn delivered_digest(dir: &std::path::Path) -> (Store, Timestamp) {
    let store = store(dir, Delivery::Digest);
    apply(
        &store,
        &[event(1, "inv-1", EventKind::Sent), event(2, "inv-2", EventKind::Sent)],
        NOW,
    );
    assert_eq!(queued(&store, Channel::Email), 0, "nothing before the digest goes out");
    let due_at = NOW.plus(INTERVAL);
    for due in store.due(due_at, 10).unwrap() {
        store.fire(&due, &SETTINGS, due_at).unwrap();
    }
    (store, due_at)
}

#[test]
fn a_revision_rewrites_a_message_no_try_has_begun() {
    let dir = tempfile::tempdir().unwrap();
    let (store, due_at) = delivered_digest(dir.path());
    assert_eq!(queued(&store, Channel::Email), 1, "one mail for the digest");
    apply(&store, &[event(3, "inv-1", withdrawn())], due_at);
    assert_eq!(queued(&store, Channel::Email), 1);
    assert_eq!(queued(&store, Channel::Push), 1, "no separate revision");
    for channel in [Channel::Email, Channel::Push] {
        let due = store.due_jobs(channel, due_at, 10).unwrap();
        let job = store.begin_tries(&due, due_at, LEASE).unwrap().remove(0);
        let UpdateKind::Delivered(n) = &job.update.kind else {
            panic!("{job:?}")
        };
        assert_eq!(n.invitation_ids().collect::<Vec<_>>(), ["inv-2"], "{channel:?}");
        assert_eq!(channel_state(&store, "inv-1", channel), (ChannelState::None, None));
        assert_eq!(channel_state(&store, "inv-2", channel).0, ChannelState::Pending);
    }
}

#[test]
fn a_crash_inside_a_try_leaves_the_message_to_be_tried_again_after_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), Delivery::Immediate);
    apply(&store, &[event(1, "inv-1", EventKind::Sent)], NOW);
    let due = store.due_jobs(Channel::Email, NOW, 10).unwrap();
    let first = store.begin_tries(&due, NOW, LEASE).unwrap().remove(0);
    store.db().flush().unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.due_jobs(Channel::Email, NOW, 10).unwrap(), []);
    let due = store.due_jobs(Channel::Email, NOW.plus(LEASE), 10).unwrap();
    let again = store.begin_tries(&due, NOW.plus(LEASE), LEASE).unwrap().remove(0);
    assert_eq!((again.id, again.attempts), (first.id, 2));
}

#[test]
fn a_revision_after_a_try_began_is_pushed_as_revised_and_not_mailed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, due_at) = delivered_digest(dir.path());
    let mut begun = Vec::new();
    for channel in [Channel::Email, Channel::Push] {
        let due = store.due_jobs(channel, due_at, 10).unwrap();
        begun.extend(store.begin_tries(&due, due_at, LEASE).unwrap());
    }
    apply(&store, &[event(3, "inv-1", withdrawn())], due_at);
    assert_eq!(
        queued(&store, Channel::Email),
        1,
        "a mail cannot be changed: nothing more"
    );
    assert_eq!(
        queued(&store, Channel::Push),
        2,
        "the revision waits behind the delivery"
    );
    for job in &begun {
        store.finish_try(job, Outcome::Sent, due_at).unwrap();
    }
    let due = store.due_jobs(Channel::Push, due_at, 10).unwrap();
    let revision = store.begin_tries(&due, due_at, LEASE).unwrap().remove(0);
    let UpdateKind::Revised(n) = &revision.update.kind else {
        panic!("{revision:?}")
    };
    assert_eq!(n.invitation_ids().collect::<Vec<_>>(), ["inv-2"]);
    assert_eq!(store.due_jobs(Channel::Email, due_at.plus(LEASE), 10).unwrap(), []);
}
