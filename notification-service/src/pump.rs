//! One `Subscribe` stream: the backlog it resumes from, then live updates,
//! each once and in cursor order, into the channel the transport reads.
//!
//! The pump always takes live updates off the hub at once and queues them
//! itself, so it notices a client that stopped reading while that client's
//! resume point is still in the log; it then pins that point (see
//! [`crate::storage::pins`]) and ends the stream with a hint to resume
//! from it. The hint reaches the client only after what the transport
//! still holds for it, which may be much later.

use std::{collections::VecDeque, sync::Arc};

use proto::notifications::v1 as pb;
use tokio::sync::{broadcast::error::RecvError, mpsc, watch};
use tonic::Status;

use crate::{
    error::Error,
    hub::{STREAM_BUFFER, Subscription},
    storage::{Store, pins::RESUME_GRACE},
};

/// Updates the transport may hold for a stream before the pump waits.
pub const CHANNEL_CAPACITY: usize = 64;

/// What a pump needs to run.
#[derive(Debug)]
pub struct Pump {
    pub user: String,
    /// The cursor the client resumes after (0 for live only).
    pub after: u64,
    pub backlog: Vec<pb::NotificationUpdate>,
    pub live: Subscription,
    pub closing: watch::Receiver<bool>,
    pub store: Arc<Store>,
}

impl Pump {
    /// Runs until the client goes away, falls behind, or the server closes.
    pub async fn run(self, tx: mpsc::Sender<Result<pb::NotificationUpdate, Status>>) {
        let Self {
            user,
            after,
            backlog,
            mut live,
            mut closing,
            store,
        } = self;
        // A stream may be as far behind as its backlog plus the buffer.
        let limit = backlog.len() + STREAM_BUFFER;
        let mut queue: VecDeque<Arc<pb::NotificationUpdate>> = backlog.into_iter().map(Arc::new).collect();
        // `sent`: the last cursor handed to the transport (what the client
        // will have seen before any status); `queued`: the last one taken.
        let mut sent = after;
        let mut queued = queue.back().map_or(after, |u| u.cursor);
        let end = loop {
            tokio::select! {
                biased;
                _ = closing.changed() => break Error::ServerClosing { resume_after: sent },
                // The client went away: free its place now, not at the next update.
                () = tx.closed() => return,
                permit = tx.reserve(), if !queue.is_empty() => {
                    let Ok(permit) = permit else { return };
                    let update = queue.pop_front().expect("queue is not empty");
                    sent = update.cursor;
                    permit.send(Ok(Arc::unwrap_or_clone(update)));
                }
                update = live.recv() => match update {
                    Ok(update) if update.cursor > queued => {
                        queued = update.cursor;
                        queue.push_back(update);
                        if queue.len() > limit {
                            break Error::StreamBehind { resume_after: sent };
                        }
                    }
                    // Already in the backlog.
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break Error::StreamBehind { resume_after: sent },
                    Err(RecvError::Closed) => return,
                },
            }
        };
        if let Error::StreamBehind { resume_after } = end {
            store.pin_resume_point(&user, resume_after, RESUME_GRACE);
        }
        // Free the hub's place before waiting for the client to read.
        drop(live);
        let _ = tx.send(Err(end.into())).await;
    }
}
