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

use crate::{convert, domain::Update};

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

/// One open stream's place in the hub. Dropping it frees the place, and
/// the user's entry (with its buffer) goes with their last stream, so the
/// hub holds only users who are listening now.
#[derive(Debug)]
pub struct Subscription {
    receiver: Option<broadcast::Receiver<Arc<pb::NotificationUpdate>>>,
    hub: Arc<Hub>,
    user: String,
}

impl Subscription {
    /// The next update for this stream's user.
    ///
    /// # Errors
    ///
    /// `Lagged` when the stream fell more than [`STREAM_BUFFER`] updates
    /// behind; `Closed` never happens while the subscription lives.
    pub async fn recv(&mut self) -> Result<Arc<pb::NotificationUpdate>, broadcast::error::RecvError> {
        match &mut self.receiver {
            Some(receiver) => receiver.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Leave the channel first, so the count below no longer holds us.
        drop(self.receiver.take());
        let mut users = self.hub.users.lock().expect("hub lock");
        if users.get(&self.user).is_some_and(|sender| sender.receiver_count() == 0) {
            users.remove(&self.user);
        }
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            users: Mutex::new(HashMap::new()),
            closing: watch::channel(false).0,
        }
    }
}

impl Hub {
    /// A subscription to `user`'s updates from now on, and a signal that
    /// the server is shutting down.
    ///
    /// # Errors
    ///
    /// When the user already holds [`MAX_STREAMS_PER_USER`] streams.
    pub fn subscribe(self: &Arc<Self>, user: &str) -> Result<(Subscription, watch::Receiver<bool>), TooManyStreams> {
        let mut users = self.users.lock().expect("hub lock");
        let sender = users
            .entry(user.to_owned())
            .or_insert_with(|| broadcast::channel(STREAM_BUFFER).0);
        if sender.receiver_count() >= MAX_STREAMS_PER_USER {
            return Err(TooManyStreams);
        }
        let subscription = Subscription {
            receiver: Some(sender.subscribe()),
            hub: Arc::clone(self),
            user: user.to_owned(),
        };
        Ok((subscription, self.closing.subscribe()))
    }

    /// Sends each update to its user's open streams, as the message they
    /// all share: converted once, and only for a user who is listening.
    pub fn publish(&self, updates: &[(String, Update)]) {
        if updates.is_empty() {
            return;
        }
        let mut users = self.users.lock().expect("hub lock");
        for (user, update) in updates {
            if let Some(sender) = users.get(user)
                && sender.send(Arc::new(convert::update(update))).is_err()
            {
                // Nobody listens any more.
                users.remove(user);
            }
        }
    }

    /// Users with at least one open stream: the entries the hub holds.
    #[must_use]
    pub fn user_count(&self) -> usize {
        self.users.lock().expect("hub lock").len()
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
