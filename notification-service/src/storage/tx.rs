//! The transaction's view of the trees: reading and writing records,
//! counters, delivery records and the update log. Everything here runs
//! inside a sled transaction closure, so it only reads and writes trees.

use std::time::Instant;

use service_kit::storage::tx::aborted;
use sled::transaction::TransactionalTree;

use crate::domain::{Channels, Notification, Preferences, State, Timestamp, Topic, Update, UpdateKind};

use super::{
    apply::{TxResult, Updates},
    keys, pins,
    records::{self, DeliveryRecord, Location, UserRecord},
};

/// Most entries one logged update trims from the log; more than one, so a
/// log grown while a resume point was pinned shrinks back.
const TRIM_PER_UPDATE: usize = 4;

/// The `users` key of the last internal number given to a pending
/// notification. No user's key is this short: ids are 1 to 128 bytes, and a
/// user's key starts with that length.
const PENDING_COUNTER: &[u8] = &[0];

/// The first number the shared counter gives.
const FIRST_SHARED_PENDING_NUMBER: u64 = 1 << 32;

pub(super) struct Tx<'a> {
    /// The channels deliveries in this transaction may use.
    pub(super) available: Channels,
    pub(super) pins: &'a pins::ResumePins,
    pub(super) preferences: &'a TransactionalTree,
    pub(super) notifications: &'a TransactionalTree,
    pub(super) inbox: &'a TransactionalTree,
    pub(super) unread: &'a TransactionalTree,
    pub(super) updates: &'a TransactionalTree,
    pub(super) users: &'a TransactionalTree,
    pub(super) delivery: &'a TransactionalTree,
    pub(super) open_digests: &'a TransactionalTree,
    pub(super) due: &'a TransactionalTree,
    pub(super) applied: &'a TransactionalTree,
    pub(super) outbound: &'a TransactionalTree,
    pub(super) outbound_due: &'a TransactionalTree,
    pub(super) outbound_meta: &'a TransactionalTree,
}

