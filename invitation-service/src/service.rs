//! The application layer: runs each operation's storage transaction off the
//! async workers, waits for group commit before answering, and supplies ids
//! and the time. Handlers call this; it knows nothing of gRPC.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::{
    domain::{
        Action, Activity, Clock, IdempotencyKey, Invitation, InvitationId, Pair, Policy, SendRequest, Timestamp, UserId,
    },
    error::Error,
    storage::{GroupCommit, Page, SendOutcome, Store, TxOutcome},
};

/// Most invitations expired in one sweeper pass.
const EXPIRY_BATCH: usize = 512;

/// The invitation operations, durable when they return.
#[derive(Debug, Clone)]
pub struct Invitations {
    store: Store,
    commit: GroupCommit,
    clock: Arc<dyn Clock>,
    policy: Arc<Policy>,
    /// Signalled after each durable commit that appended to the outbox.
    outbox_written: Arc<Notify>,
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
    /// Must be called inside a tokio runtime (it starts the flusher).
    #[must_use]
    pub fn new(store: Store, clock: Arc<dyn Clock>, policy: Policy) -> Self {
        let commit = GroupCommit::start(store.db().clone());
        Self {
            store,
            commit,
            clock,
            policy: Arc::new(policy),
            outbox_written: Arc::new(Notify::new()),
        }
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

    /// Notified (`notify_one`) once new outbox events are durable; the
    /// publisher waits on it.
    #[must_use]
    pub fn outbox_written(&self) -> &Notify {
        &self.outbox_written
    }

    /// Runs blocking storage work on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Resolves once everything written before the call is on disk.
    pub(crate) async fn durable(&self) -> Result<(), Error> {
        self.commit.durable().await.map_err(Error::Flush)
    }

    /// # Errors
    ///
    /// The rule the request breaks, or an internal failure.
    pub async fn send(&self, request: SendRequest, key: Option<IdempotencyKey>) -> Result<Invitation, Error> {
        let now = self.now();
        let (id, event_id) = (new_id(now), new_id(now));
        let policy = Arc::clone(&self.policy);
        let sender = request.sender.clone();
        let outcome = self
            .blocking(move |store| store.send(&policy, &request, key.as_ref(), id, event_id, now))
            .await?;
        // A replay waits too: its first request may still be flushing.
        self.durable().await?;
        match outcome {
            SendOutcome::Created(inv) => {
                self.outbox_written.notify_one();
                Ok(inv)
            }
            SendOutcome::Replayed(id) => self.get(&sender, &id).await,
        }
    }

    /// # Errors
    ///
    /// NotFound, the rule the action breaks, or an internal failure.
    pub async fn act(&self, actor: UserId, id: InvitationId, action: Action) -> Result<Invitation, Error> {
        let now = self.now();
        let event_id = new_id(now);
        let policy = Arc::clone(&self.policy);
        let outcome = self
            .blocking(move |store| store.act(&policy, &actor, &id, &action, event_id, now))
            .await?;
        self.durable().await?;
        match outcome {
            TxOutcome::Changed(inv) => {
                self.outbox_written.notify_one();
                Ok(inv)
            }
            TxOutcome::Unchanged(inv) => Ok(inv),
        }
    }

    /// The invitation, if `viewer` may see it.
    ///
    /// # Errors
    ///
    /// NotFound (the same for every reason), or an internal failure.
    pub async fn get(&self, viewer: &UserId, id: &InvitationId) -> Result<Invitation, Error> {
        let id = *id;
        let inv = self.blocking(move |store| Ok(store.invitation(&id)?)).await?;
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
    pub async fn pair(&self, a: UserId, b: UserId) -> Result<Pair, Error> {
        self.blocking(move |store| Ok(store.pair(&a, &b)?)).await
    }

    /// # Errors
    ///
    /// NotConnected, or an internal failure.
    pub async fn remove_connection(&self, user: UserId, other: UserId) -> Result<(), Error> {
        self.blocking(move |store| store.remove_connection(&user, &other))
            .await?;
        self.durable().await
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

    /// Expires every open invitation that is due, and forgets idempotency
    /// keys older than their window. Returns how many invitations expired.
    ///
    /// # Errors
    ///
    /// Internal failures.
    pub async fn sweep(&self) -> Result<usize, Error> {
        let now = self.now();
        let expired = self
            .blocking(move |store| {
                let mut expired = 0;
                loop {
                    let due = store.due_expiries(now, EXPIRY_BATCH)?;
                    for id in &due {
                        if store.expire(id, new_id(now), now)?.is_some() {
                            expired += 1;
                        }
                    }
                    if due.len() < EXPIRY_BATCH {
                        break;
                    }
                }
                store.prune_idempotency(now.minus(crate::storage::IDEMPOTENCY_WINDOW), EXPIRY_BATCH)?;
                Ok(expired)
            })
            .await?;
        if expired > 0 {
            self.durable().await?;
            self.outbox_written.notify_one();
        }
        Ok(expired)
    }
}
