//! Bulk loading, for benchmarks and imports into a store no server has open:
//! pending invitations written with every index entry a send writes, tree by
//! tree in batches instead of one transaction each, and no outbox event (as
//! if they were published long ago). It checks none of the policy's rules.

use std::collections::{HashMap, HashSet};

use sled::Batch;

use super::{Store, StoreError, keys, records};
use crate::domain::{Activity, Invitation, State, UserId};

/// Invitations written per batch of each tree.
const BATCH: usize = 10_000;

/// The batches of one round, one per tree.
#[derive(Default)]
struct Batches {
    invitations: Batch,
    sent: Batch,
    received: Batch,
    open_by_sender: Batch,
    expiry: Batch,
    pairs: Batch,
}

impl Store {
    /// Writes pending `invitations` with their index entries, their pairs'
    /// pending state and their senders' activity, then flushes once.
    /// Returns how many it wrote.
    ///
    /// # Errors
    ///
    /// An invitation that is not pending, a pair that already has a pending
    /// invitation (or appears twice), or a storage failure. Batches written
    /// before the error stay.
    pub fn bulk_load(&self, invitations: impl IntoIterator<Item = Invitation>) -> Result<u64, StoreError> {
        let mut activities: HashMap<UserId, Activity> = HashMap::new();
        let mut pairs_seen: HashSet<Vec<u8>> = HashSet::new();
        let mut batches = Batches::default();
        let mut in_batch = 0;
        let mut written = 0u64;
        for inv in invitations {
            if inv.state != State::Pending {
                return Err(StoreError::Corrupt(format!(
                    "bulk load of {} in state {}",
                    inv.id, inv.state
                )));
            }
            let mut pair = self.pair(&inv.sender, &inv.recipient)?;
            let (low, high) = pair.users();
            let pair_key = keys::pair(low, high);
            if pair.pending().is_some() || !pairs_seen.insert(pair_key.clone()) {
                return Err(StoreError::Corrupt(format!(
                    "bulk load: the pair of {} already has a pending invitation",
                    inv.id
                )));
            }
            pair.invited(inv.id, inv.sender.clone());
            batches.pairs.insert(pair_key, records::encode_pair(&pair));
            // The record, and its copy in the sender's index (see write.rs).
            let record = sled::IVec::from(records::encode_invitation(&inv));
            batches.invitations.insert(&inv.id.as_bytes()[..], record.clone());
            batches.sent.insert(keys::user_invitation(&inv.sender, &inv.id), record);
            batches
                .received
                .insert(keys::user_invitation(&inv.recipient, &inv.id), &[]);
            batches
                .open_by_sender
                .insert(keys::user_invitation(&inv.sender, &inv.id), &[]);
            batches.expiry.insert(&keys::due(inv.expires_at, &inv.id)[..], &[]);
            let activity = match activities.entry(inv.sender.clone()) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => entry.insert(self.activity(&inv.sender)?),
            };
            activity.record_send(inv.created_at);
            written += 1;
            in_batch += 1;
            if in_batch == BATCH {
                self.apply(std::mem::take(&mut batches))?;
                in_batch = 0;
            }
        }
        self.apply(batches)?;
        let mut activity_batch = Batch::default();
        for (user, activity) in &activities {
            activity_batch.insert(keys::user_prefix(user), records::encode_activity(activity));
        }
        self.activity.apply_batch(activity_batch)?;
        self.flush()?;
        Ok(written)
    }

    fn apply(&self, batches: Batches) -> Result<(), StoreError> {
        let Batches {
            invitations,
            sent,
            received,
            open_by_sender,
            expiry,
            pairs,
        } = batches;
        self.invitations.apply_batch(invitations)?;
        self.sent.apply_batch(sent)?;
        self.received.apply_batch(received)?;
        self.open_by_sender.apply_batch(open_by_sender)?;
        self.expiry.apply_batch(expiry)?;
        self.pairs.apply_batch(pairs)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InvitationId, Note, Policy, SendRequest, Timestamp};

    const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn user(id: &str) -> UserId {
        UserId::parse("user", id).unwrap()
    }

    fn requests() -> Vec<(SendRequest, InvitationId, Timestamp)> {
        [("a", "b"), ("a", "c"), ("d", "b"), ("c", "d")]
            .iter()
            .enumerate()
            .map(|(i, (from, to))| {
                let at = T0.plus(std::time::Duration::from_secs(u64::try_from(i).unwrap()));
                let request = SendRequest {
                    sender: user(from),
                    sender_name: format!("{from} name"),
                    recipient: user(to),
                    message: Note::parse("message", "hello", 300).unwrap(),
                };
                (request, InvitationId::new(at, u64::try_from(i).unwrap()), at)
            })
            .collect()
    }

    #[test]
    fn reads_the_same_as_sends() {
        let policy = Policy::default();
        let (sent_dir, bulk_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (by_send, by_bulk) = (
            Store::open(sent_dir.path()).unwrap(),
            Store::open(bulk_dir.path()).unwrap(),
        );
        let mut loaded = Vec::new();
        for (request, id, at) in requests() {
            by_send
                .send(&policy, &request, None, id, InvitationId::new(at, 99), at)
                .unwrap()
                .unwrap();
            loaded.push(policy.new_invitation(request, id, at));
        }
        assert_eq!(by_bulk.bulk_load(loaded.clone()).unwrap(), 4);

        for inv in &loaded {
            assert_eq!(
                by_bulk.invitation(&inv.id).unwrap(),
                by_send.invitation(&inv.id).unwrap()
            );
            assert_eq!(
                by_bulk.pair(&inv.sender, &inv.recipient).unwrap(),
                by_send.pair(&inv.sender, &inv.recipient).unwrap()
            );
        }
        for name in ["a", "b", "c", "d"] {
            let u = user(name);
            assert_eq!(
                by_bulk.sent_page(&u, None, 10).unwrap(),
                by_send.sent_page(&u, None, 10).unwrap()
            );
            assert_eq!(
                by_bulk.received_page(&u, None, 10).unwrap(),
                by_send.received_page(&u, None, 10).unwrap()
            );
            assert_eq!(by_bulk.activity(&u).unwrap(), by_send.activity(&u).unwrap());
            assert_eq!(
                by_bulk.oldest_open_sent(&u).unwrap(),
                by_send.oldest_open_sent(&u).unwrap()
            );
        }
        let far = T0.plus(policy.pending_ttl).plus(std::time::Duration::from_secs(60));
        assert_eq!(
            by_bulk.due_expiries(far, 10).unwrap(),
            by_send.due_expiries(far, 10).unwrap()
        );
        assert_eq!(by_bulk.last_sequence().unwrap(), 0, "no outbox events");
    }

    #[test]
    fn refuses_a_pair_twice() {
        let policy = Policy::default();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (request, id, at) = requests().remove(0);
        let first = policy.new_invitation(request.clone(), id, at);
        let again = policy.new_invitation(request, InvitationId::new(at, 7), at);
        assert!(
            store.bulk_load([first.clone(), again.clone()]).is_err(),
            "the same pair twice"
        );
        assert_eq!(store.bulk_load([first]).unwrap(), 1);
        assert!(store.bulk_load([again]).is_err(), "already pending");
    }
}
