//! Every change, as one sled transaction: an event batch with its applied
//! sequence, a timer firing, read marks. Closures only read and write the
//! transaction's trees and call the pure domain (sled may run them twice).
//! Each returns the updates it logged, to fan out once durable.

use service_kit::storage::tx::{abort, finish};
use sled::Transactional as _;

use crate::domain::{Channels, Event, Settings, Timestamp, Update};

use super::{Store, StoreError, keys, tx::Tx};

/// What a transaction closure returns: a value, or an abort with ours.
pub(super) type TxResult<T> = service_kit::storage::tx::TxResult<T, StoreError>;

/// Updates for live subscribers, per user, in cursor order.
pub type Updates = Vec<(String, Update)>;

/// The result of applying an event batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The last sequence now applied for the source.
    pub applied_through: u64,
    pub updates: Updates,
}

/// The `applied` key of a JetStream partition: its value is the stream
/// sequence of the last message applied, then the highest event sequence.
#[must_use]
pub fn partition_source(partition: u32) -> String {
    format!("jetstream/{partition}")
}

/// A pending notification whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueNotification {
    pub due: Timestamp,
    pub user: String,
    pub number: u64,
}

impl Store {
    /// Runs `f` in one transaction over every tree; deliveries in it may
    /// use the channels in `available`.
    pub(super) fn transact<T>(&self, available: Channels, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T, StoreError> {
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
            &self.outbound,
            &self.outbound_due,
            &self.outbound_meta,
        );
        finish(trees.transaction(
            |(
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
                outbound,
                outbound_due,
                outbound_meta,
            )| {
                f(&Tx {
                    available,
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
                    outbound,
                    outbound_due,
                    outbound_meta,
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
    ) -> Result<Applied, StoreError> {
        self.transact(settings.channels, |tx| {
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
                    return abort(StoreError::SequenceGap {
                        expected: applied + 1,
                        got: event.sequence,
                    });
                }
                tx.apply_event(event, settings, now, &|_| true, &mut updates)?;
                applied = event.sequence;
            }
            tx.applied.insert(source.as_bytes(), &applied.to_be_bytes()[..])?;
            Ok(Applied {
                applied_through: applied,
                updates: updates.clone(),
            })
        })
    }

    /// See [`Store::apply_partition`]: (stream sequence, event sequence) of
    /// the partition's last applied message; zeros before the first.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn partition_position(&self, partition: u32) -> Result<(u64, u64), StoreError> {
        let Some(value) = self.applied.get(partition_source(partition).as_bytes())? else {
            return Ok((0, 0));
        };
        let stream = value
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes);
        match (stream, keys::trailing_number(&value)) {
            (Some(stream), Some(event)) if value.len() == 16 => Ok((stream, event)),
            _ => Err(StoreError::Corrupt(format!("the position of partition {partition}"))),
        }
    }

    /// Applies a batch of events from the JetStream partition `partition`
    /// of `count` in one transaction with the partition's position: the
    /// stream sequence of the batch's last message and the highest event
    /// sequence applied. An event at or below that sequence is a copy (a
    /// redelivery, or a republish past the duplicate window) and skipped;
    /// gaps are expected, as a partition holds only its users' events. Only
    /// the effects on users of the partition are applied: an acceptance is
    /// in the sender's partition too, for the sender's notice.
    ///
    /// # Errors
    ///
    /// A storage failure.
    pub fn apply_partition(
        &self,
        partition: u32,
        count: u32,
        events: &[Event],
        stream_sequence: u64,
        settings: &Settings,
        now: Timestamp,
    ) -> Result<Applied, StoreError> {
        let key = partition_source(partition);
        let here = move |user: &str| service_kit::partition::partition_of(user, count) == partition;
        self.transact(settings.channels, |tx| {
            let mut applied = tx
                .applied
                .get(key.as_bytes())?
                .and_then(|v| keys::trailing_number(&v))
                .unwrap_or(0);
            let mut updates = Vec::new();
            for event in events {
                if event.sequence > applied {
                    tx.apply_event(event, settings, now, &here, &mut updates)?;
                    applied = event.sequence;
                }
            }
            let mut position = stream_sequence.to_be_bytes().to_vec();
            position.extend_from_slice(&applied.to_be_bytes());
            tx.applied.insert(key.as_bytes(), position)?;
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
    pub fn fire(&self, due: &DueNotification, settings: &Settings, now: Timestamp) -> Result<Updates, StoreError> {
        self.transact(settings.channels, |tx| {
            let mut updates = Vec::new();
            match tx.pending_notification(&due.user, due.due.as_millis(), due.number)? {
                Some(notification) => tx.deliver(&due.user, notification, true, now, &mut updates)?,
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
    pub fn mark_read(&self, user: &str, numbers: Option<&[u64]>) -> Result<u32, StoreError> {
        let numbers: Vec<u64> = match numbers {
            Some(numbers) => numbers.to_vec(),
            None => self
                .unread
                .scan_prefix(keys::prefix(user))
                .keys()
                .map(|k| k.map(|k| keys::trailing_number(&k).unwrap_or(0)))
                .collect::<Result<_, _>>()?,
        };
        // Marking read delivers nothing.
        self.transact(Channels::IN_APP, |tx| {
            let mut counters = tx.user(user)?;
            for &number in &numbers {
                if tx.unread.remove(keys::user_number(user, number))?.is_some() {
                    counters.unread = counters.unread.saturating_sub(1);
                    if let Some(mut notification) = tx.notification(user, number)? {
                        notification.mark_read();
                        tx.put_notification(user, &notification)?;
                    }
                }
            }
            tx.put_user(user, &counters)?;
            Ok(counters.unread)
        })
    }
}
