//! Storage tests against a real sled folder: the indexes agree with the
//! records after every kind of change, refused requests write nothing, the
//! outbox stays contiguous across a reopen, and the time-ordered reads
//! (expiry, idempotency pruning, pages) return exactly what they should.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use proto::invitations::v1::invitation_event::Kind;

use super::{Op, OpOutcome, SendOutcome, Store, StoreError, TxOutcome, keys, records, write::OUTBOX_SEQUENCE};
use crate::domain::{
    Action, DomainError, IdempotencyKey, Invitation, InvitationId, Note, Pair, Policy, Reminders, SendRequest, State,
    Timestamp, UserId,
};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A fixed, realistic starting time.
const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

pub(super) fn user(id: &str) -> UserId {
    UserId::parse("user", id).expect("valid test user id")
}

/// A small policy, so limits are reached in a few steps.
pub(super) fn small_policy() -> Policy {
    Policy {
        max_note_chars: 300,
        reinvite_cooldown: 2 * DAY,
        weekly_limit: 4,
        pending_ttl: 3 * DAY,
        reminders: Reminders::new(vec![DAY, 2 * DAY]).expect("increasing offsets"),
    }
}

pub(super) fn request(from: &str, to: &str, message: &str) -> SendRequest {
    SendRequest {
        sender: user(from),
        sender_name: String::new(),
        recipient: user(to),
        message: Note::parse("message", message, 300).expect("valid test note"),
    }
}

/// Splits `[len][user bytes] ++ rest` into the user id and the rest.
fn split_user(key: &[u8]) -> (String, &[u8]) {
    let (&len, rest) = key.split_first().expect("a per-user key is not empty");
    let (id, rest) = rest.split_at(usize::from(len));
    (String::from_utf8(id.to_vec()).expect("user ids are utf-8"), rest)
}

fn id_from(bytes: &[u8]) -> InvitationId {
    InvitationId::from_bytes(bytes.try_into().expect("16-byte invitation id"))
}

