//! The application layer: hands each state change to the writer (which
//! answers once it is on disk), reads the store, and supplies ids and the
//! time. Handlers call this; it knows nothing of gRPC.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use service_kit::failstop::FailStop;

use crate::{
    domain::{
        Action, Activity, Clock, IdempotencyKey, Invitation, InvitationId, Pair, Policy, SendRequest, Timestamp, UserId,
    },
    error::Error,
    storage::{Op, OpOutcome, Page, SendOutcome, Store, TxOutcome},
    writer::Writer,
};

/// Most invitations expired (or reminded of) in one batch of a sweep.
const EXPIRY_BATCH: usize = 512;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub expired: usize,
    pub reminded: usize,
}

/// The invitation operations, durable when they return.
#[derive(Debug, Clone)]
pub struct Invitations {
    store: Arc<Store>,
    writer: Writer,
    fail: FailStop,
    clock: Arc<dyn Clock>,
    policy: Arc<Policy>,
    /// What the sweeps did since the process started.
    swept: Arc<SweptTotals>,
}

/// Invitations expired and reminders emitted since the process started.
#[derive(Debug, Default)]
pub struct SweptTotals {
    pub expired: AtomicU64,
    pub reminded: AtomicU64,
}

/// The caller's etiquette figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub sent_last_7_days: u32,
    pub weekly_limit: u32,
    pub withdrawn_last_30_days: u32,
    pub pending_sent: u32,
    pub oldest_pending_at: Option<Timestamp>,
    pub next_send_available_at: Option<Timestamp>,
}

fn new_id(now: Timestamp) -> InvitationId {
    InvitationId::new(now, rand::random())
}

impl Invitations {
    /// Starts the writer thread.
    ///
    /// # Errors
    ///
    /// When the writer thread cannot be started.
    pub fn new(store: Store, clock: Arc<dyn Clock>, policy: Policy, fail: FailStop) -> Result<Self, Error> {
        let policy = Arc::new(policy);
        let writer = Writer::start(store.clone(), Arc::clone(&policy), fail.clone())?;
        Ok(Self {
            store: Arc::new(store),
            writer,
            fail,
            clock,
            policy,
            swept: Arc::default(),
        })
    }

    /// What the sweeps did since the process started.
    #[must_use]
    pub fn swept_totals(&self) -> &SweptTotals {
        &self.swept
    }

    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Tripped by the first storage fault; the app then stops serving.
    #[must_use]
    pub fn fail_stop(&self) -> &FailStop {
        &self.fail
    }

    /// A copy of the database in `destination`, as of one instant.
    ///
    /// # Errors
    ///
    /// A destination that cannot be used; storage failures.
    pub async fn backup(&self, destination: std::path::PathBuf) -> Result<service_kit::storage::BackupReport, Error> {
        self.writer.backup(destination).await
    }

    /// The last outbox sequence on disk; the publisher sends nothing later.
    #[must_use]
    pub fn durable_through(&self) -> u64 {
        self.writer.durable_through()
    }

    /// Resolves once new outbox events are durable; the publisher waits on it.
    pub async fn outbox_written(&self) {
        self.writer.outbox_written().await;
    }

