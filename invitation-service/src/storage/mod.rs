//! The sled repository of invitation-service: one named tree per entity or
//! index, big-endian keys (see [`keys`]), versioned values (see
//! [`records`]), and every change written with its index entries and its
//! outbox event in one multi-tree transaction (see [`write`]). Reads touch
//! one key or one page of one user's prefix, never a whole tree.
//!
//! Storage imports nothing above it: it answers with domain values and its
//! own [`StoreError`], a refusal by the rules is a
//! [`DomainError`](crate::domain::DomainError) inside a successful answer,
//! and the layers above convert both.

mod bulk;
pub(crate) mod keys;
mod outbox;
pub mod records;
mod write;

use std::{
    path::Path,
    sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use service_kit::{
    checkpoint::Figures,
    storage::{Database, OpenError, record},
};
use sled::{Db, Tree};

use crate::domain::{Activity, Invitation, InvitationId, Pair, Timestamp, UserId};

pub use write::{IDEMPOTENCY_WINDOW, Op, OpOutcome, SendOutcome, TxOutcome};

/// What can go wrong below the domain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),

    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl From<record::Corrupt> for StoreError {
    fn from(e: record::Corrupt) -> Self {
        Self::Corrupt(e.to_string())
    }
}

/// The checkpoint figures for an outbox whose last durable sequence is
/// `outbox_sequence`.
#[must_use]
pub fn figures(outbox_sequence: u64) -> Figures {
    Figures::from([("outbox_sequence".to_owned(), outbox_sequence)])
}

/// The data folder and its trees.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// The same database, with its log file opened again to make flushes
    /// durable (see [`Database::flush`]).
    database: Database,
    /// Writes made outside the writer thread (the publisher's
    /// acknowledgements and outbox pruning, idempotency pruning) hold it
    /// shared; a backup, made on the writer thread, holds it alone.
    outside_writer: Arc<RwLock<()>>,
    /// id → invitation.
    invitations: Tree,
    /// sender ++ id → (): everything a user sent.
    sent: Tree,
    /// recipient ++ id → (): what a user may act on (pending, not ignored).
    received: Tree,
    /// sender ++ id → (): open invitations (pending or ignored) by sender.
    open_by_sender: Tree,
    /// pair → pending invitation, connection, cool-downs.
    pairs: Tree,
    /// user ++ connected_at ++ other → ().
    connections: Tree,
    /// user → recent sends and withdrawals, open count.
    activity: Tree,
    /// expires_at ++ id → (): open invitations by deadline.
    expiry: Tree,
    /// due ++ id → ordinal (u32): each pending invitation's next reminder.
    /// An entry whose invitation closed meanwhile is dropped when due.
    reminders: Tree,
    /// sender ++ key → idempotency record.
    idempotency: Tree,
    /// created ++ record key → (): idempotency records by age.
    idempotency_by_age: Tree,
    /// sequence → event, in sequence order.
    outbox: Tree,
    /// Counters (the last outbox sequence, the last acknowledged one).
    meta: Tree,
}

/// A page of keys after a cursor, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor for the next page; `None` at the end.
    pub next: Option<Vec<u8>>,
}