fn entries(tree: &sled::Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
    tree.iter()
        .map(|entry| {
            let (k, v) = entry.expect("tree scan");
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Checks that an index holds exactly `expected` keys, each with an empty value.
fn assert_index(name: &str, tree: &sled::Tree, expected: &BTreeSet<Vec<u8>>) {
    for (_, value) in entries(tree) {
        assert!(value.is_empty(), "{name}: index entry with a value");
    }
    assert_index_keys(name, tree, expected);
}

/// Checks that an index holds exactly `expected` keys.
fn assert_index_keys(name: &str, tree: &sled::Tree, expected: &BTreeSet<Vec<u8>>) {
    let actual: BTreeSet<Vec<u8>> = entries(tree).into_iter().map(|(key, _)| key).collect();
    let missing: Vec<_> = expected.difference(&actual).collect();
    let stray: Vec<_> = actual.difference(expected).collect();
    assert!(
        missing.is_empty() && stray.is_empty(),
        "{name}: missing entries {missing:?}, entries naming no matching record {stray:?}"
    );
}

/// Scans every tree and asserts that the indexes, pairs, connections,
/// activity counts, idempotency records and the outbox agree with the
/// invitation records.
pub(super) fn check_invariants(store: &Store) {
    let mut invitations: BTreeMap<InvitationId, Invitation> = BTreeMap::new();
    for (key, value) in entries(&store.invitations) {
        let inv = records::decode_invitation(&value).expect("invitation decodes");
        assert_eq!(key, inv.id.as_bytes().to_vec(), "invitation stored under its id");
        invitations.insert(inv.id, inv);
    }

    // Each index, as the records say it must be: an entry for a record iff
    // the record's state calls for one. Comparing whole sets covers both
    // directions (no missing entry, no entry without its record).
    let mut sent = BTreeSet::new();
    let mut received = BTreeSet::new();
    let mut open = BTreeSet::new();
    let mut expiry = BTreeSet::new();
    let mut open_count: HashMap<UserId, u32> = HashMap::new();
    for inv in invitations.values() {
        sent.insert(keys::user_invitation(&inv.sender, &inv.id));
        if inv.state == State::Pending {
            received.insert(keys::user_invitation(&inv.recipient, &inv.id));
        }
        if inv.state.is_open() {
            open.insert(keys::user_invitation(&inv.sender, &inv.id));
            expiry.insert(keys::due(inv.expires_at, &inv.id).to_vec());
            *open_count.entry(inv.sender.clone()).or_default() += 1;
        }
    }
    assert_index_keys("sent_by_user", &store.sent, &sent);
    // The sender's index holds a copy of each record, byte for byte.
    for (key, value) in entries(&store.sent) {
        let id = id_from(&key[key.len() - 16..]);
        assert_eq!(
            value,
            records::encode_invitation(&invitations[&id]),
            "sent_by_user: the copy of {id} differs from its record"
        );
    }
    assert_index("received_by_user", &store.received, &received);
    assert_index("open_by_sender", &store.open_by_sender, &open);
    assert_index("expiry", &store.expiry, &expiry);

    // Reminders: at most one filed per invitation, each naming a stored
    // invitation, due after its send and before its expiry, with an
    // ordinal from 1. (An entry may outlive its invitation's pending
    // state: it is dropped when it falls due.)
    let mut reminded = BTreeSet::new();
    for (key, value) in entries(&store.reminders) {
        let id = id_from(&key[8..]);
        let due = keys::due_time(&key).expect("reminder key has a due time");
        let inv = invitations
            .get(&id)
            .unwrap_or_else(|| panic!("reminder names missing invitation {id}"));
        assert!(reminded.insert(id), "two reminders filed for {id}");
        assert!(
            inv.created_at < due && due < inv.expires_at,
            "reminder of {id} due outside its life"
        );
        let ordinal = u32::from_be_bytes(value.as_slice().try_into().expect("a 4-byte ordinal"));
        assert!(ordinal >= 1, "reminder ordinals start at 1");
    }

    // Pairs: the pending one is an open invitation of that pair, every open
    // invitation is its pair's pending one, and connections are listed in
    // both directions exactly when the pair is connected.
    let mut pending_of_pairs = BTreeSet::new();
    let mut connection_keys = BTreeSet::new();
    for (key, value) in entries(&store.pairs) {
        let (low, rest) = split_user(&key);
        let (high, rest) = split_user(rest);
        assert!(rest.is_empty(), "pair key has nothing after the two users");
        assert!(low < high, "pair key names its users in order, once each");
        let (low, high) = (user(&low), user(&high));
        let pair = records::decode_pair(&low, &high, &value).expect("pair decodes");
        if let Some((id, sender)) = pair.pending() {
            let inv = invitations
                .get(id)
                .unwrap_or_else(|| panic!("pair {low}/{high} names missing invitation {id}"));
            assert!(
                inv.state.is_open(),
                "pair {low}/{high} names {id}, which is {}",
                inv.state
            );
            assert_eq!(&inv.sender, sender, "pair names the invitation's sender");
            let mut users = [inv.sender.clone(), inv.recipient.clone()];
            users.sort();
            assert_eq!(
                users,
                [low.clone(), high.clone()],
                "pending invitation belongs to its pair"
            );
            assert!(pair.connected_at().is_none(), "a connected pair has nothing pending");
            pending_of_pairs.insert(*id);
        }
        if let Some(at) = pair.connected_at() {
            connection_keys.insert(keys::connection(&low, at, &high));
            connection_keys.insert(keys::connection(&high, at, &low));
        }
    }
    let open_ids: BTreeSet<InvitationId> = invitations
        .values()
        .filter(|inv| inv.state.is_open())
        .map(|inv| inv.id)
        .collect();
    assert_eq!(
        open_ids, pending_of_pairs,
        "the open invitations are their pairs' pending ones"
    );
    assert_index("connections", &store.connections, &connection_keys);

    // Activity: the open count of each user is their number of open invitations.
    let mut users_with_activity = BTreeSet::new();
    for (key, value) in entries(&store.activity) {
        let (who, rest) = split_user(&key);
        assert!(rest.is_empty(), "activity key is a user prefix");
        let who = user(&who);
        let activity = records::decode_activity(&value).expect("activity decodes");
        assert_eq!(
            activity.pending_sent,
            open_count.get(&who).copied().unwrap_or(0),
            "pending_sent of {who}"
        );
        assert!(activity.sends.is_sorted(), "sends of {who} are oldest first");
        assert!(
            activity.withdrawals.is_sorted(),
            "withdrawals of {who} are oldest first"
        );
        users_with_activity.insert(who);
    }
    for who in open_count.keys() {
        assert!(
            users_with_activity.contains(who),
            "{who} has open invitations but no activity"
        );
    }

    // Idempotency: each record has exactly one age entry, with its creation
    // time, and names an invitation its key's user sent.
    let mut ages = BTreeSet::new();
    for (key, value) in entries(&store.idempotency) {
        let record = records::decode_idempotency(&value).expect("idempotency record decodes");
        let (sender, _) = split_user(&key);
        let inv = invitations
            .get(&id_from(&record.invitation_id))
            .expect("idempotency record names an existing invitation");
        assert_eq!(
            inv.sender.as_str(),
            sender,
            "idempotency record of the invitation's sender"
        );
        assert_eq!(
            inv.recipient.as_str(),
            record.recipient,
            "idempotency record's recipient"
        );
        ages.insert(keys::idempotency_by_age(
            Timestamp::from_millis(record.created_ms),
            &key,
        ));
    }
    assert_index("idempotency_by_age", &store.idempotency_by_age, &ages);

    // Outbox: sequences 1..=N, N in meta, each event carrying its sequence.
    let outbox = entries(&store.outbox);
    for (i, (key, value)) in outbox.iter().enumerate() {
        let expected = u64::try_from(i).expect("small") + 1;
        assert_eq!(
            keys::leading_u64(key),
            Some(expected),
            "outbox sequences are contiguous from 1"
        );
        assert_eq!(key.len(), 8, "outbox key is a sequence");
        let event = records::decode_event(value).expect("outbox event decodes");
        assert_eq!(event.sequence, expected, "event carries the sequence of its key");
        let snapshot = event.invitation.expect("event carries its invitation");
        let id = InvitationId::parse(&snapshot.id).expect("event names an invitation id");
        assert!(invitations.contains_key(&id), "event names an existing invitation");
        assert!(event.kind.is_some(), "event has a kind");
    }
    let n = u64::try_from(outbox.len()).expect("small");
    let meta = entries(&store.meta);
    if n == 0 {
        assert!(meta.is_empty(), "no sequence before the first event");
    } else {
        assert_eq!(
            meta,
            vec![(OUTBOX_SEQUENCE.to_vec(), keys::sequence(n).to_vec())],
            "meta holds the last sequence"
        );
    }
    assert_eq!(store.last_sequence().expect("last sequence"), n);
}

/// A tree's name and its entries.
pub(super) type TreeSnapshot = (Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

/// Every tree of the database, byte for byte.
pub(super) fn snapshot(store: &Store) -> Vec<TreeSnapshot> {
    let db = store.db();
    let mut names = db.tree_names();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let tree = db.open_tree(&name).expect("open tree");
            (name.to_vec(), entries(&tree))
        })
        .collect()
}

/// A store in a temporary folder, with ids numbered by a counter; every
/// call takes an explicit time.
#[derive(Debug)]
struct Harness {
    store: Store,
    policy: Policy,
    counter: u64,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open store");
        Self {
            store,
            policy: small_policy(),
            counter: 0,
            _dir: dir,
        }
    }

    fn next_id(&mut self, now: Timestamp) -> InvitationId {
        self.counter += 1;
        InvitationId::new(now, self.counter)
    }

    fn try_send(
        &mut self,
        from: &str,
        to: &str,
        message: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<SendOutcome, DomainError> {
        let (id, event_id) = (self.next_id(now), self.next_id(now));
        let key = IdempotencyKey::parse(key).expect("valid key");
        self.store
            .send(
                &self.policy,
                &request(from, to, message),
                key.as_ref(),
                id,
                event_id,
                now,
            )
            .expect("no storage failure")
    }

    fn send(&mut self, from: &str, to: &str, now: Timestamp) -> Invitation {
        match self.try_send(from, to, "", "", now) {
            Ok(SendOutcome::Created(inv)) => inv,
            other => panic!("expected {from} -> {to} to be created, got {other:?}"),
        }
    }

    fn try_act(
        &mut self,
        actor: &str,
        id: &InvitationId,
        action: &Action,
        now: Timestamp,
    ) -> Result<TxOutcome, DomainError> {
        let event_id = self.next_id(now);
        self.store
            .act(&self.policy, &user(actor), id, action, event_id, now)
            .expect("no storage failure")
    }

    fn remove_connection(&self, a: &str, b: &str) -> Result<(), DomainError> {
        self.store
            .remove_connection(&user(a), &user(b))
            .expect("no storage failure")
    }

    fn act(&mut self, actor: &str, id: &InvitationId, action: &Action, now: Timestamp) -> Invitation {
        match self.try_act(actor, id, action, now) {
            Ok(TxOutcome::Changed(inv)) => inv,
            other => panic!("expected {actor} to change {id} with {action:?}, got {other:?}"),
        }
    }

    fn expire(&mut self, id: &InvitationId, now: Timestamp) -> Option<Invitation> {
        let event_id = self.next_id(now);
        self.store.expire(id, event_id, now).expect("expire")
    }
}

fn withdraw() -> Action {
    Action::Withdraw { note: Note::default() }
}

fn domain_error<T: std::fmt::Debug>(result: Result<T, DomainError>) -> DomainError {
    match result {
        Err(e) => e,
        other => panic!("expected a domain error, got {other:?}"),
    }
}

fn event_kinds(store: &Store, after: u64) -> Vec<(u64, &'static str, String)> {
    store
        .outbox_after(after, usize::MAX)
        .expect("outbox")
        .into_iter()
        .map(|(seq, bytes)| {
            let event = records::decode_event(&bytes).expect("event decodes");
            let kind = event.kind.expect("kind").name();
            (seq, kind, event.invitation.expect("snapshot").id)
        })
        .collect()
}

#[test]
fn indexes_agree_with_records_after_each_step_of_a_scenario() {
    let mut h = Harness::new();
    check_invariants(&h.store);
    let mut now = T0;

    let ab = h.send("ann", "bob", now);
    check_invariants(&h.store);
    assert_eq!(h.store.oldest_open_sent(&user("ann")).unwrap(), Some(now));

    now = now.plus(MINUTE);
    let ignored = h.act("bob", &ab.id, &Action::Ignore, now);
    assert_eq!(ignored.state, State::Ignored);
    check_invariants(&h.store);
    assert!(h.store.received_page(&user("bob"), None, 10).unwrap().items.is_empty());

    now = now.plus(MINUTE);
    let ac = h.send("ann", "cy", now);
    check_invariants(&h.store);
    now = now.plus(MINUTE);
    let accepted = h.act("cy", &ac.id, &Action::Accept, now);
    assert_eq!(accepted.state, State::Accepted);
    check_invariants(&h.store);
    assert_eq!(
        h.store.pair(&user("cy"), &user("ann")).unwrap().connected_at(),
        Some(now)
    );

    now = now.plus(MINUTE);
    let ad = h.send("ann", "dee", now);
    check_invariants(&h.store);
    now = now.plus(MINUTE);
    let withdrawn = h.act("ann", &ad.id, &withdraw(), now);
    assert_eq!(withdrawn.state, State::Withdrawn);
    check_invariants(&h.store);
    let activity = h.store.activity(&user("ann")).unwrap();
    assert_eq!(
        (activity.sends.len(), activity.withdrawals.len(), activity.pending_sent),
        (3, 1, 1)
    );
    assert_eq!(
        h.store
            .pair(&user("ann"), &user("dee"))
            .unwrap()
            .cooldown_for(&user("ann")),
        Some(now.plus(h.policy.reinvite_cooldown))
    );

    // A repeat withdrawal is an unchanged success and writes nothing.
    let before = snapshot(&h.store);
    match h.try_act("ann", &ad.id, &withdraw(), now) {
        Ok(TxOutcome::Unchanged(inv)) => assert_eq!(inv.state, State::Withdrawn),
        other => panic!("expected an unchanged withdrawal, got {other:?}"),
    }
    assert_eq!(snapshot(&h.store), before);

    // The ignored invitation expires on time; the sweep expires nothing early.
    let due = ab.expires_at;
    assert!(h.expire(&ab.id, Timestamp::from_millis(due.as_millis() - 1)).is_none());
    assert_eq!(snapshot(&h.store), before, "a premature expiry writes nothing");
    let expired = h.expire(&ab.id, due).expect("due invitation expires");
    assert_eq!((expired.state, expired.updated_at), (State::Expired, due));
    check_invariants(&h.store);
    assert_eq!(h.store.activity(&user("ann")).unwrap().pending_sent, 0);
    let after_expiry = snapshot(&h.store);
    assert!(
        h.expire(&ab.id, due.plus(DAY)).is_none(),
        "an expired invitation expires once"
    );
    assert_eq!(snapshot(&h.store), after_expiry);
    now = due;

    h.remove_connection("cy", "ann").unwrap();
    check_invariants(&h.store);
    assert!(
        h.store
            .connections_page(&user("ann"), None, 10)
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        h.store
            .connections_page(&user("cy"), None, 10)
            .unwrap()
            .items
            .is_empty()
    );

    // Idempotent replay: the first result, and no second event.
    now = now.plus(MINUTE);
    let first = match h.try_send("bob", "cy", "hello", "key-1", now).unwrap() {
        SendOutcome::Created(inv) => inv,
        SendOutcome::Replayed(id) => panic!("first use of a key replayed {id}"),
    };
    check_invariants(&h.store);
    let before = snapshot(&h.store);
    assert_eq!(
        h.try_send("bob", "cy", "hello", "key-1", now.plus(HOUR)).unwrap(),
        SendOutcome::Replayed(first.id)
    );
    assert_eq!(snapshot(&h.store), before, "a replay writes nothing");

    assert_eq!(
        event_kinds(&h.store, 0)
            .into_iter()
            .map(|(seq, kind, _)| (seq, kind))
            .collect::<Vec<_>>(),
        vec![
            (1, "sent"),
            (2, "ignored"),
            (3, "sent"),
            (4, "accepted"),
            (5, "sent"),
            (6, "withdrawn"),
            (7, "expired"),
            (8, "sent"),
        ]
    );
}

#[test]
fn refused_requests_leave_every_tree_unchanged() {
    let mut h = Harness::new();
    let mut now = T0;
    let ab = h.send("ann", "bob", now);
    now = now.plus(MINUTE);
    let ac = h.send("ann", "cy", now);
    now = now.plus(MINUTE);
    h.act("cy", &ac.id, &Action::Accept, now);
    now = now.plus(MINUTE);
    let ad = h.send("ann", "dee", now);
    now = now.plus(MINUTE);
    h.act("ann", &ad.id, &withdraw(), now);
    now = now.plus(MINUTE);
    let idem = match h.try_send("ann", "eve", "hi", "k", now).unwrap() {
        SendOutcome::Created(inv) => inv,
        SendOutcome::Replayed(id) => panic!("replayed {id}"),
    };
    now = now.plus(MINUTE);
    check_invariants(&h.store);
    // ann has sent 4 of 4 this week.
    let before = snapshot(&h.store);

    let unknown = h.next_id(now);
    let wrong_party = |role, action| DomainError::WrongParty { role, action };
    let not_pending = |action| DomainError::NotPending {
        state: State::Accepted,
        action,
    };
    let refusals = [
        (
            "self invite",
            h.try_send("bob", "bob", "", "", now).map(drop),
            DomainError::SelfInvite,
        ),
        (
            "connected",
            h.try_send("cy", "ann", "", "", now).map(drop),
            DomainError::AlreadyConnected,
        ),
        (
            "invited",
            h.try_send("ann", "bob", "", "", now).map(drop),
            DomainError::AlreadyInvited,
        ),
        (
            "invited you",
            h.try_send("bob", "ann", "", "", now).map(drop),
            DomainError::AlreadyInvitedYou,
        ),
        (
            "cooling down",
            h.try_send("ann", "dee", "", "", now).map(drop),
            DomainError::CoolingDown {
                until: T0.plus(4 * MINUTE).plus(h.policy.reinvite_cooldown),
            },
        ),
        (
            "weekly limit",
            h.try_send("ann", "fay", "", "", now).map(drop),
            DomainError::WeeklyLimit {
                limit: 4,
                retry_at: T0.plus(crate::domain::SEND_WINDOW),
            },
        ),
        (
            "key for another recipient",
            h.try_send("ann", "fay", "hi", "k", now).map(drop),
            DomainError::IdempotencyKeyReused,
        ),
        (
            "key for another note",
            h.try_send("ann", "eve", "hey", "k", now).map(drop),
            DomainError::IdempotencyKeyReused,
        ),
        (
            "third party",
            h.try_act("cy", &ab.id, &Action::Accept, now).map(drop),
            DomainError::InvitationNotFound,
        ),
        (
            "recipient of a withdrawn one",
            h.try_act("dee", &ad.id, &Action::Accept, now).map(drop),
            DomainError::InvitationNotFound,
        ),
        (
            "unknown id",
            h.try_act("ann", &unknown, &withdraw(), now).map(drop),
            DomainError::InvitationNotFound,
        ),
        (
            "sender accepts",
            h.try_act("ann", &ab.id, &Action::Accept, now).map(drop),
            wrong_party("recipient", "accept"),
        ),
        (
            "recipient withdraws",
            h.try_act("bob", &ab.id, &withdraw(), now).map(drop),
            wrong_party("sender", "withdraw"),
        ),
        (
            "sender ignores",
            h.try_act("ann", &ab.id, &Action::Ignore, now).map(drop),
            wrong_party("recipient", "ignore"),
        ),
        (
            "withdraw an accepted one",
            h.try_act("ann", &ac.id, &withdraw(), now).map(drop),
            not_pending("withdrawn"),
        ),
        (
            "ignore an accepted one",
            h.try_act("cy", &ac.id, &Action::Ignore, now).map(drop),
            not_pending("ignored"),
        ),
        (
            "not connected",
            h.remove_connection("ann", "bob"),
            DomainError::NotConnected,
        ),
        (
            "not connected to oneself",
            h.remove_connection("ann", "ann"),
            DomainError::NotConnected,
        ),
    ];
    assert_eq!(snapshot(&h.store), before, "a refused request wrote something");
    for (what, result, expected) in refusals {
        assert_eq!(domain_error(result), expected, "{what}");
    }

    // The same key and request replays, even past the weekly limit.
    assert_eq!(
        h.try_send("ann", "eve", "hi", "k", now).unwrap(),
        SendOutcome::Replayed(idem.id)
    );
    assert_eq!(snapshot(&h.store), before, "a replay writes nothing");
}

#[test]
fn outbox_stays_contiguous_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let policy = small_policy();
    let mut counter = 0;
    let mut next_id = |now: Timestamp| {
        counter += 1;
        InvitationId::new(now, counter)
    };
    let mut now = T0;
    let first_ids;
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.last_sequence().unwrap(), 0);
        assert!(store.outbox_after(0, 10).unwrap().is_empty());
        let a = match store
            .send(
                &policy,
                &request("ann", "bob", ""),
                None,
                next_id(now),
                next_id(now),
                now,
            )
            .unwrap()
            .unwrap()
        {
            SendOutcome::Created(inv) => inv,
            SendOutcome::Replayed(id) => panic!("replayed {id}"),
        };
        now = now.plus(MINUTE);
        let b = match store
            .send(
                &policy,
                &request("cy", "bob", ""),
                None,
                next_id(now),
                next_id(now),
                now,
            )
            .unwrap()
            .unwrap()
        {
            SendOutcome::Created(inv) => inv,
            SendOutcome::Replayed(id) => panic!("replayed {id}"),
        };
        now = now.plus(MINUTE);
        store
            .act(&policy, &user("bob"), &a.id, &Action::Accept, next_id(now), now)
            .unwrap()
            .unwrap();
        store
            .act(&policy, &user("bob"), &b.id, &Action::Ignore, next_id(now), now)
            .unwrap()
            .unwrap();
        assert_eq!(store.last_sequence().unwrap(), 4);
        check_invariants(&store);
        store.db().flush().unwrap();
        first_ids = (a.id, b.id);
    }

    let store = Store::open(dir.path()).unwrap();
    check_invariants(&store);
    assert_eq!(store.last_sequence().unwrap(), 4);
    let kinds: Vec<_> = event_kinds(&store, 0).into_iter().map(|(s, k, _)| (s, k)).collect();
    assert_eq!(kinds, vec![(1, "sent"), (2, "sent"), (3, "accepted"), (4, "ignored")]);

    now = now.plus(MINUTE);
    store
        .act(&policy, &user("cy"), &first_ids.1, &withdraw(), next_id(now), now)
        .unwrap()
        .unwrap();
    now = now.plus(MINUTE);
    store
        .send(
            &policy,
            &request("bob", "dee", ""),
            None,
            next_id(now),
            next_id(now),
            now,
        )
        .unwrap()
        .unwrap();
    check_invariants(&store);
    assert_eq!(store.last_sequence().unwrap(), 6);
    let tail = event_kinds(&store, 4);
    assert_eq!(
        tail.iter().map(|(s, k, _)| (*s, *k)).collect::<Vec<_>>(),
        vec![(5, "withdrawn"), (6, "sent")]
    );
    assert_eq!(tail[0].2, first_ids.1.to_string());

    let seqs = |after, limit| -> Vec<u64> {
        store
            .outbox_after(after, limit)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    };
    assert_eq!(seqs(0, 100), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(seqs(2, 2), vec![3, 4]);
    assert_eq!(seqs(3, 100), vec![4, 5, 6]);
    assert_eq!(seqs(5, 1), vec![6]);
    assert_eq!(seqs(6, 100), Vec::<u64>::new());
    assert_eq!(seqs(u64::MAX, 100), Vec::<u64>::new());
    assert_eq!(seqs(0, 0), Vec::<u64>::new());
    for (seq, bytes) in store.outbox_after(0, 100).unwrap() {
        assert_eq!(records::decode_event(&bytes).unwrap().sequence, seq);
    }
}

