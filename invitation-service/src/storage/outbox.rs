//! The publisher's bookkeeping on the outbox: the highest sequence
//! notification-service has acknowledged (kept in `meta`), and pruning of
//! acknowledged entries once they are older than the retention. Pruning walks
//! from the front of the tree and stops at the first entry that must stay, so
//! it never scans the tree and never touches an unacknowledged event.

use super::{Store, StoreError, keys, records};
use crate::domain::Timestamp;

/// `meta` key of the highest acknowledged sequence (big-endian u64).
pub(crate) const OUTBOX_ACKED: &[u8] = b"outbox_acked";

impl Store {
    /// The highest sequence notification-service has acknowledged; 0 when none.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn acked_sequence(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(OUTBOX_ACKED)?
            .and_then(|v| keys::leading_u64(&v))
            .unwrap_or(0))
    }

    /// Records that everything through `through` is acknowledged, and returns
    /// the acknowledged sequence now stored. It never moves back, and never
    /// past the last sequence written: an ack for events this outbox has not
    /// written (a peer that kept state from another data folder) must not
    /// let pruning delete events written later.
    ///
    /// No flush: losing the latest value to a crash only delays pruning.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn record_acked(&self, through: u64) -> Result<u64, StoreError> {
        let through = through.min(self.last_sequence()?);
        let current = self.acked_sequence()?;
        if through <= current {
            return Ok(current);
        }
        let stored = self.meta.update_and_fetch(OUTBOX_ACKED, |old| {
            let old = old.and_then(keys::leading_u64).unwrap_or(0);
            Some(keys::sequence(old.max(through)).to_vec())
        })?;
        Ok(stored.and_then(|v| keys::leading_u64(&v)).unwrap_or(through))
    }

    /// Deletes up to `limit` acknowledged entries that occurred before
    /// `cutoff`, from the front of the outbox, stopping at the first entry
    /// that must stay (unacknowledged, or too recent). Returns how many it
    /// deleted.
    ///
    /// # Errors
    ///
    /// Storage failures, or an entry that does not decode (which then stays).
    pub fn prune_outbox(&self, cutoff: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let acked = self.acked_sequence()?;
        if acked == 0 {
            return Ok(0);
        }
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for entry in self.outbox.range(..=keys::sequence(acked)).take(limit) {
            let (key, value) = entry?;
            let event = records::decode_event(&value)?;
            let occurred = event
                .occurred_at
                .as_ref()
                .and_then(timestamp_millis)
                .ok_or_else(|| StoreError::Corrupt(format!("outbox event {} has no time", event.sequence)))?;
            if occurred >= cutoff.as_millis() {
                break;
            }
            batch.remove(key);
            removed += 1;
        }
        if removed > 0 {
            self.outbox.apply_batch(batch)?;
        }
        Ok(removed)
    }
}

fn timestamp_millis(t: &prost_types::Timestamp) -> Option<u64> {
    let seconds = u64::try_from(t.seconds).ok()?;
    let millis = u64::try_from(t.nanos).ok()? / 1_000_000;
    seconds.checked_mul(1000)?.checked_add(millis)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{InvitationId, Note, Policy, SendRequest, UserId};

    const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);
    const DAY: Duration = Duration::from_secs(24 * 3600);

    /// A store with one sent invitation per entry of `times`, sequences 1..
    fn store_with_events(times: &[Timestamp]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let policy = Policy::default();
        for (i, &now) in times.iter().enumerate() {
            let request = SendRequest {
                sender: UserId::parse("u", &format!("sender{i}")).unwrap(),
                sender_name: String::new(),
                recipient: UserId::parse("u", "recipient").unwrap(),
                message: Note::parse("m", "", 300).unwrap(),
            };
            let rand = u64::try_from(i).unwrap();
            store
                .send(
                    &policy,
                    &request,
                    None,
                    InvitationId::new(now, rand),
                    InvitationId::new(now, rand + 1000),
                    now,
                )
                .unwrap()
                .unwrap();
        }
        (dir, store)
    }

    fn remaining(store: &Store) -> Vec<u64> {
        store
            .outbox_after(0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(seq, _)| seq)
            .collect()
    }

    #[test]
    fn acks_only_move_forward_and_stop_at_the_last_sequence() {
        let (_dir, store) = store_with_events(&[T0, T0, T0]);
        assert_eq!(store.acked_sequence().unwrap(), 0);
        assert_eq!(store.record_acked(2).unwrap(), 2);
        assert_eq!(store.record_acked(1).unwrap(), 2, "never moves back");
        assert_eq!(store.record_acked(99).unwrap(), 3, "never past what was written");
        assert_eq!(store.acked_sequence().unwrap(), 3);
    }

    #[test]
    fn pruning_deletes_acked_old_entries_from_the_front_and_stops_at_the_first_to_keep() {
        let old = T0;
        let young = T0.plus(10 * DAY);
        let (_dir, store) = store_with_events(&[old, old, young, old, old]);
        let cutoff = T0.plus(7 * DAY);

        assert_eq!(store.prune_outbox(cutoff, 100).unwrap(), 0, "nothing acked yet");
        store.record_acked(4).unwrap();
        assert_eq!(store.prune_outbox(cutoff, 1).unwrap(), 1, "the limit holds");
        assert_eq!(store.prune_outbox(cutoff, 100).unwrap(), 1);
        // Sequence 3 is too young, so 4 (old and acked) waits behind it; 5 is not acked.
        assert_eq!(remaining(&store), vec![3, 4, 5]);

        assert_eq!(store.prune_outbox(T0.plus(11 * DAY), 100).unwrap(), 2);
        assert_eq!(remaining(&store), vec![5], "the unacknowledged event stays");
        assert_eq!(store.last_sequence().unwrap(), 5, "sequences continue after pruning");
    }
}