impl Store {
    /// Opens (or creates) the store in `path`.
    ///
    /// # Errors
    ///
    /// When the folder cannot be created or opened, or another process
    /// holds it.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let database = Database::open(path)?;
        let db = database.db.clone();
        Ok(Self {
            invitations: db.open_tree("invitations")?,
            sent: db.open_tree("sent_by_user")?,
            received: db.open_tree("received_by_user")?,
            open_by_sender: db.open_tree("open_by_sender")?,
            pairs: db.open_tree("pairs")?,
            connections: db.open_tree("connections")?,
            activity: db.open_tree("activity")?,
            expiry: db.open_tree("expiry")?,
            reminders: db.open_tree("reminders")?,
            idempotency: db.open_tree("idempotency")?,
            idempotency_by_age: db.open_tree("idempotency_by_age")?,
            outbox: db.open_tree("outbox")?,
            meta: db.open_tree("meta")?,
            db,
            database,
            outside_writer: Arc::default(),
        })
    }

    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    #[must_use]
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Held by a write made outside the writer thread, so that no backup
    /// copies it half-done.
    pub fn writing_outside_writer(&self) -> RwLockReadGuard<'_, ()> {
        self.outside_writer.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Held by a backup: no write outside the writer thread runs meanwhile
    /// (the writer itself is making the backup).
    pub fn alone(&self) -> RwLockWriteGuard<'_, ()> {
        self.outside_writer.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes everything written so far durable (see [`Database::flush`]).
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn flush(&self) -> Result<(), StoreError> {
        Ok(self.database.flush()?)
    }

    /// The figures of this store that only grow, for the folder's
    /// checkpoint: the last outbox sequence.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn durable_figures(&self) -> Result<Figures, OpenError> {
        let sequence = self.last_sequence().map_err(|e| match e {
            StoreError::Sled(e) => OpenError::from(e),
            StoreError::Corrupt(problem) => OpenError::Damaged(problem),
        })?;
        Ok(figures(sequence))
    }

    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn invitation(&self, id: &InvitationId) -> Result<Option<Invitation>, StoreError> {
        self.invitations
            .get(id.as_bytes())?
            .map(|v| records::decode_invitation(&v))
            .transpose()
    }

    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn pair(&self, a: &UserId, b: &UserId) -> Result<Pair, StoreError> {
        let empty = Pair::new(a.clone(), b.clone());
        let (low, high) = empty.users();
        match self.pairs.get(keys::pair(low, high))? {
            Some(bytes) => records::decode_pair(a, b, &bytes),
            None => Ok(empty),
        }
    }

    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn activity(&self, user: &UserId) -> Result<Activity, StoreError> {
        self.activity
            .get(keys::user_prefix(user))?
            .map(|v| records::decode_activity(&v))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// When the user's oldest open invitation was sent.
    ///
    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn oldest_open_sent(&self, user: &UserId) -> Result<Option<Timestamp>, StoreError> {
        let Some((key, _)) = self
            .open_by_sender
            .scan_prefix(keys::user_prefix(user))
            .next()
            .transpose()?
        else {
            return Ok(None);
        };
        let id = keys::invitation_id_suffix(&key).ok_or_else(|| StoreError::Corrupt("open index key".into()))?;
        Ok(self.invitation(&id)?.map(|inv| inv.created_at))
    }

    /// Invitations `user` sent, newest first.
    ///
    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn sent_page(&self, user: &UserId, after: Option<&[u8]>, limit: usize) -> Result<Page<Invitation>, StoreError> {
        // The index holds a copy of each record: one range scan, no lookups.
        let page = reverse_page(&self.sent, &keys::user_prefix(user), after, limit)?;
        let mut items = Vec::with_capacity(page.items.len());
        for (suffix, value) in &page.items {
            if value.is_empty() {
                // An entry written before the index held copies.
                items.push(self.indexed_invitation(suffix)?);
            } else {
                items.push(records::decode_invitation(value)?);
            }
        }
        Ok(Page { items, next: page.next })
    }

    /// Invitations `user` may act on, newest first.
    ///
    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn received_page(
        &self,
        user: &UserId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page<Invitation>, StoreError> {
        self.invitation_page(&self.received, user, after, limit)
    }

    fn invitation_page(
        &self,
        index: &Tree,
        user: &UserId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page<Invitation>, StoreError> {
        let page = reverse_page(index, &keys::user_prefix(user), after, limit)?;
        let mut items = Vec::with_capacity(page.items.len());
        for (suffix, _) in &page.items {
            items.push(self.indexed_invitation(suffix)?);
        }
        Ok(Page { items, next: page.next })
    }

    /// The record an index entry names by the id at the end of its key.
    fn indexed_invitation(&self, suffix: &[u8]) -> Result<Invitation, StoreError> {
        let id = keys::invitation_id_suffix(suffix).ok_or_else(|| StoreError::Corrupt("index key".into()))?;
        self.invitation(&id)?
            .ok_or_else(|| StoreError::Corrupt(format!("index names missing {id}")))
    }

    /// `user`'s connections, newest first, as (other user, connected at).
    ///
    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn connections_page(
        &self,
        user: &UserId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page<(UserId, Timestamp)>, StoreError> {
        let page = reverse_page(&self.connections, &keys::user_prefix(user), after, limit)?;
        let mut items = Vec::with_capacity(page.items.len());
        for (suffix, _) in &page.items {
            let (at, other) =
                keys::connection_suffix(suffix).ok_or_else(|| StoreError::Corrupt("connection key".into()))?;
            let other = UserId::parse("other", other).map_err(|_| StoreError::Corrupt("connection user".into()))?;
            items.push((other, at));
        }
        Ok(Page { items, next: page.next })
    }

    /// Open invitations due to expire at or before `now`, oldest first.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn due_expiries(&self, now: Timestamp, limit: usize) -> Result<Vec<InvitationId>, StoreError> {
        let end = keys::sequence(now.as_millis().saturating_add(1));
        let mut ids = Vec::new();
        for entry in self.expiry.range(..end).take(limit) {
            let (key, _) = entry?;
            ids.push(keys::invitation_id_suffix(&key).ok_or_else(|| StoreError::Corrupt("expiry key".into()))?);
        }
        Ok(ids)
    }

    /// Reminders due at or before `now`, oldest first, as (due, invitation).
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn due_reminders(&self, now: Timestamp, limit: usize) -> Result<Vec<(Timestamp, InvitationId)>, StoreError> {
        let end = keys::sequence(now.as_millis().saturating_add(1));
        let mut due = Vec::new();
        for entry in self.reminders.range(..end).take(limit) {
            let (key, _) = entry?;
            let corrupt = || StoreError::Corrupt("reminder key".into());
            due.push((
                keys::due_time(&key).ok_or_else(corrupt)?,
                keys::invitation_id_suffix(&key).ok_or_else(corrupt)?,
            ));
        }
        Ok(due)
    }

    /// Outbox entries after `after`, in sequence order, as (sequence, event bytes).
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.outbox.range(keys::sequence(after.saturating_add(1))..).take(limit) {
            let (key, value) = entry?;
            let seq = keys::leading_u64(&key).ok_or_else(|| StoreError::Corrupt("outbox key".into()))?;
            out.push((seq, value.to_vec()));
        }
        Ok(out)
    }

    /// The last sequence written to the outbox; 0 when none.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn last_sequence(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(write::OUTBOX_SEQUENCE)?
            .and_then(|v| keys::leading_u64(&v))
            .unwrap_or(0))
    }
}

/// One page of the entries under `prefix`, newest (largest key) first,
/// strictly before the cursor `after` (a key suffix). Returns (key suffix,
/// value) pairs.
fn reverse_page(
    tree: &Tree,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Page<(Vec<u8>, sled::IVec)>, StoreError> {
    let start = prefix.to_vec();
    let end = match after {
        Some(cursor) => [prefix, cursor].concat(),
        // Past every key with this prefix: suffixes are shorter than this.
        None => [prefix, &[0xff; 160][..]].concat(),
    };
    let mut items = Vec::with_capacity(limit.min(128));
    let mut next = None;
    for entry in tree.range(start..end).rev() {
        let (key, value) = entry?;
        if items.len() == limit {
            next = items.last().map(|(suffix, _): &(Vec<u8>, _)| suffix.clone());
            break;
        }
        items.push((key[prefix.len()..].to_vec(), value));
    }
    Ok(Page { items, next })
}
#[cfg(test)]
mod model_tests;
#[cfg(test)]
pub(crate) mod tests;
