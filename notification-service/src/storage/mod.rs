//! The sled repository of notification-service. One named tree per entity
//! or index; every event batch, timer firing or read mark is one multi-tree
//! transaction (see [`apply`]), which for ingest also stores the applied
//! sequence, so effects and progress commit together.

mod apply;
mod deliver;
pub(crate) mod keys;
mod outbound;
pub mod pins;
pub(crate) mod records;
mod tx;

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use service_kit::{
    checkpoint::Figures,
    storage::{Database, OpenError, record},
};
use sled::{Db, Tree};

use crate::domain::{Channels, DeliveryStatus, Notification, Preferences, Timestamp, Topic, Update};

pub use apply::{Applied, DueNotification, Updates, partition_source};
pub use outbound::{DueJob, HEADS_LOOKED_AT, Job, Outcome};

/// The checkpoint figure for the last event applied from `source`.
#[must_use]
pub fn figure(source: &str, applied: u64) -> (String, u64) {
    (format!("applied.{source}"), applied)
}

/// How many updates per user the log keeps for `Subscribe` resumption
/// (more while a cut-off stream's resume point is pinned: see [`pins`]).
pub const UPDATES_KEPT: u64 = 1000;

/// What storage reports: sled's own failures, a damaged record, or an
/// event batch refused for a gap in its sequence.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),

    #[error("corrupt record: {0}")]
    Corrupt(String),

    /// Nothing of the batch was applied: the publisher resumes from the
    /// resume point.
    #[error("event sequence gap: expected {expected}, got {got}; resume from the resume point")]
    SequenceGap { expected: u64, got: u64 },
}

