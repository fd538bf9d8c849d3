//! Fires held notifications and digests from the durable due-time index.
//! After a restart the first pass fires everything that fell due during the
//! downtime, once (each firing removes its index entry in the same
//! transaction that delivers).

use std::time::Duration;

use tokio::sync::watch;

use crate::service::Notifier;

/// Runs until `stop` changes, checking every `tick`.
pub async fn run(notifier: Notifier, tick: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        match notifier.fire_due().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(delivered = n, "timers fired"),
            // The fail-stop said it once; the server is on its way down.
            Err(crate::error::Error::StorageFailed) => return,
            Err(e) => tracing::error!(error = %e, "firing due notifications failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
    }
}