    /// Runs storage work on the blocking pool: none after a storage fault,
    /// and a fault here trips the fail-stop (see [`FailStop::blocking`]).
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        self.fail.blocking(&self.store, f).await
    }

    /// # Errors
    ///
    /// The rule the request breaks, or an internal failure.
    pub async fn send(&self, request: SendRequest, key: Option<IdempotencyKey>) -> Result<Invitation, Error> {
        let now = self.now();
        let sender = request.sender.clone();
        let op = Op::Send {
            request,
            key,
            id: new_id(now),
            event_id: new_id(now),
            now,
        };
        match self.writer.write(op).await? {
            OpOutcome::Sent(SendOutcome::Created(inv)) => Ok(inv),
            OpOutcome::Sent(SendOutcome::Replayed(id)) => self.get(&sender, &id),
            other @ (OpOutcome::Acted(_)
            | OpOutcome::Expired(_)
            | OpOutcome::Reminded(_)
            | OpOutcome::ConnectionRemoved) => Err(unexpected(&other)),
        }
    }

    /// # Errors
    ///
    /// NotFound, the rule the action breaks, or an internal failure.
    pub async fn act(&self, actor: UserId, id: InvitationId, action: Action) -> Result<Invitation, Error> {
        let now = self.now();
        let op = Op::Act {
            actor,
            id,
            action,
            event_id: new_id(now),
            now,
        };
        match self.writer.write(op).await? {
            OpOutcome::Acted(TxOutcome::Changed(inv) | TxOutcome::Unchanged(inv)) => Ok(inv),
            other @ (OpOutcome::Sent(_)
            | OpOutcome::Expired(_)
            | OpOutcome::Reminded(_)
            | OpOutcome::ConnectionRemoved) => Err(unexpected(&other)),
        }
    }

    /// The invitation, if `viewer` may see it.
    ///
    /// # Errors
    ///
    /// NotFound (the same for every reason), or an internal failure.
    ///
    /// One point read of an in-memory page as a rule, done in place: a hop
    /// to the blocking pool would cost more than the read.
    pub fn get(&self, viewer: &UserId, id: &InvitationId) -> Result<Invitation, Error> {
        self.fail.ensure_running()?;
        let inv = self.fail.check(self.store.invitation(id).map_err(Error::from))?;
        inv.filter(|inv| inv.role_of(viewer).is_some())
            .ok_or(Error::Domain(crate::domain::DomainError::InvitationNotFound))
    }

    /// # Errors
    ///
    /// Internal failures.
    pub async fn sent(&self, user: UserId, after: Option<Vec<u8>>, limit: usize) -> Result<Page<Invitation>, Error> {
        self.blocking(move |store| Ok(store.sent_page(&user, after.as_deref(), limit)?))
            .await
    }

    /// # Errors
    ///
    /// Internal failures.
    pub async fn received(
        &self,
        user: UserId,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<Invitation>, Error> {
        self.blocking(move |store| Ok(store.received_page(&user, after.as_deref(), limit)?))
            .await
    }

    /// # Errors
    ///
    /// Internal failures.
    pub async fn connections(
        &self,
        user: UserId,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<(UserId, Timestamp)>, Error> {
        self.blocking(move |store| Ok(store.connections_page(&user, after.as_deref(), limit)?))
            .await
    }

    /// # Errors
    ///
    /// Internal failures.
    ///
    /// A point read, done in place (see [`Self::get`]).
    pub fn pair(&self, a: &UserId, b: &UserId) -> Result<Pair, Error> {
        self.fail.ensure_running()?;
        self.fail.check(self.store.pair(a, b).map_err(Error::from))
    }

    /// # Errors
    ///
    /// NotConnected, or an internal failure.
    pub async fn remove_connection(&self, user: UserId, other: UserId) -> Result<(), Error> {
        match self.writer.write(Op::RemoveConnection { user, other }).await? {
            OpOutcome::ConnectionRemoved => Ok(()),
            other @ (OpOutcome::Sent(_) | OpOutcome::Acted(_) | OpOutcome::Expired(_) | OpOutcome::Reminded(_)) => {
                Err(unexpected(&other))
            }
        }
    }

    /// # Errors
    ///
    /// Internal failures.
    pub async fn stats(&self, user: UserId) -> Result<Stats, Error> {
        let now = self.now();
        let limit = self.policy.weekly_limit;
        let (activity, oldest): (Activity, _) = self
            .blocking(move |store| Ok((store.activity(&user)?, store.oldest_open_sent(&user)?)))
            .await?;
        Ok(Stats {
            sent_last_7_days: activity.sent_in_window(now),
            weekly_limit: limit,
            withdrawn_last_30_days: activity.withdrawn_in_window(now),
            pending_sent: activity.pending_sent,
            oldest_pending_at: oldest,
            next_send_available_at: activity.next_send_at(limit, now),
        })
    }

    /// Expires every open invitation that is due, fires the reminders that
    /// are due (expiries first, so no reminder goes out for an invitation
    /// past its deadline), and forgets idempotency keys older than their
    /// window.
    ///
    /// # Errors
    ///
    /// Internal failures.
    pub async fn sweep(&self) -> Result<Swept, Error> {
        let now = self.now();
        let swept = Swept {
            expired: self
                .write_due(
                    move |store| store.due_expiries(now, EXPIRY_BATCH),
                    |id| Op::Expire {
                        id,
                        event_id: new_id(now),
                        now,
                    },
                    |outcome| matches!(outcome, OpOutcome::Expired(Some(_))),
                )
                .await?,
            reminded: self
                .write_due(
                    move |store| store.due_reminders(now, EXPIRY_BATCH),
                    |(due, id)| Op::Remind {
                        due,
                        id,
                        event_id: new_id(now),
                        now,
                    },
                    |outcome| matches!(outcome, OpOutcome::Reminded(Some(_))),
                )
                .await?,
        };
        self.blocking(move |store| {
            let _writing = store.writing_outside_writer();
            Ok(store.prune_idempotency(now.minus(crate::storage::IDEMPOTENCY_WINDOW), EXPIRY_BATCH)?)
        })
        .await?;
        self.swept.expired.fetch_add(swept.expired as u64, Ordering::Relaxed);
        self.swept.reminded.fetch_add(swept.reminded as u64, Ordering::Relaxed);
        Ok(swept)
    }
}

impl Invitations {
    /// Writes `op` for everything `due` reads, a batch at a time until a
    /// batch comes back short, and counts the outcomes that `did` something.
    async fn write_due<T: Send + 'static>(
        &self,
        due: impl Fn(&Store) -> Result<Vec<T>, crate::storage::StoreError> + Clone + Send + 'static,
        op: impl Fn(T) -> Op,
        did: impl Fn(&OpOutcome) -> bool,
    ) -> Result<usize, Error> {
        let mut done = 0;
        loop {
            let read = due.clone();
            let batch = self.blocking(move |store| Ok(read(store)?)).await?;
            let full = batch.len() >= EXPIRY_BATCH;
            for outcome in self.writer.write_all(batch.into_iter().map(&op).collect()).await? {
                if did(&outcome?) {
                    done += 1;
                }
            }
            if !full {
                return Ok(done);
            }
        }
    }
}

/// The writer answered an operation with another's outcome: a bug.
fn unexpected(outcome: &OpOutcome) -> Error {
    Error::Task(format!("the writer answered {outcome:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ManualClock;

    #[tokio::test]
    async fn after_a_storage_fault_reads_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let fail = FailStop::default();
        let clock = Arc::new(ManualClock::starting_at(Timestamp::from_millis(1_700_000_000_000)));
        let invitations = Invitations::new(store, clock, Policy::default(), fail.clone()).unwrap();
        let ann = UserId::parse("user", "ann").unwrap();
        assert_eq!(invitations.sent(ann.clone(), None, 10).await.unwrap().items, vec![]);

        fail.trip(&"No space left on device (os error 28)");

        let refused = invitations.sent(ann.clone(), None, 10).await;
        assert!(matches!(refused, Err(Error::StorageFailed)), "{refused:?}");
        let refused = invitations.stats(ann.clone()).await;
        assert!(matches!(refused, Err(Error::StorageFailed)), "{refused:?}");
        // Point reads, made in place, too.
        let refused = invitations.get(&ann, &InvitationId::new(Timestamp::from_millis(1), 1));
        assert!(matches!(refused, Err(Error::StorageFailed)), "{refused:?}");
    }
}
