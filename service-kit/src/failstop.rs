//! Fail-stop on storage faults, the way PostgreSQL treats a failed WAL
//! write: once a write or flush fails, the database's state in memory may
//! hold changes that never reached the disk, and sled's I/O error sticks
//! until the process restarts. So the first fault trips a [`FailStop`]:
//! the service stops taking work (health NOT_SERVING, UNAVAILABLE), drains
//! and exits non-zero, and its supervisor restarts it, which recovers what
//! is on disk.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use tokio::sync::watch;

/// Shared by everything in one service that touches storage.
#[derive(Clone)]
pub struct FailStop {
    inner: Arc<Inner>,
}

struct Inner {
    reason: OnceLock<String>,
    tripped: watch::Sender<bool>,
    /// The data folder, where damage found at run time is marked.
    folder: Option<PathBuf>,
}

impl Default for FailStop {
    fn default() -> Self {
        Self::with_folder(None)
    }
}

impl fmt::Debug for FailStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailStop").field("reason", &self.reason()).finish()
    }
}

impl FailStop {
    /// A fail-stop for the data folder `path`: damage found while serving
    /// is marked there, so that the folder is refused at the next start.
    #[must_use]
    pub fn for_folder(path: &Path) -> Self {
        Self::with_folder(Some(path.to_path_buf()))
    }

    fn with_folder(folder: Option<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                reason: OnceLock::new(),
                tripped: watch::channel(false).0,
                folder,
            }),
        }
    }

    /// Like [`Self::trip`], for data that cannot be read back as written
    /// (a page whose checksum does not match): the folder is marked damaged
    /// first, since sled reads pages lazily and a restart would serve it
    /// again until the damaged page is next read.
    pub fn trip_damaged(&self, fault: &dyn fmt::Display) {
        if let Some(folder) = &self.inner.folder
            && let Err(e) = crate::checkpoint::mark_damaged(folder, &fault.to_string())
        {
            tracing::error!(error = %e, "cannot mark the data folder damaged");
        }
        self.trip(fault);
    }

    /// Trips for `fault`, which sled reported as `error`: with the folder
    /// marked damaged when sled could not read back what it wrote.
    pub fn trip_for_sled(&self, error: &sled::Error, fault: &dyn fmt::Display) {
        if matches!(error, sled::Error::Corruption { .. }) {
            self.trip_damaged(fault);
        } else {
            self.trip(fault);
        }
    }

    /// Records the first storage fault and tells whoever waits in
    /// [`Self::tripped`]; later faults are only logged at debug level.
    pub fn trip(&self, fault: &dyn fmt::Display) {
        crate::metrics::storage().faults.inc();
        let reason = fault.to_string();
        if self.inner.reason.set(reason.clone()).is_ok() {
            tracing::error!(
                error = %reason,
                "storage failed: no more writes; draining, then exiting for a restart"
            );
            self.inner.tripped.send_replace(true);
        } else {
            tracing::debug!(error = %reason, "another storage fault after the first");
        }
    }

    #[must_use]
    pub fn is_tripped(&self) -> bool {
        self.inner.reason.get().is_some()
    }

    /// The first fault, once tripped.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        self.inner.reason.get().map(String::as_str)
    }

    /// Resolves when `shutdown` does or when this trips, whichever comes
    /// first: a storage fault stops the server as a signal would.
    pub fn or_tripped(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let fail = self.clone();
        async move {
            tokio::select! {
                () = shutdown => {}
                () = fail.tripped() => {}
            }
        }
    }

    /// Resolves once tripped (at once if it already is).
    pub async fn tripped(&self) {
        let mut tripped = self.inner.tripped.subscribe();
        // The sender lives in `self`, so this never errs while we wait.
        let _ = tripped.wait_for(|t| *t).await;
    }
}

/// An error that may be a fault of the storage itself (an I/O error, a
/// failed flush), as opposed to a refusal, a damaged record or a bug.
pub trait Fault: fmt::Display {
    /// True for a fault of the storage itself: it trips the [`FailStop`].
    fn is_storage_fault(&self) -> bool;

    /// sled's error behind the fault, if sled reported it: one that says
    /// the data could not be read back marks the folder damaged.
    fn sled_error(&self) -> Option<&sled::Error> {
        None
    }
}

/// Storage work refused because an earlier fault stopped it all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("storage failed earlier; not taking work")]
pub struct Stopped;

