//! The application layer: storage transactions off the async workers, group
//! commit before anything is acknowledged or fanned out, and one writer at a
//! time for everything that logs updates, so each user's updates reach live
//! streams in cursor order.

use std::sync::Arc;

use proto::notifications::v1 as pb;
use service_kit::{checkpoint::Figures, failstop::FailStop, storage::BackupReport};
use tokio::sync::Mutex;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::{
    convert,
    domain::{Channel, Channels, Clock, DeliveryStatus, Event, Notification, Preferences, Settings, Timestamp},
    error::Error,
    hub::{Hub, TooManyStreams},
    pump::{CHANNEL_CAPACITY, Pump},
    storage::{Applied, Job, Outcome, Page, Store, StoreError},
};

fn flush(store: &Store) -> Result<(), Error> {
    store.flush().map_err(|e| Error::Flush(e.to_string()))
}

/// Most notifications fired in one timer pass.
const FIRE_BATCH: usize = 512;

#[derive(Debug, Clone)]
pub struct Notifier {
    store: Arc<Store>,
    hub: Arc<Hub>,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    writer: Arc<Mutex<()>>,
    fail: FailStop,
    /// The checkpoint figures known to be on disk.
    durable: Arc<std::sync::Mutex<Figures>>,
    /// Writes hold it shared; a backup holds it alone, so that its copy is
    /// one instant's state.
    writes: Arc<tokio::sync::RwLock<()>>,
}

impl Notifier {
    #[must_use]
    pub fn new(store: Store, clock: Arc<dyn Clock>, settings: Settings, fail: FailStop) -> Self {
        Self {
            hub: Arc::new(Hub::default()),
            clock,
            settings: Arc::new(settings),
            writer: Arc::new(Mutex::new(())),
            fail,
            writes: Arc::default(),
            // What the folder held when it was opened is on disk.
            durable: Arc::new(std::sync::Mutex::new(store.durable_figures().unwrap_or_default())),
            store: Arc::new(store),
        }
    }

    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    #[must_use]
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The channels this server delivers on.
    #[must_use]
    pub fn channels(&self) -> Channels {
        self.settings.channels
    }

    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The checkpoint figures known to be on disk.
    #[must_use]
    pub fn durable_figures(&self) -> Figures {
        self.durable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Tripped by the first storage fault; the app then stops serving.
    #[must_use]
    pub fn fail_stop(&self) -> &FailStop {
        &self.fail
    }

    /// Runs storage work on the blocking pool; after a storage fault, none
    /// (what sled holds in memory may differ from the disk), and a fault
    /// here trips the fail-stop (see [`FailStop::blocking`]).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        self.fail.blocking(&self.store, f).await
    }

