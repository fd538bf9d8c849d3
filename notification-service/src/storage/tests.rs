//! The store's transactions: an event batch's effects and the applied
//! sequence commit together or not at all, duplicates are skipped, and a due
//! notification fires once. Each test reopens the folder, as a restart does.

use std::{path::Path, time::Duration};

use super::Store;
use crate::{
    domain::{Delivery, Event, EventKind, Preferences, Settings, Timestamp},
    error::Error,
};

const SOURCE: &str = "invitation-service";
const NOW: Timestamp = Timestamp::from_millis(1_767_225_600_000);
const INTERVAL: Duration = Duration::from_secs(15 * 60);
const SETTINGS: Settings = Settings {
    undo_window: Duration::ZERO,
    default_digest_interval: INTERVAL,
};

/// Settings that hold a new invitation's notification for an undo window.
const UNDO: Duration = Duration::from_secs(10);
const HELD: Settings = Settings {
    undo_window: UNDO,
    ..SETTINGS
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
    let ids: Vec<&str> = inbox.items.iter().map(|n| n.invitation_ids[0].as_str()).collect();
    assert_eq!(ids, ["inv-2", "inv-1"]);
    assert_eq!(store.unread_count("bob").unwrap(), 2);
    assert_eq!(store.updates_after("bob", 0).unwrap().map(|u| u.len()), Some(2));
    assert_eq!(
        store.delivery_status("inv-1", "alice", NOW).unwrap(),
        Some((true, None))
    );
    assert!(store.pending.is_empty(), "delivered at once, never held");
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
    let Error::SequenceGap { expected, got } = refused else {
        panic!("not a gap: {refused:?}");
    };
    assert_eq!((expected, got), (3, 4));

    let nothing_of_the_batch = |store: &Store| {
        assert_eq!(store.applied(SOURCE).unwrap(), 1);
        assert_eq!(store.inbox_page("bob", false, None, 10).unwrap().items, []);
        assert_eq!(store.unread_count("bob").unwrap(), 0);
        assert_eq!(store.last_cursor("bob").unwrap(), 0);
        assert_eq!(store.delivery_status("inv-2", "alice", NOW).unwrap(), None);
        assert!(store.delivery_status("inv-1", "alice", NOW).unwrap().is_some());
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
    assert_eq!(store.fire(&due[0], due_at).unwrap().len(), 1);
    assert_eq!(
        store.fire(&due[0], due_at).unwrap(),
        [],
        "a second firing finds nothing to do"
    );
    assert_eq!(store.due(due_at, 10).unwrap(), []);

    let store = reopen(store, dir.path());
    assert_eq!(store.due(due_at.plus(INTERVAL), 10).unwrap(), []);
    let inbox = store.inbox_page("dan", false, None, 10).unwrap();
    assert_eq!(inbox.items.len(), 1);
    assert_eq!(inbox.items[0].item_count, 2);
    assert_eq!(store.last_cursor("dan").unwrap(), 1);
}

#[test]
fn held_notifications_and_digests_of_an_earlier_version_carry_on_beside_new_ones() {
    use super::{keys, records};
    use crate::domain::{Detail, Item, Topic};

    let dir = tempfile::tempdir().unwrap();
    let store = store_with_immediate_bob(dir.path());
    let (undo, held) = (UNDO, HELD);
    let due_at = NOW.plus(undo);
    // A notification an earlier version held, numbered per user from 1.
    let mut old = records::NotificationRecord {
        number: 1,
        topic: u32::from(records::topic_code(Topic::InvitationReceived)),
        items: Vec::new(),
        state: records::PENDING,
        due_ms: due_at.as_millis(),
        delivered_ms: 0,
        read: false,
        cursor: 0,
        digest: false,
    };
    old.push(&Item::new("inv-old", Detail::Full, "alice", "Alice", "Hello"));
    store
        .pending
        .insert(keys::user_number("bob", 1), records::encode(&old))
        .unwrap();
    store.due.insert(keys::due(old.due_ms, "bob", 1), &[]).unwrap();
    // ... and an open digest of the same kind for dan.
    let mut digest = records::NotificationRecord {
        digest: true,
        due_ms: NOW.plus(INTERVAL).as_millis(),
        items: Vec::new(),
        ..old.clone()
    };
    digest.push(&Item::new("inv-digest", Detail::Full, "alice", "Alice", "Hello"));
    store
        .pending
        .insert(keys::user_number("dan", 1), records::encode(&digest))
        .unwrap();
    store.due.insert(keys::due(digest.due_ms, "dan", 1), &[]).unwrap();
    let topic = records::topic_code(Topic::InvitationReceived);
    store
        .open_digests
        .insert(keys::user_topic("dan", topic), &1u64.to_be_bytes()[..])
        .unwrap();

    // ... and a due-time entry whose record is gone, for eve.
    store.due.insert(keys::due(old.due_ms, "eve", 7), &[]).unwrap();

    // Opened by this version, which keeps pending records elsewhere.
    let store = reopen(store, dir.path());
    let events = [
        sent(1, "inv-1", "bob"),
        sent(2, "inv-2", "bob"),
        sent(3, "inv-3", "bob"),
        sent(4, "inv-4", "dan"),
    ];
    store.apply_events(SOURCE, &events[..2], &held, NOW).unwrap();
    let store = reopen(store, dir.path());
    store.apply_events(SOURCE, &events[2..], &held, NOW).unwrap();

    // dan's new invitation joined the open digest of the earlier version.
    let digest_due = NOW.plus(INTERVAL);
    let due = store.due(digest_due, 10).unwrap();
    let dans: Vec<_> = due.iter().filter(|d| d.user == "dan").collect();
    assert_eq!(dans.len(), 1, "{due:?}");
    assert_eq!(store.fire(dans[0], digest_due).unwrap().len(), 1);
    let inbox = store.inbox_page("dan", false, None, 10).unwrap();
    assert_eq!(inbox.items.len(), 1);
    let mut ids = inbox.items[0].invitation_ids.clone();
    ids.sort_unstable();
    assert_eq!(ids, ["inv-4", "inv-digest"]);

    let due = store.due(due_at, 10).unwrap();
    let (eves, bobs): (Vec<_>, Vec<_>) = due.iter().partition(|d| d.user == "eve");
    let mut numbers: Vec<u64> = bobs.iter().map(|d| d.number).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 4, "four held notifications, four numbers: {due:?}");
    for notification in bobs {
        assert_eq!(store.fire(notification, due_at).unwrap().len(), 1);
    }
    assert_eq!(eves.len(), 1);
    assert_eq!(store.fire(eves[0], due_at).unwrap(), [], "nothing to deliver");
    assert_eq!(store.due(due_at, 10).unwrap(), [], "and nothing left to fire");
    let inbox = store.inbox_page("bob", false, None, 10).unwrap();
    let mut ids: Vec<&str> = inbox.items.iter().map(|n| n.invitation_ids[0].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["inv-1", "inv-2", "inv-3", "inv-old"]);
    assert!(store.pending.is_empty());
}

