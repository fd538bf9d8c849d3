//! The writer: one thread that owns every state change. It takes whatever
//! operations are waiting, applies them in one sled transaction, flushes
//! once, and only then answers each caller. Under load a batch holds many
//! requests, so the transaction's commit, the flush and the thread wake-ups
//! are shared by all of them; when idle, a request is a batch of one.

use std::{
    panic::{self, AssertUnwindSafe},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    thread,
};

use tokio::sync::{Notify, mpsc, oneshot};

use std::path::PathBuf;

use service_kit::{failstop::FailStop, storage::BackupReport};

use crate::{
    domain::Policy,
    error::Error,
    storage::{Op, OpOutcome, Store},
};

/// Most operations applied in one transaction. Bounds the transaction's
/// size and the wait of the first request in it.
pub(crate) const MAX_BATCH: usize = 512;

/// Requests waiting for the writer; a full queue makes callers wait.
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<OpOutcome, Error>>;

/// What the writer is asked to do.
enum Job {
    Write(Op, Reply),
    /// Copy the database while nothing writes: between two batches.
    Backup(PathBuf, oneshot::Sender<Result<BackupReport, Error>>),
}

/// A handle to the writer thread. The thread ends once every handle is
/// dropped and the queue is drained.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    durable: Arc<Durable>,
}

/// What the writer tells the publisher.
#[derive(Debug)]
struct Durable {
    /// The last outbox sequence known to be on disk.
    through: AtomicU64,
    /// Notified after each flushed batch that appended events.
    written: Notify,
}