#[test]
fn due_expiries_returns_only_due_ids_in_due_order() {
    let mut h = Harness::new();
    assert!(h.store.due_expiries(T0.plus(100 * DAY), 10).unwrap().is_empty());
    let first = h.send("ann", "bob", T0);
    let withdrawn = h.send("ivy", "jo", T0.plus(30 * MINUTE));
    let accepted = h.send("kai", "lu", T0.plus(30 * MINUTE));
    // Two sent in the same millisecond: due together, in id order.
    let second = h.send("cy", "dee", T0.plus(HOUR));
    let third = h.send("eve", "fay", T0.plus(HOUR));
    h.act("ivy", &withdrawn.id, &withdraw(), T0.plus(HOUR));
    h.act("lu", &accepted.id, &Action::Accept, T0.plus(HOUR));
    h.act("fay", &third.id, &Action::Ignore, T0.plus(HOUR));
    let fourth = h.send("gus", "hal", T0.plus(2 * HOUR));
    assert!(second.id < third.id);

    let ttl = h.policy.pending_ttl;
    let due = |h: &Harness, at: Timestamp, limit| h.store.due_expiries(at, limit).unwrap();
    assert_eq!(due(&h, T0.plus(ttl).minus(Duration::from_millis(1)), 10), vec![]);
    assert_eq!(due(&h, T0.plus(ttl), 10), vec![first.id]);
    assert_eq!(
        due(&h, T0.plus(ttl).plus(HOUR), 10),
        vec![first.id, second.id, third.id]
    );
    assert_eq!(due(&h, T0.plus(ttl).plus(HOUR), 2), vec![first.id, second.id]);
    assert_eq!(
        due(&h, T0.plus(100 * DAY), 10),
        vec![first.id, second.id, third.id, fourth.id],
        "closed invitations are never due; an ignored one is"
    );
    assert_eq!(due(&h, T0.plus(100 * DAY), 0), vec![]);

    let now = T0.plus(ttl).plus(HOUR);
    for id in due(&h, now, 10) {
        assert_eq!(h.expire(&id, now).map(|inv| inv.state), Some(State::Expired));
    }
    check_invariants(&h.store);
    assert_eq!(due(&h, T0.plus(100 * DAY), 10), vec![fourth.id]);
    assert_eq!(
        h.store.invitation(&third.id).unwrap().map(|i| i.state),
        Some(State::Expired)
    );
}

