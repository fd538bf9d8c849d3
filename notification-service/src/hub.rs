//! Live fan-out: each user's open `Subscribe` streams (several per user,
//! e.g. phone and laptop) receive every update for that user, in cursor
//! order. A stream that falls behind is ended with a status telling it to
//! resume, never left to miss updates silently.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use proto::notifications::v1 as pb;
use tokio::sync::{broadcast, watch};

/// Updates a stream may fall behind by before it is cut off. Less than the
/// updates the log keeps (so a stream cut off can always resume), more than
/// one ingest transaction can make for one user (so a reader that keeps up
/// is never cut off by a burst).
pub const STREAM_BUFFER: usize = 512;
/// Open streams one user may hold.
pub const MAX_STREAMS_PER_USER: usize = 16;

type Sender = broadcast::Sender<Arc<pb::NotificationUpdate>>;

#[derive(Debug)]
pub struct Hub {
    users: Mutex<HashMap<String, Sender>>,
    closing: watch::Sender<bool>,
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyStreams;

impl Default for Hub {
    fn default() -> Self {
        Self {
            users: Mutex::new(HashMap::new()),
            closing: watch::channel(false).0,
        }
    }
}

impl Hub {
    /// A receiver of `user`'s updates from now on, and a signal that the
    /// server is shutting down.
    ///
    /// # Errors
    ///
    /// When the user already holds [`MAX_STREAMS_PER_USER`] streams.
    pub fn subscribe(
        &self,
        user: &str,
    ) -> Result<(broadcast::Receiver<Arc<pb::NotificationUpdate>>, watch::Receiver<bool>), TooManyStreams> {
        let mut users = self.users.lock().expect("hub lock");
        let sender = users
            .entry(user.to_owned())
            .or_insert_with(|| broadcast::channel(STREAM_BUFFER).0);
        if sender.receiver_count() >= MAX_STREAMS_PER_USER {
            return Err(TooManyStreams);
        }
        Ok((sender.subscribe(), self.closing.subscribe()))
    }

    /// Sends each update to its user's open streams.
    pub fn publish(&self, updates: &[(String, pb::NotificationUpdate)]) {
        if updates.is_empty() {
            return;
        }
        let mut users = self.users.lock().expect("hub lock");
        for (user, update) in updates {
            if let Some(sender) = users.get(user)
                && sender.send(Arc::new(update.clone())).is_err()
            {
                // Nobody listens any more.
                users.remove(user);
            }
        }
    }

    /// Open streams, over all users.
    #[must_use]
    pub fn stream_count(&self) -> usize {
        self.users
            .lock()
            .expect("hub lock")
            .values()
            .map(broadcast::Sender::receiver_count)
            .sum()
    }

    /// Changes when the server starts shutting down.
    #[must_use]
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Tells every stream the server is shutting down.
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }
}