impl Writer {
    /// Starts the writer thread.
    ///
    /// # Errors
    ///
    /// When the thread cannot be spawned, or the outbox cannot be read.
    pub(crate) fn start(store: Store, policy: Arc<Policy>, fail: FailStop) -> Result<Self, Error> {
        let durable = Arc::new(Durable {
            // Whatever the folder held when it was opened is on disk.
            through: AtomicU64::new(store.last_sequence()?),
            written: Notify::new(),
        });
        let (jobs, queue) = mpsc::channel(QUEUE);
        let shared = Arc::clone(&durable);
        thread::Builder::new()
            .name("writer".into())
            .spawn(move || run(&store, &policy, &shared, &fail, queue))
            .map_err(|e| Error::Task(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { jobs, durable })
    }

    /// The last outbox sequence on disk: the publisher sends nothing later,
    /// since after a crash that lost them, those sequences would be given to
    /// other events, which the receiver would drop as already applied.
    pub(crate) fn durable_through(&self) -> u64 {
        self.durable.through.load(Ordering::Acquire)
    }

    /// Resolves after the next flushed batch that appended events (at once
    /// if one came since the last call: see [`Notify::notify_one`]).
    pub(crate) async fn outbox_written(&self) {
        self.durable.written.notified().await;
    }

    /// Applies `op` and returns once it is on disk.
    ///
    /// # Errors
    ///
    /// The rule the operation breaks, or an internal failure.
    pub(crate) async fn write(&self, op: Op) -> Result<OpOutcome, Error> {
        self.enqueue(op).await?.await.map_err(|_| stopped())?
    }

    /// Applies every operation of `ops` (queued together, so they share
    /// batches) and returns once all are on disk, with each one's outcome.
    ///
    /// # Errors
    ///
    /// When the writer has stopped.
    pub(crate) async fn write_all(&self, ops: Vec<Op>) -> Result<Vec<Result<OpOutcome, Error>>, Error> {
        let mut pending = Vec::new();
        for op in ops {
            pending.push(self.enqueue(op).await?);
        }
        let mut outcomes = Vec::with_capacity(pending.len());
        for outcome in pending {
            outcomes.push(outcome.await.map_err(|_| stopped())?);
        }
        Ok(outcomes)
    }

    async fn enqueue(&self, op: Op) -> Result<oneshot::Receiver<Result<OpOutcome, Error>>, Error> {
        let (reply, outcome) = oneshot::channel();
        self.jobs.send(Job::Write(op, reply)).await.map_err(|_| stopped())?;
        Ok(outcome)
    }

    /// Copies the database into `destination` as of one instant: the
    /// writer makes it between two batches, so every write answered before
    /// is in it and none half-written; writes wait meanwhile.
    ///
    /// # Errors
    ///
    /// The backup's own failure, or a stopped writer.
    pub(crate) async fn backup(&self, destination: PathBuf) -> Result<BackupReport, Error> {
        let (reply, report) = oneshot::channel();
        self.jobs
            .send(Job::Backup(destination, reply))
            .await
            .map_err(|_| stopped())?;
        report.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Task("the writer has stopped".into())
}

fn run(store: &Store, policy: &Policy, durable: &Durable, fail: &FailStop, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // A backup that ended the last batch's gathering, to make after it.
    let mut backup: Option<(PathBuf, oneshot::Sender<Result<BackupReport, Error>>)> = None;
    loop {
        if let Some((destination, reply)) = backup.take() {
            let made = make_backup(store, &destination, fail);
            let _ = reply.send(made);
        }
        match queue.blocking_recv() {
            None => return,
            Some(Job::Write(op, reply)) => batch.push((op, reply)),
            Some(Job::Backup(destination, reply)) => {
                backup = Some((destination, reply));
                continue;
            }
        }
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(Job::Write(op, reply)) => batch.push((op, reply)),
                Ok(Job::Backup(destination, reply)) => {
                    backup = Some((destination, reply));
                    break;
                }
                Err(_) => break,
            }
        }
        // After a storage fault nothing more is written: what sled holds in
        // memory may differ from the disk, and only a restart recovers.
        if fail.is_tripped() {
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(Error::StorageFailed));
            }
            continue;
        }
        // A bug that panics fails this batch's requests, not every later one.
        let outcomes = panic::catch_unwind(AssertUnwindSafe(|| apply(store, policy, &batch))).unwrap_or_else(|_| {
            tracing::error!(operations = batch.len(), "the writer panicked; the batch failed");
            batch
                .iter()
                .map(|_| Err(Error::Task("the write failed".into())))
                .collect()
        });
        // A storage fault trips the fail-stop (later ones are only logged).
        let mut outcomes: Vec<_> = outcomes.into_iter().map(|o| fail.check(o)).collect();
        // Only this thread appends to the outbox, so what it holds now is
        // what the flush below makes durable (this batch's events, and those
        // of an earlier batch whose flush failed).
        let last = store.last_sequence().ok();
        match store.flush() {
            Ok(()) => {
                if let Some(last) = last
                    && durable.through.fetch_max(last, Ordering::AcqRel) < last
                {
                    durable.written.notify_one();
                }
            }
            Err(e) => {
                fail.trip(&format!("flush failed: {e}"));
                for outcome in &mut outcomes {
                    *outcome = Err(Error::Flush(e.to_string()));
                }
            }
        }
        tracing::trace!(operations = batch.len(), "batch written");
        for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
            // The caller may have gone (a cancelled request); the write stands.
            let _ = reply.send(outcome);
        }
    }
}

/// A backup between two batches: everything answered so far is flushed
/// (each batch flushes before it answers), and nothing writes until it is
/// done.
fn make_backup(store: &Store, destination: &std::path::Path, fail: &FailStop) -> Result<BackupReport, Error> {
    if fail.is_tripped() {
        return Err(Error::StorageFailed);
    }
    let _alone = store.alone();
    let figures = crate::storage::figures(store.last_sequence()?);
    Ok(service_kit::storage::backup(store.database(), destination, figures)?)
}

