//! Group commit: an OK reply waits until its change is flushed to disk, and
//! every writer waiting at the same moment shares one flush.

use tokio::sync::{mpsc, oneshot};

type Waiter = oneshot::Sender<Result<(), String>>;

/// A handle to the flusher task.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    requests: mpsc::UnboundedSender<Waiter>,
}

impl GroupCommit {
    /// Starts the flusher task for `db` on the current tokio runtime.
    #[must_use]
    pub fn start(db: sled::Db) -> Self {
        let (requests, mut incoming) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some(first) = incoming.recv().await {
                batch.push(first);
                // Everyone who has committed by now rides on this flush.
                while let Ok(more) = incoming.try_recv() {
                    batch.push(more);
                }
                let result = db.flush_async().await.map(|_| ()).map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(error = %e, "flush failed");
                }
                tracing::trace!(writers = batch.len(), "group commit");
                for waiter in batch.drain(..) {
                    let _ = waiter.send(result.clone());
                }
            }
        });
        Self { requests }
    }

    /// Resolves once everything this caller wrote before the call is on disk.
    ///
    /// # Errors
    ///
    /// The flush failure, or that the flusher has stopped.
    pub async fn durable(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(tx)
            .map_err(|_| "the flusher has stopped".to_owned())?;
        rx.await.map_err(|_| "the flusher has stopped".to_owned())?
    }
}
