//! Every change, as one sled transaction: an event batch with its applied
//! sequence, a timer firing, read marks. Closures only read and write the
//! transaction's trees and call the pure domain (sled may run them twice).
//! Each returns the updates it logged, to fan out once durable.

use std::time::Instant;

use proto::notifications::v1::{self as pb, notification_update::Kind};
use sled::{
    Transactional as _,
    transaction::{ConflictableTransactionError, TransactionError, TransactionalTree},
};

use crate::{
    convert,
    domain::{Action, Detail, Event, EventKind, Item, Preferences, Settings, Timestamp, Topic, decide},
    error::Error,
};

use super::{
    Store, StoreError, keys, pins,
    records::{self, DELIVERED, DeliveryRecord, Location, NotificationRecord, PENDING, RETRACTED, UserRecord},
};

/// Most entries one logged update trims from the log; more than one, so a
/// log grown while a resume point was pinned shrinks back.
const TRIM_PER_UPDATE: usize = 4;

type TxResult<T> = Result<T, ConflictableTransactionError<Error>>;

fn abort<T>(e: impl Into<Error>) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e.into()))
}

fn corrupt(e: StoreError) -> ConflictableTransactionError<Error> {
    ConflictableTransactionError::Abort(Error::Store(e))
}

fn finish<T>(result: Result<T, TransactionError<Error>>) -> Result<T, Error> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => Error::Store(StoreError::Sled(e)),
    })
}

/// Updates for live subscribers, per user, in cursor order.
pub type Updates = Vec<(String, pb::NotificationUpdate)>;

/// The result of applying an event batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The last sequence now applied for the source.
    pub applied_through: u64,
    pub updates: Updates,
}

/// A pending notification whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueNotification {
    pub due: Timestamp,
    pub user: String,
    pub number: u64,
}

/// The `users` key of the last internal number given to a pending
/// notification. No user's key is this short: ids are 1 to 128 bytes, and a
/// user's key starts with that length.
const PENDING_COUNTER: &[u8] = &[0];

/// The first number the shared counter gives.
const FIRST_SHARED_PENDING_NUMBER: u64 = 1 << 32;

struct Tx<'a> {
    pins: &'a pins::ResumePins,
    preferences: &'a TransactionalTree,
    notifications: &'a TransactionalTree,
    inbox: &'a TransactionalTree,
    unread: &'a TransactionalTree,
    updates: &'a TransactionalTree,
    users: &'a TransactionalTree,
    delivery: &'a TransactionalTree,
    open_digests: &'a TransactionalTree,
    due: &'a TransactionalTree,
    applied: &'a TransactionalTree,
}

