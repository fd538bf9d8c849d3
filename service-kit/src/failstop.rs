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
}
