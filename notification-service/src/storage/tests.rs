//! The store's transactions: an event batch's effects and the applied
//! sequence commit together or not at all, duplicates are skipped, and a due
//! notification fires once. Each test reopens the folder, as a restart does.

use std::{path::Path, time::Duration};

use super::{Store, StoreError};
use crate::domain::{Channels, Delivery, Event, EventKind, Preferences, Settings, Timestamp};

const SOURCE: &str = "invitation-service";
const NOW: Timestamp = Timestamp::from_millis(1_767_225_600_000);
const INTERVAL: Duration = Duration::from_secs(15 * 60);
const SETTINGS: Settings = Settings {
    undo_window: Duration::ZERO,
    default_digest_interval: INTERVAL,
    channels: Channels::IN_APP,
    max_immediate_per_hour: 20,
};

fn sent(sequence: u64, invitation: &str, recipient: &str) -> Event {
    Event {
        sequence,
        invitation_id: invitation.to_owned(),
        sender_id: "alice".to_owned(),
        sender_name: "Alice".to_owned(),
        recipient_id: recipient.to_owned(),
        message: "Hello".to_owned(),
        kind: EventKind::Sent,
        occurred_at: NOW,
    }
}

/// Flushes (as the service does before it acknowledges), closes, and opens
/// the folder again; sled may need a moment to release its lock.
fn reopen(store: Store, path: &Path) -> Store {
    store.db().flush().unwrap();
    drop(store);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match Store::open(path) {
            Ok(store) => return store,
            Err(service_kit::storage::OpenError::Locked) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("reopening fails: {e}"),
        }
    }
}

/// A store where `bob` is told of new invitations at once.
fn store_with_immediate_bob(path: &Path) -> Store {
    let store = Store::open(path).unwrap();
    let mut bob = Preferences::default();
    bob.invitation_received.delivery = Delivery::Immediate;
    store.put_preferences("bob", &bob).unwrap();
    store
}

#[test]
fn effects_and_the_applied_sequence_survive_a_reopen_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_immediate_bob(dir.path());
    let applied = store
        .apply_events(
            SOURCE,
            &[sent(1, "inv-1", "bob"), sent(2, "inv-2", "bob")],
            &SETTINGS,
            NOW,
        )
        .unwrap();
    assert_eq!(applied.applied_through, 2);
    assert_eq!(applied.updates.len(), 2);

    let store = reopen(store, dir.path());
    assert_eq!(store.applied(SOURCE).unwrap(), 2);
    let inbox = store.inbox_page("bob", false, None, 10).unwrap();
    let ids: Vec<&str> = inbox
        .items
        .iter()
        .map(|n| n.items()[0].invitation_id.as_str())
        .collect();
    assert_eq!(ids, ["inv-2", "inv-1"]);
    assert_eq!(store.unread_count("bob").unwrap(), 2);
    assert_eq!(store.updates_after("bob", 0).unwrap().map(|u| u.len()), Some(2));
    let status = store
        .delivery_status("inv-1", "alice", Channels::IN_APP, NOW)
        .unwrap()
        .unwrap();
    assert_eq!((status.delivered, status.deliver_at), (true, None));
    assert!(store.due.is_empty(), "nothing left to fire");
}

#[test]
fn a_batch_with_a_gap_leaves_neither_effects_nor_progress() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_immediate_bob(dir.path());
    store
        .apply_events(SOURCE, &[sent(1, "inv-1", "carol")], &SETTINGS, NOW)
        .unwrap();
    let refused = store
        .apply_events(
            SOURCE,
            &[sent(2, "inv-2", "bob"), sent(4, "inv-4", "bob")],
            &SETTINGS,
            NOW,
        )
        .unwrap_err();
    let StoreError::SequenceGap { expected, got } = refused else {
        panic!("not a gap: {refused:?}");
    };
    assert_eq!((expected, got), (3, 4));

    let nothing_of_the_batch = |store: &Store| {
        assert_eq!(store.applied(SOURCE).unwrap(), 1);
        assert_eq!(store.inbox_page("bob", false, None, 10).unwrap().items, []);
        assert_eq!(store.unread_count("bob").unwrap(), 0);
        assert_eq!(store.last_cursor("bob").unwrap(), 0);
        assert_eq!(
            store.delivery_status("inv-2", "alice", Channels::IN_APP, NOW).unwrap(),
            None
        );
        assert!(
            store
                .delivery_status("inv-1", "alice", Channels::IN_APP, NOW)
                .unwrap()
                .is_some()
        );
    };
    nothing_of_the_batch(&store);
    nothing_of_the_batch(&reopen(store, dir.path()));
}