#[test]
fn prune_idempotency_removes_only_records_older_than_the_cutoff() {
    let mut h = Harness::new();
    h.try_send("ann", "bob", "", "k1", T0).unwrap();
    h.try_send("ann", "cy", "", "k2", T0.plus(HOUR)).unwrap();
    h.try_send("cy", "dee", "", "k1", T0.plus(2 * HOUR)).unwrap();
    let records_left = |h: &Harness| h.store.idempotency.len();
    assert_eq!(records_left(&h), 3);

    assert_eq!(
        h.store.prune_idempotency(T0, 10).unwrap(),
        0,
        "created at the cutoff is kept"
    );
    let before = snapshot(&h.store);
    assert_eq!(h.store.prune_idempotency(T0, 10).unwrap(), 0);
    assert_eq!(snapshot(&h.store), before);

    assert_eq!(
        h.store.prune_idempotency(T0.plus(HOUR).plus(MINUTE), 1).unwrap(),
        1,
        "the limit holds"
    );
    assert_eq!(records_left(&h), 2);
    assert!(
        h.store
            .idempotency
            .get(keys::idempotency(&user("ann"), "k1"))
            .unwrap()
            .is_none()
    );
    check_invariants(&h.store);
    assert_eq!(h.store.prune_idempotency(T0.plus(HOUR).plus(MINUTE), 10).unwrap(), 1);
    assert_eq!(records_left(&h), 1);
    assert!(
        h.store
            .idempotency
            .get(keys::idempotency(&user("cy"), "k1"))
            .unwrap()
            .is_some()
    );
    check_invariants(&h.store);

    // After a pruned key, the same key is new again.
    let again = h.try_send("ann", "dee", "", "k1", T0.plus(3 * HOUR)).unwrap();
    assert!(matches!(again, SendOutcome::Created(_)), "{again:?}");
    check_invariants(&h.store);
}

