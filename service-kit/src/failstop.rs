//! Fail-stop on storage faults, the way PostgreSQL treats a failed WAL
//! write: once a write or flush fails, the database's state in memory may
//! hold changes that never reached the disk, and sled's I/O error sticks
//! until the process restarts. So the first fault trips a [`FailStop`]:
//! the service stops taking work (health NOT_SERVING, UNAVAILABLE), drains
//! and exits non-zero, and its supervisor restarts it, which recovers what
//! is on disk.

use std::{
    fmt,
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
}

impl Default for FailStop {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                reason: OnceLock::new(),
                tripped: watch::channel(false).0,
            }),
        }
    }
}

impl fmt::Debug for FailStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailStop").field("reason", &self.reason()).finish()
    }
}

impl FailStop {
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
}