#[test]
fn events_at_or_below_the_applied_sequence_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_immediate_bob(dir.path());
    store
        .apply_events(
            SOURCE,
            &[sent(1, "inv-1", "bob"), sent(2, "inv-2", "bob")],
            &SETTINGS,
            NOW,
        )
        .unwrap();
    let again = store
        .apply_events(
            SOURCE,
            &[
                sent(1, "inv-1", "bob"),
                sent(2, "inv-2", "bob"),
                sent(3, "inv-3", "bob"),
            ],
            &SETTINGS,
            NOW,
        )
        .unwrap();
    assert_eq!(again.applied_through, 3);
    assert_eq!(again.updates.len(), 1, "only the new event had effects");
    let only_old = store
        .apply_events(SOURCE, &[sent(2, "inv-2", "bob")], &SETTINGS, NOW)
        .unwrap();
    assert_eq!((only_old.applied_through, only_old.updates.len()), (3, 0));
    let store = reopen(store, dir.path());
    assert_eq!(store.unread_count("bob").unwrap(), 3);
    assert_eq!(store.inbox_page("bob", false, None, 10).unwrap().items.len(), 3);
}

#[test]
fn a_due_notification_fires_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .apply_events(
            SOURCE,
            &[sent(1, "inv-1", "dan"), sent(2, "inv-2", "dan")],
            &SETTINGS,
            NOW,
        )
        .unwrap();
    assert_eq!(store.due(NOW, 10).unwrap(), [], "a digest waits for its interval");
    let due_at = NOW.plus(INTERVAL);
    let store = reopen(store, dir.path());
    let due = store.due(due_at, 10).unwrap();
    assert_eq!(due.len(), 1, "one digest: {due:?}");
    assert_eq!(store.fire(&due[0], &SETTINGS, due_at).unwrap().len(), 1);
    assert_eq!(
        store.fire(&due[0], &SETTINGS, due_at).unwrap(),
        [],
        "a second firing finds nothing to do"
    );
    assert_eq!(store.due(due_at, 10).unwrap(), []);

    let store = reopen(store, dir.path());
    assert_eq!(store.due(due_at.plus(INTERVAL), 10).unwrap(), []);
    let inbox = store.inbox_page("dan", false, None, 10).unwrap();
    assert_eq!(inbox.items.len(), 1);
    assert_eq!(inbox.items[0].items().len(), 2);
    assert_eq!(store.last_cursor("dan").unwrap(), 1);
}

/// The JetStream path: a partition applies only its own users' effects, an
/// acceptance in the sender's partition tells the sender, copies at or
/// below the position change nothing, gaps are expected, and the position
/// survives a reopen.
#[test]
fn a_partition_applies_its_users_effects_once_and_keeps_its_position() {
    use service_kit::partition::partition_of;
    const COUNT: u32 = 2;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let senders = partition_of("alice", COUNT);
    let recipient = ["bob", "carol", "dave", "erin", "frank"]
        .into_iter()
        .find(|u| partition_of(u, COUNT) != senders)
        .expect("a user in the other partition");
    let recipients = partition_of(recipient, COUNT);
    let mut immediate = Preferences::default();
    immediate.invitation_received.delivery = Delivery::Immediate;
    store.put_preferences(recipient, &immediate).unwrap();
    let accepted = Event {
        sequence: 2,
        kind: EventKind::Accepted,
        ..sent(2, "inv-1", recipient)
    };
    let inbox = |store: &Store, user: &str| store.inbox_page(user, false, None, 10).unwrap().items.len();

    let applied = store
        .apply_partition(
            recipients,
            COUNT,
            &[sent(1, "inv-1", recipient), accepted.clone()],
            12,
            &SETTINGS,
            NOW,
        )
        .unwrap();
    assert_eq!(applied.applied_through, 2);
    assert_eq!(inbox(&store, recipient), 1, "the recipient was told of the invitation");
    assert_eq!(
        inbox(&store, "alice"),
        0,
        "the sender's notice is for the sender's partition"
    );

    let applied = store
        .apply_partition(senders, COUNT, std::slice::from_ref(&accepted), 13, &SETTINGS, NOW)
        .unwrap();
    assert_eq!((applied.applied_through, applied.updates.len()), (2, 1));
    assert_eq!(inbox(&store, "alice"), 1, "alice hears of the acceptance once");
    assert_eq!(inbox(&store, recipient), 1);

    // Redelivered or republished copies change nothing but the position.
    let again = store
        .apply_partition(
            recipients,
            COUNT,
            &[sent(1, "inv-1", recipient), accepted],
            14,
            &SETTINGS,
            NOW,
        )
        .unwrap();
    assert_eq!((again.applied_through, again.updates.len()), (2, 0));
    assert_eq!(inbox(&store, recipient), 1);

    // A partition sees only some sequences: 3 and 4 went elsewhere.
    let later = store
        .apply_partition(recipients, COUNT, &[sent(5, "inv-5", recipient)], 15, &SETTINGS, NOW)
        .unwrap();
    assert_eq!(later.applied_through, 5);
    let store = reopen(store, dir.path());
    assert_eq!(store.partition_position(recipients).unwrap(), (15, 5));
    assert_eq!(store.partition_position(senders).unwrap(), (13, 2));
    assert_eq!(inbox(&store, recipient), 2);
}