#[test]
fn a_key_reused_after_its_window_gets_a_fresh_record() {
    let mut h = Harness::new();
    let first = match h.try_send("ann", "bob", "", "key", T0).unwrap() {
        SendOutcome::Created(inv) => inv,
        SendOutcome::Replayed(id) => panic!("replayed {id}"),
    };
    let window = super::IDEMPOTENCY_WINDOW;
    let last_moment = T0.plus(window).minus(Duration::from_millis(1));
    assert_eq!(
        h.try_send("ann", "bob", "", "key", last_moment).unwrap(),
        SendOutcome::Replayed(first.id)
    );
    assert_eq!(
        domain_error(h.try_send("ann", "cy", "", "key", last_moment)),
        DomainError::IdempotencyKeyReused
    );

    // Not pruned yet, but out of its window: the key stands for a new request.
    let later = T0.plus(window);
    let fresh = match h.try_send("ann", "cy", "", "key", later).unwrap() {
        SendOutcome::Created(inv) => inv,
        SendOutcome::Replayed(id) => panic!("a key out of its window replayed {id}"),
    };
    assert_ne!(fresh.id, first.id);
    check_invariants(&h.store);
    let record_key = keys::idempotency(&user("ann"), "key");
    let record = records::decode_idempotency(&h.store.idempotency.get(&record_key).unwrap().unwrap()).unwrap();
    assert_eq!(
        (
            record.created_ms,
            record.recipient.as_str(),
            id_from(&record.invitation_id)
        ),
        (later.as_millis(), "cy", fresh.id)
    );
    let ages: Vec<_> = entries(&h.store.idempotency_by_age)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        ages,
        vec![keys::idempotency_by_age(later, &record_key)],
        "the old age entry is gone"
    );

    // Pruning at the old record's window end keeps the fresh record.
    assert_eq!(h.store.prune_idempotency(later, 10).unwrap(), 0);
    assert_eq!(
        h.try_send("ann", "cy", "", "key", later.plus(HOUR)).unwrap(),
        SendOutcome::Replayed(fresh.id)
    );

    // A refused send with a stale key changes nothing, the stale record included.
    let mut h = Harness::new();
    h.try_send("ann", "bob", "", "key", T0).unwrap();
    let before = snapshot(&h.store);
    assert_eq!(
        domain_error(h.try_send("ann", "bob", "", "key", T0.plus(window))),
        DomainError::AlreadyInvited
    );
    assert_eq!(snapshot(&h.store), before);
}