    /// Runs a change on the blocking pool and flushes before returning, so
    /// an OK means it is on disk. Flushes share: sled writes and syncs once
    /// for everything written before the first of them, and a flush that
    /// finds it already done returns at once.
    async fn durably<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let _writing = self.writes.read().await;
        self.blocking(move |store| {
            let value = f(store)?;
            flush(store)?;
            Ok(value)
        })
        .await
    }

    /// A copy of the database in `destination`, as of one instant: writes
    /// wait while it is made.
    ///
    /// # Errors
    ///
    /// A destination that cannot be used; storage failures.
    pub async fn backup(&self, destination: std::path::PathBuf) -> Result<BackupReport, Error> {
        let _alone = self.writes.write().await;
        self.blocking(move |store| {
            flush(store)?;
            let figures = store
                .durable_figures()
                .map_err(|e| Error::Flush(format!("reading the figures: {e}")))?;
            Ok(service_kit::storage::backup(store.database(), &destination, figures)?)
        })
        .await
    }

    /// # Errors
    ///
    /// Storage failures.
    pub async fn applied(&self, source: String) -> Result<u64, Error> {
        self.blocking(move |store| Ok(store.applied(&source)?)).await
    }

    /// Applies events durably (with the applied sequence) and fans out what
    /// they delivered. Returns the sequence applied through.
    ///
    /// # Errors
    ///
    /// A sequence gap, or an internal failure.
    pub async fn apply_events(&self, source: String, events: Vec<Event>) -> Result<u64, Error> {
        let (name, _) = crate::storage::figure(&source, 0);
        self.apply_durably(name, move |store, settings, now| {
            store.apply_events(&source, &events, settings, now)
        })
        .await
    }

    /// Runs `apply` (an event batch with its position) durably under the
    /// writer lock, records the checkpoint figure `name`, and fans out what
    /// it delivered. Returns the sequence applied through.
    async fn apply_durably(
        &self,
        name: String,
        apply: impl FnOnce(&Store, &Settings, Timestamp) -> Result<Applied, StoreError> + Send + 'static,
    ) -> Result<u64, Error> {
        let _writer = self.writer.lock().await;
        let now = self.now();
        let settings = Arc::clone(&self.settings);
        let applied = self.durably(move |store| Ok(apply(store, &settings, now)?)).await?;
        self.durable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name, applied.applied_through);
        self.hub.publish(&applied.updates);
        Ok(applied.applied_through)
    }

    /// Where consuming the JetStream partition stands: the stream sequence
    /// of the last message applied, and the highest event sequence.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub async fn partition_position(&self, partition: u32) -> Result<(u64, u64), Error> {
        self.blocking(move |store| Ok(store.partition_position(partition)?))
            .await
    }

    /// Applies a batch from the JetStream partition `partition` (of
    /// `count`) durably with the partition's position, and fans out what it
    /// delivered. Returns the highest event sequence applied from it.
    ///
    /// # Errors
    ///
    /// Internal failures.
    pub async fn apply_partition(
        &self,
        partition: u32,
        count: u32,
        events: Vec<Event>,
        stream_sequence: u64,
    ) -> Result<u64, Error> {
        let (name, _) = crate::storage::figure(&crate::storage::partition_source(partition), 0);
        self.apply_durably(name, move |store, settings, now| {
            store.apply_partition(partition, count, &events, stream_sequence, settings, now)
        })
        .await
    }

    /// Delivers every held notification and digest that is due. Returns how
    /// many were delivered.
    ///
    /// # Errors
    ///
    /// Internal failures.
    pub async fn fire_due(&self) -> Result<usize, Error> {
        let _writer = self.writer.lock().await;
        let _writing = self.writes.read().await;
        let now = self.now();
        let settings = Arc::clone(&self.settings);
        let updates = self
            .blocking(move |store| {
                let (mut updates, mut fired) = (Vec::new(), 0);
                loop {
                    let due = store.due(now, FIRE_BATCH)?;
                    for notification in &due {
                        updates.extend(store.fire(notification, &settings, now)?);
                    }
                    fired += due.len();
                    if due.len() < FIRE_BATCH {
                        break;
                    }
                }
                // Most ticks find nothing due: no flush, no sync, for them.
                if fired > 0 {
                    flush(store)?;
                }
                Ok(updates)
            })
            .await?;
        self.hub.publish(&updates);
        Ok(updates.len())
    }

    /// Begins a try of up to `limit` messages due on `channel` (durably:
    /// see [`Store::begin_tries`]). `after_restart`: the first pass after
    /// start-up, when no try can be under way, so messages leased by tries
    /// a crash cut short are due too.
    ///
    /// # Errors
    ///
    /// Internal failures.
    pub async fn begin_tries(
        &self,
        channel: Channel,
        limit: usize,
        lease: std::time::Duration,
        after_restart: bool,
    ) -> Result<Vec<Job>, Error> {
        let _writing = self.writes.read().await;
        let now = self.now();
        let horizon = if after_restart { now.plus(lease) } else { now };
        self.blocking(move |store| {
            let due = store.due_jobs(channel, horizon, limit)?;
            if due.is_empty() {
                return Ok(Vec::new());
            }
            let jobs = store.begin_tries(&due, now, lease)?;
            flush(store)?;
            Ok(jobs)
        })
        .await
    }

    /// Records durably how a try of `job` ended.
    ///
    /// # Errors
    ///
    /// Internal failures.
    pub async fn finish_try(&self, job: Job, outcome: Outcome) -> Result<(), Error> {
        let now = self.now();
        self.durably(move |store| Ok(store.finish_try(&job, outcome, now)?))
            .await
    }

    /// # Errors
    ///
    /// Internal failures.
    pub async fn preferences(&self, user: String) -> Result<Preferences, Error> {
        self.blocking(move |store| Ok(store.preferences(&user)?)).await
    }

    /// # Errors
    ///
    /// Internal failures.
    pub async fn set_preferences(&self, user: String, preferences: Preferences) -> Result<(), Error> {
        self.durably(move |store| Ok(store.put_preferences(&user, &preferences)?))
            .await
    }

    /// Changes the user's preferences atomically with `change` (which may
    /// run more than once, on newer values, when updates race) and makes
    /// the result durable.
    ///
    /// # Errors
    ///
    /// `change`'s refusal, or internal failures.
    pub async fn update_preferences(
        &self,
        user: String,
        change: impl Fn(Preferences) -> Result<Preferences, Error> + Send + 'static,
    ) -> Result<Preferences, Error> {
        self.durably(move |store| store.update_preferences(&user, change)?)
            .await
    }

    /// # Errors
    ///
    /// Internal failures.
    pub async fn inbox(
        &self,
        user: String,
        unread_only: bool,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page<Notification>, Error> {
        self.blocking(move |store| Ok(store.inbox_page(&user, unread_only, before, limit)?))
            .await
    }

    /// # Errors
    ///
    /// Internal failures.
    pub async fn mark_read(&self, user: String, numbers: Option<Vec<u64>>) -> Result<u32, Error> {
        self.durably(move |store| Ok(store.mark_read(&user, numbers.as_deref())?))
            .await
    }

    /// # Errors
    ///
    /// Internal failures.
    pub async fn unread_count(&self, user: String) -> Result<u32, Error> {
        self.blocking(move |store| Ok(store.unread_count(&user)?)).await
    }

    /// What the invitation's sender may learn of its delivery.
    ///
    /// # Errors
    ///
    /// NotFound for an unknown invitation or a caller who is not its sender.
    pub async fn delivery_status(&self, invitation_id: String, caller: String) -> Result<DeliveryStatus, Error> {
        let now = self.now();
        let available = self.settings.channels;
        self.blocking(move |store| {
            store
                .delivery_status(&invitation_id, &caller, available, now)?
                .ok_or(Error::DeliveryStatusNotFound)
        })
        .await
    }

    /// A stream of the user's updates: first those after `resume_after`
    /// (when given), then live ones, each once, in cursor order.
    ///
    /// # Errors
    ///
    /// OUT_OF_RANGE for a cursor older than what is kept;
    /// RESOURCE_EXHAUSTED when the user holds too many streams.
    pub async fn subscribe(
        &self,
        user: String,
        resume_after: Option<u64>,
    ) -> Result<ReceiverStream<Result<pb::NotificationUpdate, Status>>, Status> {
        // Listen before reading the log, so nothing falls between the two.
        let (live, closing) = self
            .hub
            .subscribe(&user)
            .map_err(|TooManyStreams| Error::TooManyStreams {
                max: crate::hub::MAX_STREAMS_PER_USER,
            })?;
        let backlog = match resume_after {
            Some(after) => {
                let owner = user.clone();
                self.blocking(move |store| {
                    store
                        .updates_after(&owner, after)?
                        .ok_or(Error::CursorOutOfRange { after })
                })
                .await?
                .iter()
                .map(convert::update)
                .collect()
            }
            None => Vec::new(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_CAPACITY);
        let pump = Pump {
            user,
            after: resume_after.unwrap_or(0),
            backlog,
            live,
            closing,
            store: Arc::clone(&self.store),
        };
        tokio::spawn(pump.run(tx));
        Ok(ReceiverStream::new(rx))
    }
}