impl Tx<'_> {
    pub(super) fn preferences(&self, user: &str) -> TxResult<Preferences> {
        match self.preferences.get(keys::prefix(user))? {
            Some(bytes) => records::decode_preferences(&bytes).map_err(aborted),
            None => Ok(Preferences::default()),
        }
    }

    pub(super) fn user(&self, user: &str) -> TxResult<UserRecord> {
        match self.users.get(keys::prefix(user))? {
            Some(bytes) => records::decode("user", &bytes).map_err(aborted),
            None => Ok(UserRecord::default()),
        }
    }

    pub(super) fn put_user(&self, user: &str, record: &UserRecord) -> TxResult<()> {
        self.users.insert(keys::prefix(user), records::encode(record))?;
        Ok(())
    }

    /// A delivered or retracted notification, by its public number.
    pub(super) fn notification(&self, user: &str, number: u64) -> TxResult<Option<Notification>> {
        Self::read(self.notifications, &keys::user_number(user, number))
    }

    /// A held notification or undelivered digest, by its due time and
    /// internal number.
    pub(super) fn pending_notification(&self, user: &str, due_ms: u64, number: u64) -> TxResult<Option<Notification>> {
        Self::read(self.due, &keys::due(due_ms, user, number))
    }

    fn read(tree: &TransactionalTree, key: &[u8]) -> TxResult<Option<Notification>> {
        match tree.get(key)? {
            Some(bytes) => Ok(Some(records::decode_notification(&bytes).map_err(aborted)?)),
            None => Ok(None),
        }
    }

    /// Stores a notification where its state belongs: pending ones under
    /// their due time and internal number (the timers' index is the records
    /// themselves), delivered and retracted ones under their public number.
    pub(super) fn put_notification(&self, user: &str, notification: &Notification) -> TxResult<()> {
        let value = records::encode_notification(notification);
        match notification.state() {
            State::Pending { due, .. } => {
                self.due
                    .insert(keys::due(due.as_millis(), user, notification.number()), value)?;
            }
            State::Delivered { .. } | State::Retracted => {
                self.notifications
                    .insert(keys::user_number(user, notification.number()), value)?;
            }
        }
        Ok(())
    }

    /// Forgets a pending notification and its open-digest entry.
    pub(super) fn drop_pending(&self, user: &str, notification: &Notification) -> TxResult<()> {
        let State::Pending { due, digest } = notification.state() else {
            return Ok(());
        };
        self.due
            .remove(keys::due(due.as_millis(), user, notification.number()))?;
        if digest {
            let key = keys::user_topic(user, records::topic_code(notification.topic()));
            let open = self.open_digests.get(&key)?;
            if open.as_deref().and_then(keys::due_and_number).map(|(_, number)| number) == Some(notification.number()) {
                self.open_digests.remove(key)?;
            }
        }
        Ok(())
    }

    pub(super) fn delivery_record(&self, invitation_id: &str) -> TxResult<Option<DeliveryRecord>> {
        match self.delivery.get(keys::prefix(invitation_id))? {
            Some(bytes) => Ok(Some(records::decode("delivery", &bytes).map_err(aborted)?)),
            None => Ok(None),
        }
    }

    pub(super) fn update_delivery(
        &self,
        invitation_id: &str,
        change: impl FnOnce(&mut DeliveryRecord),
    ) -> TxResult<()> {
        if let Some(mut record) = self.delivery_record(invitation_id)? {
            change(&mut record);
            self.delivery
                .insert(keys::prefix(invitation_id), records::encode(&record))?;
        }
        Ok(())
    }

    /// Logs an update for `user` with the next cursor and queues it for
    /// live subscribers; the log keeps the last [`super::UPDATES_KEPT`], or
    /// more while a resume point is pinned (see [`pins`]).
    pub(super) fn log_update(
        &self,
        user: &str,
        kind: impl FnOnce(u64) -> UpdateKind,
        out: &mut Updates,
    ) -> TxResult<u64> {
        let mut counters = self.user(user)?;
        counters.last_cursor += 1;
        let cursor = counters.last_cursor;
        let update = Update {
            cursor,
            kind: kind(cursor),
        };
        self.updates
            .insert(keys::user_number(user, cursor), records::encode_update(&update))?;
        // Trim a few at a time: after a pin runs out, the log shrinks back
        // to its usual size over the next updates, not in one transaction.
        let keep_from = pins::keep_from(cursor, self.pins.keep_after(user, Instant::now()));
        let mut first = counters.first_kept.max(1);
        for _ in 0..TRIM_PER_UPDATE {
            if first >= keep_from {
                break;
            }
            self.updates.remove(keys::user_number(user, first))?;
            first += 1;
        }
        counters.first_kept = first;
        self.put_user(user, &counters)?;
        out.push((user.to_owned(), update));
        Ok(cursor)
    }

    pub(super) fn new_notification(&self, topic: Topic, digest: bool, due: Timestamp) -> TxResult<Notification> {
        // An internal number: the public one is given at delivery, so a
        // notification that never goes out leaves no gap in what the user
        // sees, and the inbox is in delivery order. One counter serves every
        // user, so holding a notification writes nothing of the user's own;
        // within a batch, the counter is one key written once.
        let number = self
            .users
            .get(PENDING_COUNTER)?
            .and_then(|v| keys::trailing_number(&v))
            .unwrap_or(FIRST_SHARED_PENDING_NUMBER - 1)
            + 1;
        self.users.insert(PENDING_COUNTER, &number.to_be_bytes()[..])?;
        Ok(Notification::pending(number, topic, due, digest))
    }

    /// Indexes a new item of a pending INVITATION_RECEIVED notification, so
    /// a withdrawal finds it and the sender can ask about its delivery.
    pub(super) fn index_item(&self, notification: &Notification, invitation_id: &str) -> TxResult<()> {
        let number = notification.number();
        match (notification.topic(), notification.due()) {
            (Topic::InvitationReceived, Some(due)) => self.update_delivery(invitation_id, |d| {
                d.deliver_at_ms = due.as_millis();
                d.set_location(Some((Location::Pending, number)));
            }),
            (Topic::InvitationReminder, Some(due)) => {
                self.update_delivery(invitation_id, |d| d.hold_reminder(number, due))
            }
            _ => Ok(()),
        }
    }
}