#[test]
fn pages_are_newest_first_with_working_cursors() {
    let mut h = Harness::new();
    // Nothing here may expire before it is accepted.
    h.policy.pending_ttl = 30 * DAY;
    let recipients = ["b1", "b2", "b3", "b4"];
    let mut sent = Vec::new();
    for (i, to) in recipients.iter().enumerate() {
        let at = T0.plus(u32::try_from(i).unwrap() * HOUR);
        sent.push(h.send("ann", to, at));
    }
    // ann's next weekly slot is a week on: continue in the next week.
    let week = T0.plus(8 * DAY);
    sent.push(h.send("ann", "b5", week));
    let newest_first: Vec<InvitationId> = sent.iter().rev().map(|inv| inv.id).collect();

    let ids = |items: &[Invitation]| items.iter().map(|i| i.id).collect::<Vec<_>>();
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = h.store.sent_page(&user("ann"), cursor.as_deref(), 2).unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(ids(&page.items));
        pages += 1;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!((seen, pages), (newest_first.clone(), 3));

    // A page that ends exactly at the last item has no cursor.
    let all = h.store.sent_page(&user("ann"), None, 5).unwrap();
    assert_eq!((ids(&all.items), all.next), (newest_first.clone(), None));
    let four = h.store.sent_page(&user("ann"), None, 4).unwrap();
    assert_eq!(ids(&four.items), newest_first[..4].to_vec());
    let rest = h.store.sent_page(&user("ann"), four.next.as_deref(), 4).unwrap();
    assert_eq!((ids(&rest.items), rest.next), (newest_first[4..].to_vec(), None));
    assert!(h.store.sent_page(&user("nobody"), None, 4).unwrap().items.is_empty());

    // Received: only what the recipient may act on.
    let mut now = week.plus(HOUR);
    let to_b1 = h.send("cy", "b1", now);
    now = now.plus(HOUR);
    let from_dee = h.send("dee", "b1", now);
    now = now.plus(HOUR);
    h.act("b1", &from_dee.id, &Action::Ignore, now);
    let received = h.store.received_page(&user("b1"), None, 10).unwrap();
    assert_eq!(
        (ids(&received.items), received.next),
        (vec![to_b1.id, sent[0].id], None)
    );
    let first = h.store.received_page(&user("b1"), None, 1).unwrap();
    assert_eq!(ids(&first.items), vec![to_b1.id]);
    let second = h.store.received_page(&user("b1"), first.next.as_deref(), 1).unwrap();
    assert_eq!((ids(&second.items), second.next), (vec![sent[0].id], None));

    // Connections, newest first, from both sides.
    let mut connected_at = Vec::new();
    for inv in &sent[1..4] {
        now = now.plus(HOUR);
        h.act(inv.recipient.as_str(), &inv.id, &Action::Accept, now);
        connected_at.push((inv.recipient.clone(), now));
    }
    connected_at.reverse();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = h.store.connections_page(&user("ann"), cursor.as_deref(), 2).unwrap();
        seen.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, connected_at);
    let b3 = h.store.connections_page(&user("b3"), None, 10).unwrap();
    assert_eq!((b3.items, b3.next), (vec![(user("ann"), connected_at[1].1)], None));
    check_invariants(&h.store);
}

#[test]
fn a_user_never_sees_entries_of_a_user_whose_id_extends_theirs() {
    let mut h = Harness::new();
    let t = |minutes: u32| T0.plus(minutes * MINUTE);
    // "abc" sends, receives and connects; "ab" and "a" have one of each.
    let abc_out = h.send("abc", "zed", t(1));
    let abc_in = h.send("yan", "abc", t(2));
    let abc_link = h.send("abcd", "abc", t(3));
    h.act("abc", &abc_link.id, &Action::Accept, t(4));
    let ab_out = h.send("ab", "abc", t(5));
    let ab_in = h.send("b", "ab", t(6));
    let a_link = h.send("a", "ab", t(7));
    h.act("ab", &a_link.id, &Action::Accept, t(8));
    let long = "x".repeat(crate::domain::MAX_USER_ID_BYTES);
    let shorter = "x".repeat(crate::domain::MAX_USER_ID_BYTES - 1);
    let invitation = h.send(&long, &shorter, t(9));
    h.act(&shorter, &invitation.id, &Action::Accept, t(10));
    check_invariants(&h.store);

    let ids = |items: Vec<Invitation>| items.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let sent = |who: &str| ids(h.store.sent_page(&user(who), None, 100).unwrap().items);
    let received = |who: &str| ids(h.store.received_page(&user(who), None, 100).unwrap().items);
    let connections = |who: &str| {
        h.store
            .connections_page(&user(who), None, 100)
            .unwrap()
            .items
            .into_iter()
            .map(|(other, _)| other)
            .collect::<Vec<_>>()
    };
    assert_eq!(sent("ab"), vec![ab_out.id]);
    assert_eq!(received("ab"), vec![ab_in.id]);
    assert_eq!(connections("ab"), vec![user("a")]);
    assert_eq!(sent("abc"), vec![abc_out.id]);
    assert_eq!(received("abc"), vec![ab_out.id, abc_in.id]);
    assert_eq!(connections("abc"), vec![user("abcd")]);
    assert_eq!(sent("a"), vec![a_link.id]);
    assert!(received("a").is_empty());
    assert_eq!(connections("a"), vec![user("ab")]);
    assert_eq!(h.store.activity(&user("ab")).unwrap().pending_sent, 1);
    assert_eq!(h.store.activity(&user("abc")).unwrap().pending_sent, 1);
    assert_eq!(h.store.activity(&user("a")).unwrap().pending_sent, 0);
    assert_eq!(h.store.oldest_open_sent(&user("ab")).unwrap(), Some(ab_out.created_at));
    assert_eq!(h.store.oldest_open_sent(&user("a")).unwrap(), None);

    // The longest ids fit the page bounds, and one id never sees its prefix.
    assert_eq!(sent(&long), vec![invitation.id]);
    assert!(sent(&shorter).is_empty());
    assert_eq!(connections(&long), vec![user(&shorter)]);
    assert_eq!(connections(&shorter), vec![user(&long)]);
    check_invariants(&h.store);
}