impl From<record::Corrupt> for StoreError {
    fn from(e: record::Corrupt) -> Self {
        Self::Corrupt(e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// The same database, with its log file opened again to make flushes
    /// durable (see [`Database::flush`]).
    database: Database,
    /// Resume points the update log keeps for cut-off streams.
    pins: Arc<pins::ResumePins>,
    /// user → preferences.
    preferences: Tree,
    /// user ++ public number → delivered or retracted notification.
    notifications: Tree,
    /// user ++ number → (): delivered and not retracted, for listing.
    inbox: Tree,
    /// user ++ number → (): delivered, not retracted, not read.
    unread: Tree,
    /// user ++ cursor → update (see [`records::encode_update`]): the log
    /// `Subscribe` resumes from.
    updates: Tree,
    /// user → counters.
    users: Tree,
    /// invitation → delivery record for its sender, and where the
    /// recipient's notification of it is.
    delivery: Tree,
    /// user ++ topic → due ++ internal number of the open (undelivered) digest.
    open_digests: Tree,
    /// due ++ user ++ internal number → held notification or undelivered
    /// digest: pending records by due time, which the timers scan.
    due: Tree,
    /// source → last applied event sequence.
    applied: Tree,
    /// channel ++ user ++ seq → message to send (see [`outbound`]).
    outbound: Tree,
    /// channel ++ due ++ user ++ seq → (): the heads of the queues.
    outbound_due: Tree,
    /// Queue bounds, which message announced a notification, and counts.
    outbound_meta: Tree,
}

/// A page of items, newest first, and the cursor for the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<u64>,
}

impl Store {
    /// # Errors
    ///
    /// When the folder cannot be opened, or another process holds it.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let database = Database::open(path)?;
        let db = database.db.clone();
        let store = Self {
            preferences: db.open_tree("preferences")?,
            notifications: db.open_tree("notifications")?,
            inbox: db.open_tree("inbox")?,
            unread: db.open_tree("unread")?,
            updates: db.open_tree("updates")?,
            users: db.open_tree("users")?,
            delivery: db.open_tree("delivery")?,
            open_digests: db.open_tree("open_digests")?,
            due: db.open_tree("due")?,
            applied: db.open_tree("applied")?,
            outbound: db.open_tree("outbound")?,
            outbound_due: db.open_tree("outbound_due")?,
            outbound_meta: db.open_tree("outbound_meta")?,
            db,
            database,
            pins: Arc::default(),
        };
        Ok(store)
    }

    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    #[must_use]
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Makes everything written so far durable (see [`Database::flush`]).
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn flush(&self) -> Result<(), StoreError> {
        Ok(self.database.flush()?)
    }

    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn preferences(&self, user: &str) -> Result<Preferences, StoreError> {
        self.preferences
            .get(keys::prefix(user))?
            .map(|v| records::decode_preferences(&v))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// # Errors
    ///
    /// Storage failures.
    pub fn put_preferences(&self, user: &str, preferences: &Preferences) -> Result<(), StoreError> {
        self.preferences
            .insert(keys::prefix(user), records::encode_preferences(preferences))?;
        Ok(())
    }

    /// Changes the user's preferences as one atomic step: `change` sees the
    /// stored value and its result replaces exactly that value, or `change`
    /// runs again on the newer one (so two concurrent updates of different
    /// fields both take effect). A refusal from `change` writes nothing.
    ///
    /// # Errors
    ///
    /// Storage or decoding failures; the inner result is `change`'s refusal.
    pub fn update_preferences<E>(
        &self,
        user: &str,
        change: impl Fn(Preferences) -> Result<Preferences, E>,
    ) -> Result<Result<Preferences, E>, StoreError> {
        let key = keys::prefix(user);
        loop {
            let stored = self.preferences.get(&key)?;
            let current = stored
                .as_deref()
                .map(records::decode_preferences)
                .transpose()?
                .unwrap_or_default();
            let changed = match change(current) {
                Ok(changed) => changed,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let swapped =
                self.preferences
                    .compare_and_swap(&key, stored, Some(records::encode_preferences(&changed)))?;
            if swapped.is_ok() {
                return Ok(Ok(changed));
            }
        }
    }

    /// The figures of this store that only grow, for the folder's
    /// checkpoint: the last event applied from each source.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn durable_figures(&self) -> Result<Figures, OpenError> {
        self.applied
            .iter()
            .map(|entry| {
                let (source, value) = entry?;
                Ok(figure(
                    &String::from_utf8_lossy(&source),
                    keys::trailing_number(&value).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Notifications not yet delivered: (held for the undo window or due
    /// later on their own, digests gathering items). Counts entries, so it
    /// takes time in proportion to them: for metrics, not for requests.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn undelivered(&self) -> Result<(u64, u64), StoreError> {
        let count = |tree: &Tree| tree.iter().keys().try_fold(0_u64, |n, key| key.map(|_| n + 1));
        // Every open digest is one pending record; the rest are held.
        let (pending, digests) = (count(&self.due)?, count(&self.open_digests)?);
        Ok((pending.saturating_sub(digests), digests))
    }

    /// The last sequence applied from `source`; 0 when none.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn applied(&self, source: &str) -> Result<u64, StoreError> {
        Ok(self
            .applied
            .get(source.as_bytes())?
            .and_then(|v| keys::trailing_number(&v))
            .unwrap_or(0))
    }

    fn user(&self, user: &str) -> Result<records::UserRecord, StoreError> {
        self.users.get(keys::prefix(user))?.map_or_else(
            || Ok(records::UserRecord::default()),
            |v| Ok(records::decode("user", &v)?),
        )
    }

    /// # Errors
    ///
    /// Storage failures.
    pub fn unread_count(&self, user: &str) -> Result<u32, StoreError> {
        Ok(self.user(user)?.unread)
    }

    /// The user's last cursor; 0 when none.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn last_cursor(&self, user: &str) -> Result<u64, StoreError> {
        Ok(self.user(user)?.last_cursor)
    }

    fn notification(&self, user: &str, number: u64) -> Result<Option<Notification>, StoreError> {
        self.notifications
            .get(keys::user_number(user, number))?
            .map(|v| records::decode_notification(&v))
            .transpose()
    }

    /// Delivered notifications, newest first, from before the cursor
    /// `before` (a notification number).
    ///
    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn inbox_page(
        &self,
        user: &str,
        unread_only: bool,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Notification>, StoreError> {
        let index = if unread_only { &self.unread } else { &self.inbox };
        let start = keys::user_number(user, 0);
        let end = keys::user_number(user, before.unwrap_or(u64::MAX));
        let mut items = Vec::with_capacity(limit.min(128));
        let mut next = None;
        for entry in index.range(start..end).rev() {
            let (key, _) = entry?;
            let number = keys::trailing_number(&key).ok_or_else(|| StoreError::Corrupt("inbox key".into()))?;
            if items.len() == limit {
                next = items.last().map(Notification::number);
                break;
            }
            let notification = self
                .notification(user, number)?
                .ok_or_else(|| StoreError::Corrupt(format!("inbox names missing notification {number}")))?;
            items.push(notification);
        }
        Ok(Page { items, next })
    }

    /// The updates after `after`, in cursor order; `None` when some of them
    /// are no longer kept (or `after` is beyond the last cursor).
    ///
    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn updates_after(&self, user: &str, after: u64) -> Result<Option<Vec<Update>>, StoreError> {
        let counters = self.user(user)?;
        let last = counters.last_cursor;
        if after > last || after.saturating_add(1) < counters.first_kept.max(1) {
            return Ok(None);
        }
        let mut out = Vec::new();
        for entry in self
            .updates
            .range(keys::user_number(user, after.saturating_add(1))..keys::user_number(user, u64::MAX))
        {
            let (_, value) = entry?;
            let update = records::decode_update(&value)?;
            // A run that does not start right after `after` lost its head.
            if out.is_empty() && update.cursor != after + 1 {
                return Ok(None);
            }
            out.push(update);
        }
        if out.is_empty() && after < last {
            return Ok(None);
        }
        Ok(Some(out))
    }

    /// Keeps `user`'s updates after `after` resumable for `grace`, even if
    /// the usual [`UPDATES_KEPT`] newer ones arrive meanwhile (up to
    /// [`pins::MAX_UPDATES_KEPT`]).
    pub fn pin_resume_point(&self, user: &str, after: u64, grace: Duration) {
        self.pins.pin(user, after, Instant::now() + grace);
    }

    /// The sender's view of an invitation's delivery; `None` when unknown
    /// or `caller` is not its sender.
    ///
    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn delivery_status(
        &self,
        invitation_id: &str,
        caller: &str,
        available: Channels,
        now: Timestamp,
    ) -> Result<Option<DeliveryStatus>, StoreError> {
        let Some(bytes) = self.delivery.get(keys::prefix(invitation_id))? else {
            return Ok(None);
        };
        let record: records::DeliveryRecord = records::decode("delivery", &bytes)?;
        if record.sender != caller {
            return Ok(None);
        }
        // Where it will go when due: the recipient's choice as it stands.
        let pending_on = self
            .preferences(&record.recipient)?
            .channels(Topic::InvitationReceived, available);
        Ok(Some(record.seen_by_sender(now, pending_on)))
    }

    /// Pending notifications due at or before `now`, oldest first.
    ///
    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<DueNotification>, StoreError> {
        let end = now.as_millis().saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        for entry in self.due.range(..end.as_slice()).take(limit) {
            let (key, _) = entry?;
            let (due_ms, user, number) = keys::split_due(&key).ok_or_else(|| StoreError::Corrupt("due key".into()))?;
            out.push(DueNotification {
                due: Timestamp::from_millis(due_ms),
                user,
                number,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod outbound_tests;
#[cfg(test)]
mod tests;
