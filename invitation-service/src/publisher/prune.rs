//! Deletes outbox events that notification-service acknowledged and that
//! are older than the retention. Each pass reads the acknowledged sequence
//! and the front of the outbox, and stops at the first event that must stay,
//! so an idle pass costs two point reads.

use std::time::Duration;

use tokio::sync::watch;

use super::blocking;
use crate::service::Invitations;

/// Most events deleted in one batch write.
const PRUNE_BATCH: usize = 1024;

/// Prunes every `every` until `stop` changes.
pub(crate) async fn prune_periodically(
    invitations: Invitations,
    retention: Duration,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let cutoff = invitations.now().minus(retention);
        let pruned = blocking(&invitations, move |store| {
            let mut total = 0;
            loop {
                let n = store.prune_outbox(cutoff, PRUNE_BATCH)?;
                total += n;
                if n < PRUNE_BATCH {
                    return Ok(total);
                }
            }
        })
        .await;
        match pruned {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "pruned acknowledged outbox events"),
            Err(e) => tracing::error!(error = %e, "outbox pruning failed"),
        }
    }
}