/// A store with one invitation in each kind of state, a connection, an
/// idempotency record and a few events.
fn populated() -> (Harness, [Invitation; 4]) {
    let mut h = Harness::new();
    let pending = h.send("ann", "bob", T0);
    let accepted = h.send("ann", "cy", T0.plus(MINUTE));
    h.act("cy", &accepted.id, &Action::Accept, T0.plus(2 * MINUTE));
    let ignored = h.send("dee", "ann", T0.plus(3 * MINUTE));
    h.act("ann", &ignored.id, &Action::Ignore, T0.plus(4 * MINUTE));
    let withdrawn = match h.try_send("ann", "eve", "", "key", T0.plus(5 * MINUTE)).unwrap() {
        SendOutcome::Created(inv) => inv,
        SendOutcome::Replayed(id) => panic!("replayed {id}"),
    };
    h.act("ann", &withdrawn.id, &withdraw(), T0.plus(6 * MINUTE));
    check_invariants(&h.store);
    (h, [pending, accepted, ignored, withdrawn])
}

#[test]
fn check_invariants_notices_each_kind_of_damage() {
    type Damage = fn(&Store, &[Invitation; 4]);
    let damages: [(&str, Damage); 13] = [
        ("received entry of an ignored invitation", |s, [_, _, ignored, _]| {
            s.received
                .insert(keys::user_invitation(&ignored.recipient, &ignored.id), &[])
                .unwrap();
        }),
        ("missing received entry", |s, [pending, ..]| {
            s.received
                .remove(keys::user_invitation(&pending.recipient, &pending.id))
                .unwrap();
        }),
        ("missing sent entry", |s, [_, _, _, withdrawn]| {
            s.sent
                .remove(keys::user_invitation(&withdrawn.sender, &withdrawn.id))
                .unwrap();
        }),
        ("open entry of a closed invitation", |s, [_, accepted, ..]| {
            s.open_by_sender
                .insert(keys::user_invitation(&accepted.sender, &accepted.id), &[])
                .unwrap();
        }),
        ("missing expiry entry", |s, [_, _, ignored, _]| {
            s.expiry
                .remove(&keys::due(ignored.expires_at, &ignored.id)[..])
                .unwrap();
        }),
        ("expiry entry under the wrong time", |s, [pending, ..]| {
            s.expiry
                .remove(&keys::due(pending.expires_at, &pending.id)[..])
                .unwrap();
            s.expiry
                .insert(&keys::due(pending.expires_at.plus(MINUTE), &pending.id)[..], &[])
                .unwrap();
        }),
        ("pair forgets its pending invitation", |s, [pending, ..]| {
            let stored = s.pair(&pending.sender, &pending.recipient).unwrap();
            let (low, high) = stored.users();
            let pair = Pair::restore(
                low.clone(),
                high.clone(),
                None,
                stored.connected_at(),
                stored.cooldown_for(low),
                stored.cooldown_for(high),
            );
            s.pairs
                .insert(keys::pair(low, high), records::encode_pair(&pair))
                .unwrap();
        }),
        ("connection listed one way only", |s, [_, accepted, ..]| {
            let at = accepted_at(s, accepted);
            s.connections
                .remove(keys::connection(&accepted.recipient, at, &accepted.sender))
                .unwrap();
        }),
        ("open count off by one", |s, [pending, ..]| {
            let mut activity = s.activity(&pending.sender).unwrap();
            activity.pending_sent += 1;
            s.activity
                .insert(keys::user_prefix(&pending.sender), records::encode_activity(&activity))
                .unwrap();
        }),
        ("gap in the outbox", |s, _| {
            s.outbox.remove(keys::sequence(2)).unwrap();
        }),
        ("meta ahead of the outbox", |s, _| {
            let n = s.last_sequence().unwrap();
            s.meta.insert(OUTBOX_SEQUENCE, &keys::sequence(n + 1)[..]).unwrap();
        }),
        ("idempotency record without its age entry", |s, _| {
            s.idempotency_by_age.clear().unwrap();
        }),
        ("a stale copy in the sender's index", |s, [_, _, _, withdrawn]| {
            let mut stale = withdrawn.clone();
            stale.state = State::Pending;
            s.sent
                .insert(
                    keys::user_invitation(&withdrawn.sender, &withdrawn.id),
                    records::encode_invitation(&stale),
                )
                .unwrap();
        }),
    ];
    for (what, damage) in damages {
        let (h, invitations) = populated();
        damage(&h.store, &invitations);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_invariants(&h.store)));
        assert!(caught.is_err(), "check_invariants missed: {what}");
    }
}

fn accepted_at(store: &Store, inv: &Invitation) -> Timestamp {
    store
        .pair(&inv.sender, &inv.recipient)
        .unwrap()
        .connected_at()
        .expect("connected")
}