/// Storage work whose blocking task failed (it panicked or was cancelled).
#[derive(Debug, thiserror::Error)]
#[error("background task: {0}")]
pub struct TaskFailed(#[from] tokio::task::JoinError);

impl FailStop {
    /// Trips for `result`'s error when that is a storage fault, and hands
    /// the result back.
    ///
    /// # Errors
    ///
    /// `result`'s own error.
    pub fn check<T, E: Fault>(&self, result: Result<T, E>) -> Result<T, E> {
        if let Err(e) = &result
            && e.is_storage_fault()
        {
            match e.sled_error() {
                Some(sled) => self.trip_for_sled(sled, e),
                None => self.trip(e),
            }
        }
        result
    }

    /// For storage work done in place (a point read): none after a fault.
    ///
    /// # Errors
    ///
    /// [`Stopped`] once tripped.
    pub fn ensure_running(&self) -> Result<(), Stopped> {
        if self.is_tripped() { Err(Stopped) } else { Ok(()) }
    }

    /// Runs storage work `f` on `store` on the blocking pool: none after a
    /// storage fault (what sled holds in memory may differ from the disk),
    /// and a fault here trips this fail-stop.
    ///
    /// # Errors
    ///
    /// [`Stopped`] after a fault, [`TaskFailed`], or `f`'s own error.
    pub async fn blocking<S, T, E>(
        &self,
        store: &std::sync::Arc<S>,
        f: impl FnOnce(&S) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        S: Send + Sync + 'static,
        T: Send + 'static,
        E: Fault + From<Stopped> + From<TaskFailed> + Send + 'static,
    {
        self.ensure_running()?;
        let store = std::sync::Arc::clone(store);
        let result = tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(TaskFailed::from)?;
        self.check(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_fault_is_kept_and_wakes_the_waiters() {
        let fail = FailStop::default();
        assert!(!fail.is_tripped());
        let waiter = tokio::spawn({
            let fail = fail.clone();
            async move { fail.tripped().await }
        });
        fail.trip(&"No space left on device (os error 28)");
        fail.trip(&"a later fault");
        waiter.await.unwrap();
        assert_eq!(fail.reason(), Some("No space left on device (os error 28)"));
        // A late waiter returns at once.
        fail.tripped().await;
    }

    #[test]
    fn damage_found_while_serving_marks_the_folder_so_the_next_start_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = crate::checkpoint::Checkpoint::in_folder(dir.path());
        let figures = crate::checkpoint::Figures::from([("outbox_sequence".to_owned(), 3)]);
        checkpoint.write(&figures).unwrap();
        assert!(checkpoint.check(&figures).is_ok());

        let fail = FailStop::for_folder(dir.path());
        fail.trip_damaged(&"Read corrupted data at file offset Some(Inline(264620))");
        assert!(fail.is_tripped());
        let damage = checkpoint.check(&figures).unwrap_err();
        assert!(
            damage
                .to_string()
                .contains("could not be read back while it was served (Read corrupted data"),
            "{damage}"
        );
    }

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error("disk: {0}")]
        Disk(&'static str),
        #[error("refused")]
        Refused,
        #[error(transparent)]
        Stopped(#[from] Stopped),
        #[error(transparent)]
        Task(#[from] TaskFailed),
    }

    impl Fault for TestError {
        fn is_storage_fault(&self) -> bool {
            matches!(self, Self::Disk(_))
        }
    }

    #[tokio::test]
    async fn blocking_work_trips_on_a_fault_only_and_does_nothing_after_one() {
        let fail = FailStop::default();
        let store = std::sync::Arc::new(7_u32);
        assert_eq!(fail.blocking(&store, |n| Ok::<_, TestError>(*n)).await.unwrap(), 7);
        let refused = fail.blocking(&store, |_| Err::<u32, _>(TestError::Refused)).await;
        assert!(matches!(refused, Err(TestError::Refused)));
        assert!(!fail.is_tripped(), "a refusal is not a storage fault");

        let fault = fail
            .blocking(&store, |_| Err::<u32, _>(TestError::Disk("ENOSPC")))
            .await;
        assert!(matches!(fault, Err(TestError::Disk(_))));
        assert_eq!(fail.reason(), Some("disk: ENOSPC"));
        let after = fail.blocking(&store, |n| Ok::<_, TestError>(*n)).await;
        assert!(matches!(after, Err(TestError::Stopped(Stopped))));
    }
}