/// One transaction for the batch; if it fails as a whole (a storage error or
/// a corrupt record in one operation), each operation alone, so that only
/// the culprit fails.
fn apply(store: &Store, policy: &Policy, batch: &[(Op, Reply)]) -> Vec<Result<OpOutcome, Error>> {
    let ops = batch.iter().map(|(op, _)| op);
    match store.write_batch(policy, ops.clone()) {
        Ok(outcomes) => outcomes.into_iter().map(|o| o.map_err(Error::from)).collect(),
        Err(e) if batch.len() == 1 => vec![Err(e.into())],
        Err(e) => {
            tracing::warn!(error = %e, operations = batch.len(), "batch failed; retrying each operation alone");
            ops.map(|op| match store.write_batch(policy, std::iter::once(op)) {
                Ok(mut outcomes) => outcomes.pop().map_or_else(
                    || Err(Error::Task("empty batch".into())),
                    |outcome| outcome.map_err(Error::from),
                ),
                Err(e) => Err(e.into()),
            })
            .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        domain::{Action, InvitationId, Note, SendRequest, Timestamp, UserId},
        storage::{SendOutcome, TxOutcome, tests::corrupt_invitation},
    };

    const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn send(n: u64, to: &str) -> Op {
        Op::Send {
            request: SendRequest {
                sender: UserId::parse("user", "ann").unwrap(),
                sender_name: String::new(),
                recipient: UserId::parse("user", to).unwrap(),
                message: Note::default(),
            },
            key: None,
            id: InvitationId::new(T0, n),
            event_id: InvitationId::new(T0, n + 100),
            now: T0,
        }
    }

    fn withdraw(n: u64) -> Op {
        Op::Act {
            actor: UserId::parse("user", "ann").unwrap(),
            id: InvitationId::new(T0, n),
            action: Action::Withdraw { note: Note::default() },
            event_id: InvitationId::new(T0, n + 100),
            now: T0,
        }
    }

    fn jobs(ops: Vec<Op>) -> Vec<(Op, Reply)> {
        ops.into_iter().map(|op| (op, oneshot::channel().0)).collect()
    }

    #[test]
    fn only_the_operation_on_a_corrupt_record_fails_when_a_batch_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let policy = Policy::default();
        assert!(apply(&store, &policy, &jobs(vec![send(1, "bob")]))[0].is_ok());
        corrupt_invitation(&store, &InvitationId::new(T0, 1));

        let outcomes = apply(&store, &policy, &jobs(vec![send(2, "cy"), withdraw(1), send(3, "dee")]));

        assert!(matches!(outcomes[0], Ok(OpOutcome::Sent(SendOutcome::Created(_)))));
        assert!(matches!(outcomes[1], Err(Error::Store(_))), "got {:?}", outcomes[1]);
        assert!(matches!(outcomes[2], Ok(OpOutcome::Sent(SendOutcome::Created(_)))));
        assert_eq!(store.last_sequence().unwrap(), 3, "two sends after the first");
    }

    #[tokio::test]
    async fn answers_after_the_write_and_signals_the_publisher() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let writer = Writer::start(store.clone(), Arc::new(Policy::default()), FailStop::default()).unwrap();
        assert_eq!(writer.durable_through(), 0);

        // Queued together, so they share batches; within the weekly limit of 100.
        let ops = (1..=99)
            .map(|n| send(n, &format!("user{n}")))
            .chain([withdraw(1), withdraw(1)]);
        let outcomes = writer.write_all(ops.collect()).await.unwrap();

        assert_eq!(outcomes.len(), 101);
        for outcome in &outcomes[..99] {
            assert!(
                matches!(outcome, Ok(OpOutcome::Sent(SendOutcome::Created(_)))),
                "{outcome:?}"
            );
        }
        assert!(matches!(outcomes[99], Ok(OpOutcome::Acted(TxOutcome::Changed(_)))));
        assert!(matches!(outcomes[100], Ok(OpOutcome::Acted(TxOutcome::Unchanged(_)))));
        assert_eq!(store.last_sequence().unwrap(), 100);
        assert_eq!(writer.durable_through(), 100, "every answered write is durable");
        tokio::time::timeout(Duration::from_secs(5), writer.outbox_written())
            .await
            .expect("the publisher is told");
    }
}