#[test]
fn a_location_kept_by_an_earlier_version_moves_at_open_and_a_withdrawal_still_finds_it() {
    use super::{keys, records};

    let dir = tempfile::tempdir().unwrap();
    let store = store_with_immediate_bob(dir.path());
    let (undo, held) = (UNDO, HELD);
    store
        .apply_events(SOURCE, &[sent(1, "inv-1", "bob")], &held, NOW)
        .unwrap();
    // Put the held notification's location where an earlier version kept it.
    let due = store.due(NOW.plus(undo), 10).unwrap();
    assert_eq!(due.len(), 1);
    let record_key = keys::prefix("inv-1");
    let mut delivery: records::DeliveryRecord =
        records::decode("delivery", &store.delivery.get(&record_key).unwrap().unwrap()).unwrap();
    delivery.set_location(None);
    store.delivery.insert(&record_key, records::encode(&delivery)).unwrap();
    let mut legacy = vec![0];
    legacy.extend_from_slice(&due[0].number.to_be_bytes());
    store
        .by_invitation
        .insert(keys::invitation_user("inv-1", "bob"), legacy)
        .unwrap();

    let store = reopen(store, dir.path());
    assert!(store.by_invitation.is_empty(), "moved at open");
    let withdrawn = Event {
        kind: EventKind::Withdrawn { note: String::new() },
        ..sent(2, "inv-1", "bob")
    };
    store.apply_events(SOURCE, &[withdrawn], &held, NOW).unwrap();

    assert!(store.pending.is_empty(), "the held notification is gone");
    assert_eq!(store.due(NOW.plus(undo), 10).unwrap(), []);
    assert!(store.inbox_page("bob", false, None, 10).unwrap().items.is_empty());
}