#[test]
fn events_carry_their_id_time_true_state_and_note() {
    let mut h = Harness::new();
    let sent = h.send("ann", "bob", T0);
    let ignored_at = T0.plus(MINUTE);
    let event_id = InvitationId::new(ignored_at, 9_999);
    h.store
        .act(&h.policy, &user("bob"), &sent.id, &Action::Ignore, event_id, ignored_at)
        .unwrap()
        .unwrap();
    let withdrawn_at = T0.plus(2 * MINUTE);
    let note = Note::parse("note", "  sorry, wrong person  ", 300).unwrap();
    h.act("ann", &sent.id, &Action::Withdraw { note }, withdrawn_at);

    let events: Vec<_> = h
        .store
        .outbox_after(1, 10)
        .unwrap()
        .into_iter()
        .map(|(_, bytes)| records::decode_event(&bytes).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    let ignored = &events[0];
    assert_eq!(ignored.event_id, event_id.to_string());
    assert_eq!(ignored.occurred_at, Some(crate::convert::timestamp(ignored_at)));
    let snapshot = ignored.invitation.as_ref().unwrap();
    assert_eq!(
        snapshot.state,
        i32::from(proto::invitations::v1::InvitationState::Ignored),
        "events carry the true state, not the sender's view"
    );
    assert_eq!(
        (snapshot.sender_id.as_str(), snapshot.recipient_id.as_str()),
        ("ann", "bob")
    );
    match events[1].kind.as_ref().unwrap() {
        Kind::Withdrawn(w) => assert_eq!(w.note, "sorry, wrong person"),
        other @ (Kind::Sent(_) | Kind::Accepted(_) | Kind::Ignored(_) | Kind::Expired(_) | Kind::Reminded(_)) => {
            panic!("expected a withdrawal, got {other:?}")
        }
    }
    assert_eq!(
        events[1].invitation.as_ref().unwrap().updated_at,
        Some(crate::convert::timestamp(withdrawn_at))
    );
}

/// A mixed batch: sends, a refused repeat, a withdrawal of an invitation
/// sent earlier in the same batch, an idempotent replay within the batch,
/// and an accept.
fn mixed_batch() -> Vec<Op> {
    let id = |n: u64| InvitationId::new(T0, n);
    let send = |n: u64, from: &str, to: &str, key: &str| Op::Send {
        request: request(from, to, ""),
        key: IdempotencyKey::parse(key).expect("valid key"),
        id: id(n),
        event_id: id(n + 100),
        now: T0,
    };
    let act = |n: u64, actor: &str, target: u64, action| Op::Act {
        actor: user(actor),
        id: id(target),
        action,
        event_id: id(n + 100),
        now: T0.plus(MINUTE),
    };
    vec![
        send(1, "ann", "bob", ""),
        send(2, "ann", "bob", ""),
        act(3, "ann", 1, withdraw()),
        send(4, "ann", "cy", "key"),
        send(5, "ann", "cy", "key"),
        send(6, "ann", "dee", "key"),
        act(7, "cy", 4, Action::Accept),
        act(8, "bob", 9, Action::Ignore),
    ]
}

#[test]
fn a_batch_writes_what_its_operations_write_one_at_a_time() {
    let one_at_a_time = Harness::new();
    let policy = small_policy();
    let single: Vec<_> = mixed_batch()
        .iter()
        .map(|op| {
            let mut outcomes = one_at_a_time
                .store
                .write_batch(&policy, std::iter::once(op))
                .expect("no storage failure");
            assert_eq!(outcomes.len(), 1);
            outcomes.pop().unwrap()
        })
        .collect();

    let batched = Harness::new();
    let ops = mixed_batch();
    let together = batched
        .store
        .write_batch(&policy, ops.iter())
        .expect("no storage failure");

    assert_eq!(format!("{together:?}"), format!("{single:?}"));
    assert_eq!(snapshot(&batched.store), snapshot(&one_at_a_time.store));
    check_invariants(&batched.store);

    // Each operation saw the writes of those before it.
    let refusals: Vec<_> = together
        .iter()
        .enumerate()
        .filter_map(|(i, outcome)| match outcome {
            Err(e) => Some((i, e.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        refusals,
        vec![
            (1, DomainError::AlreadyInvited),
            (5, DomainError::IdempotencyKeyReused),
            (7, DomainError::InvitationNotFound)
        ]
    );
    assert!(matches!(
        together[4],
        Ok(OpOutcome::Sent(SendOutcome::Replayed(id))) if id == InvitationId::new(T0, 4)
    ));
    let kinds: Vec<_> = event_kinds(&batched.store, 0)
        .into_iter()
        .map(|(seq, kind, _)| (seq, kind))
        .collect();
    assert_eq!(
        kinds,
        vec![(1, "sent"), (2, "withdrawn"), (3, "sent"), (4, "accepted")],
        "one contiguous sequence, refusals and replays leave no event"
    );
}

#[test]
fn a_corrupt_record_fails_the_whole_batch_and_writes_nothing() {
    let h = Harness::new();
    let policy = small_policy();
    let ops = mixed_batch();
    h.store.write_batch(&policy, ops[..1].iter()).unwrap();
    corrupt_invitation(&h.store, &InvitationId::new(T0, 1));
    let before = snapshot(&h.store);

    let result = h.store.write_batch(&policy, ops[2..].iter());

    assert!(matches!(result, Err(StoreError::Corrupt(_))), "got {result:?}");
    assert_eq!(
        snapshot(&h.store),
        before,
        "not even the operations before the corrupt one"
    );
}

/// Overwrites an invitation's record with bytes that do not decode.
pub(crate) fn corrupt_invitation(store: &Store, id: &InvitationId) {
    store
        .invitations
        .insert(id.as_bytes(), &b"\xff\xff not a record"[..])
        .unwrap();
}

#[test]
fn a_sent_page_reads_copies_and_entries_written_before_there_were_copies() {
    let mut h = Harness::new();
    let first = h.send("ann", "bob", T0);
    let second = h.send("ann", "cy", T0.plus(MINUTE));
    let withdrawn = h.act("ann", &second.id, &withdraw(), T0.plus(2 * MINUTE));
    // An entry as an earlier version wrote it: the key alone.
    h.store
        .sent
        .insert(keys::user_invitation(&first.sender, &first.id), &[])
        .unwrap();

    let page = h.store.sent_page(&user("ann"), None, 10).unwrap();

    assert_eq!(
        page.items,
        vec![withdrawn, first],
        "the copy follows the record's changes"
    );
}