impl Tx<'_> {
    fn preferences(&self, user: &str) -> TxResult<Preferences> {
        match self.preferences.get(keys::prefix(user))? {
            Some(bytes) => records::decode_preferences(&bytes).map_err(corrupt),
            None => Ok(Preferences::default()),
        }
    }

    fn user(&self, user: &str) -> TxResult<UserRecord> {
        match self.users.get(keys::prefix(user))? {
            Some(bytes) => records::decode("user", &bytes).map_err(corrupt),
            None => Ok(UserRecord::default()),
        }
    }

    fn put_user(&self, user: &str, record: &UserRecord) -> TxResult<()> {
        self.users.insert(keys::prefix(user), records::encode(record))?;
        Ok(())
    }

    /// A delivered or retracted notification, by its public number.
    fn notification(&self, user: &str, number: u64) -> TxResult<Option<NotificationRecord>> {
        Self::read(self.notifications, &keys::user_number(user, number))
    }

    /// A held notification or undelivered digest, by its due time and
    /// internal number.
    fn pending_notification(&self, user: &str, due_ms: u64, number: u64) -> TxResult<Option<NotificationRecord>> {
        Self::read(self.due, &keys::due(due_ms, user, number))
    }

    fn read(tree: &TransactionalTree, key: &[u8]) -> TxResult<Option<NotificationRecord>> {
        match tree.get(key)? {
            Some(bytes) => Ok(Some(records::decode("notification", &bytes).map_err(corrupt)?)),
            None => Ok(None),
        }
    }

    /// Stores a record where its state belongs: pending ones under their due
    /// time and internal number (the timers' index is the records
    /// themselves), delivered ones under their public number.
    fn put_notification(&self, user: &str, record: &NotificationRecord) -> TxResult<()> {
        if record.state == PENDING {
            self.due
                .insert(keys::due(record.due_ms, user, record.number), records::encode(record))?;
        } else {
            self.notifications
                .insert(keys::user_number(user, record.number), records::encode(record))?;
        }
        Ok(())
    }

    /// Forgets a pending record and its open-digest entry.
    fn drop_pending(&self, user: &str, record: &NotificationRecord) -> TxResult<()> {
        self.due.remove(keys::due(record.due_ms, user, record.number))?;
        if record.digest {
            let key = keys::user_topic(user, u8::try_from(record.topic).unwrap_or(0));
            let open = self.open_digests.get(&key)?;
            if open.as_deref().and_then(keys::due_and_number).map(|(_, number)| number) == Some(record.number) {
                self.open_digests.remove(key)?;
            }
        }
        Ok(())
    }

    fn delivery_record(&self, invitation_id: &str) -> TxResult<Option<DeliveryRecord>> {
        match self.delivery.get(keys::prefix(invitation_id))? {
            Some(bytes) => Ok(Some(records::decode("delivery", &bytes).map_err(corrupt)?)),
            None => Ok(None),
        }
    }

    fn update_delivery(&self, invitation_id: &str, change: impl FnOnce(&mut DeliveryRecord)) -> TxResult<()> {
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
    fn log_update(&self, user: &str, kind: impl FnOnce(u64) -> TxResult<Kind>, out: &mut Updates) -> TxResult<u64> {
        let mut counters = self.user(user)?;
        counters.last_cursor += 1;
        let cursor = counters.last_cursor;
        let update = pb::NotificationUpdate {
            cursor,
            kind: Some(kind(cursor)?),
        };
        self.updates
            .insert(keys::user_number(user, cursor), records::encode(&update))?;
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

    fn new_notification(&self, topic: Topic, digest: bool, due: Timestamp) -> TxResult<NotificationRecord> {
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
        Ok(NotificationRecord {
            number,
            topic: u32::from(records::topic_code(topic)),
            items: Vec::new(),
            state: PENDING,
            due_ms: due.as_millis(),
            delivered_ms: 0,
            read: false,
            cursor: 0,
            digest,
        })
    }

    /// Indexes a new item of an INVITATION_RECEIVED notification, so a
    /// withdrawal finds it and the sender can ask about its delivery.
    fn index_item(&self, record: &NotificationRecord, item: &Item) -> TxResult<()> {
        if record.topic().map_err(corrupt)? == Topic::InvitationReceived {
            let (due, number) = (record.due_ms, record.number);
            self.update_delivery(&item.invitation_id, |d| {
                d.deliver_at_ms = due;
                d.set_location(Some((Location::Pending, number)));
            })?;
        }
        Ok(())
    }

    /// Delivers a pending notification now, under the user's current
    /// preferences: a topic turned off (or paused) since drops it, and
    /// MINIMAL chosen since strips it. `stored`: whether the record (or its
    /// open-digest entry) was written as pending, and so must be forgotten.
    fn deliver(
        &self,
        user: &str,
        record: &mut NotificationRecord,
        stored: bool,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        if stored {
            self.drop_pending(user, record)?;
        }
        let topic = record.topic().map_err(corrupt)?;
        let received = topic == Topic::InvitationReceived;
        let preferences = self.preferences(user)?;
        let Some(preference) = preferences.active(topic) else {
            for id in record.invitation_ids().map(str::to_owned).collect::<Vec<_>>() {
                if received {
                    self.update_delivery(&id, |d| {
                        d.deliver_at_ms = 0;
                        d.set_location(None);
                    })?;
                }
            }
            return Ok(());
        };
        if preference.detail == Detail::Minimal {
            record.make_minimal();
        }
        let mut counters = self.user(user)?;
        counters.last_notification += 1;
        counters.unread = counters.unread.saturating_add(1);
        self.put_user(user, &counters)?;
        record.number = counters.last_notification;
        record.state = DELIVERED;
        record.delivered_ms = now.as_millis();
        self.inbox.insert(keys::user_number(user, record.number), &[])?;
        self.unread.insert(keys::user_number(user, record.number), &[])?;
        if received {
            for id in record.invitation_ids().map(str::to_owned).collect::<Vec<_>>() {
                let number = record.number;
                self.update_delivery(&id, |d| {
                    d.delivered = true;
                    d.deliver_at_ms = 0;
                    d.set_location(Some((Location::Delivered, number)));
                })?;
            }
        }
        self.log_update(
            user,
            |cursor| {
                record.cursor = cursor;
                Ok(Kind::Delivered(convert::notification(record).map_err(corrupt)?))
            },
            out,
        )?;
        self.put_notification(user, record)
    }

    /// Delivers `record` now if it is due, or files it under its due time.
    fn deliver_or_schedule(
        &self,
        user: &str,
        record: &mut NotificationRecord,
        stored: bool,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        if record.due_ms <= now.as_millis() {
            self.deliver(user, record, stored, now, out)
        } else {
            self.put_notification(user, record)
        }
    }

    fn hold(
        &self,
        user: &str,
        topic: Topic,
        item: &Item,
        due: Timestamp,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        let mut record = self.new_notification(topic, false, due)?;
        record.push(item);
        self.index_item(&record, item)?;
        // Delivered at once (no undo window), it is never stored as pending.
        self.deliver_or_schedule(user, &mut record, false, now, out)
    }

    fn add_to_digest(
        &self,
        user: &str,
        topic: Topic,
        item: &Item,
        interval: std::time::Duration,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        let key = keys::user_topic(user, records::topic_code(topic));
        let open = match self.open_digests.get(&key)?.as_deref().and_then(keys::due_and_number) {
            Some((due_ms, number)) => self.pending_notification(user, due_ms, number)?,
            None => None,
        };
        let mut record = match open {
            Some(record) => record,
            None => {
                let record = self.new_notification(topic, true, now.plus(interval))?;
                self.open_digests
                    .insert(key, &keys::due_number(record.due_ms, record.number)[..])?;
                record
            }
        };
        record.push(item);
        self.index_item(&record, item)?;
        self.deliver_or_schedule(user, &mut record, true, now, out)
    }

    /// Takes the invitation out of the user's INVITATION_RECEIVED
    /// notification (see [`Action::Remove`]).
    fn remove(&self, user: &str, invitation_id: &str, retract_delivered: bool, out: &mut Updates) -> TxResult<()> {
        let Some(delivery) = self.delivery_record(invitation_id)? else {
            return Ok(());
        };
        let forget = || self.update_delivery(invitation_id, |d| d.set_location(None));
        match delivery.location().map_err(corrupt)? {
            Some((Location::Pending, number)) => {
                // A held notification is due when its invitations are.
                let Some(mut record) = self.pending_notification(user, delivery.deliver_at_ms, number)? else {
                    return Ok(());
                };
                forget()?;
                record.remove(invitation_id);
                if record.items.is_empty() {
                    // Never sent, never to be sent: no trace at all.
                    self.drop_pending(user, &record)
                } else {
                    self.put_notification(user, &record)
                }
            }
            Some((Location::Delivered, number)) if retract_delivered => {
                let Some(mut record) = self.notification(user, number)? else {
                    return Ok(());
                };
                if record.state != DELIVERED {
                    return Ok(());
                }
                forget()?;
                record.remove(invitation_id);
                if record.items.is_empty() {
                    record.state = RETRACTED;
                    self.inbox.remove(keys::user_number(user, number))?;
                    if self.unread.remove(keys::user_number(user, number))?.is_some() {
                        let mut counters = self.user(user)?;
                        counters.unread = counters.unread.saturating_sub(1);
                        self.put_user(user, &counters)?;
                    }
                    self.log_update(
                        user,
                        |_| {
                            Ok(Kind::Retracted(pb::Retraction {
                                notification_ids: vec![number.to_string()],
                            }))
                        },
                        out,
                    )?;
                } else {
                    self.log_update(
                        user,
                        |cursor| {
                            record.cursor = cursor;
                            Ok(Kind::Revised(convert::notification(&record).map_err(corrupt)?))
                        },
                        out,
                    )?;
                }
                self.put_notification(user, &record)
            }
            Some((Location::Delivered, _)) | None => Ok(()),
        }
    }

    fn apply_event(&self, event: &Event, settings: &Settings, now: Timestamp, out: &mut Updates) -> TxResult<()> {
        let recipient = self.preferences(&event.recipient_id)?;
        let sender = if event.kind.may_notify_sender() {
            self.preferences(&event.sender_id)?
        } else {
            Preferences::default()
        };
        if event.kind == EventKind::Sent {
            let record = DeliveryRecord {
                sender: event.sender_id.clone(),
                ..DeliveryRecord::default()
            };
            self.delivery
                .insert(keys::prefix(&event.invitation_id), records::encode(&record))?;
        }
        for action in decide(event, &recipient, &sender, now, settings) {
            match action {
                Action::Hold { user, topic, item, due } => self.hold(&user, topic, &item, due, now, out)?,
                Action::Digest {
                    user,
                    topic,
                    item,
                    interval,
                } => {
                    self.add_to_digest(&user, topic, &item, interval, now, out)?;
                }
                Action::Remove {
                    user,
                    invitation_id,
                    retract_delivered,
                } => {
                    self.remove(&user, &invitation_id, retract_delivered, out)?;
                }
            }
        }
        // What the sender may learn afterwards: an ignore must look like
        // nothing happened; after their own withdrawal (or an acceptance or
        // expiry) nothing more will be delivered.
        match event.kind {
            EventKind::Sent => Ok(()),
            EventKind::Ignored => self.update_delivery(&event.invitation_id, |d| d.masked = true),
            EventKind::Withdrawn { .. } | EventKind::Accepted | EventKind::Expired => {
                self.update_delivery(&event.invitation_id, |d| d.deliver_at_ms = 0)
            }
        }
    }
}

impl Store {
    fn transact<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T, Error> {
        let trees = (
            &self.preferences,
            &self.notifications,
            &self.inbox,
            &self.unread,
            &self.updates,
            &self.users,
            &self.delivery,
            &self.open_digests,
            &self.due,
            &self.applied,
        );
        finish(trees.transaction(
            |(preferences, notifications, inbox, unread, updates, users, delivery, open_digests, due, applied)| {
                f(&Tx {
                    pins: &self.pins,
                    preferences,
                    notifications,
                    inbox,
                    unread,
                    updates,
                    users,
                    delivery,
                    open_digests,
                    due,
                    applied,
                })
            },
        ))
    }

    /// Applies a batch of events from `source` in one transaction with the
    /// new applied sequence. Events at or below the applied sequence are
    /// duplicates and skipped.
    ///
    /// # Errors
    ///
    /// A gap in the sequence (nothing is applied), or a storage failure.
    pub fn apply_events(
        &self,
        source: &str,
        events: &[Event],
        settings: &Settings,
        now: Timestamp,
    ) -> Result<Applied, Error> {
        self.transact(|tx| {
            let mut applied = tx
                .applied
                .get(source.as_bytes())?
                .and_then(|v| keys::trailing_number(&v))
                .unwrap_or(0);
            let mut updates = Vec::new();
            for event in events {
                if event.sequence <= applied {
                    continue;
                }
                if event.sequence != applied + 1 {
                    return abort(Error::SequenceGap {
                        expected: applied + 1,
                        got: event.sequence,
                    });
                }
                tx.apply_event(event, settings, now, &mut updates)?;
                applied = event.sequence;
            }
            tx.applied.insert(source.as_bytes(), &applied.to_be_bytes()[..])?;
            Ok(Applied {
                applied_through: applied,
                updates: updates.clone(),
            })
        })
    }

    /// Delivers a pending notification whose time has come; nothing if it
    /// was emptied or delivered meanwhile.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn fire(&self, due: &DueNotification, now: Timestamp) -> Result<Updates, Error> {
        self.transact(|tx| {
            let mut updates = Vec::new();
            match tx.pending_notification(&due.user, due.due.as_millis(), due.number)? {
                Some(mut record) => tx.deliver(&due.user, &mut record, true, now, &mut updates)?,
                None => {
                    tx.due.remove(keys::due(due.due.as_millis(), &due.user, due.number))?;
                }
            }
            Ok(updates)
        })
    }

    /// Marks notifications read (all of the user's when `numbers` is
    /// `None`); unknown or already read ones are skipped. Returns the
    /// unread count.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn mark_read(&self, user: &str, numbers: Option<&[u64]>) -> Result<u32, Error> {
        let numbers: Vec<u64> = match numbers {
            Some(numbers) => numbers.to_vec(),
            None => self
                .unread
                .scan_prefix(keys::prefix(user))
                .keys()
                .map(|k| k.map(|k| keys::trailing_number(&k).unwrap_or(0)))
                .collect::<Result<_, _>>()
                .map_err(StoreError::from)?,
        };
        self.transact(|tx| {
            let mut counters = tx.user(user)?;
            for &number in &numbers {
                if tx.unread.remove(keys::user_number(user, number))?.is_some() {
                    counters.unread = counters.unread.saturating_sub(1);
                    if let Some(mut record) = tx.notification(user, number)? {
                        record.read = true;
                        tx.put_notification(user, &record)?;
                    }
                }
            }
            tx.put_user(user, &counters)?;
            Ok(counters.unread)
        })
    }
}
