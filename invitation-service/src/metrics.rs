//! invitation-service's own figures for Prometheus: the outbox and the
//! publisher, read at each scrape (the per-RPC and storage metrics come
//! from service-kit).

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use prometheus_client::registry::Registry;
use service_kit::metrics::{Sample, Sampler};

use crate::{service::Invitations, storage::records};

/// Whether the publisher is streaming to notification-service now: set by
/// the publisher, read by the metrics.
#[derive(Debug, Clone, Default)]
pub struct PublisherLink(Arc<AtomicBool>);

impl PublisherLink {
    pub(crate) fn set(&self, connected: bool) {
        self.0.store(connected, Ordering::Relaxed);
    }

    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Registers the outbox's and the publisher's figures in `registry`.
pub(crate) fn register(registry: &mut Registry, invitations: &Invitations, link: &PublisherLink) {
    let invitations = invitations.clone();
    let link = link.clone();
    Sampler::register(registry, move || {
        let swept = invitations.swept_totals();
        let mut samples = vec![
            Sample::Gauge {
                name: "invitation_publisher_connected",
                help: "1 while the publisher streams events to notification-service, 0 while it retries.",
                value: if link.is_connected() { 1.0 } else { 0.0 },
            },
            Sample::Counter {
                name: "invitation_expired",
                help: "Invitations expired by the sweep since the process started.",
                value: swept.expired.load(Ordering::Relaxed),
            },
            Sample::Counter {
                name: "invitation_reminders",
                help: "Reminders of pending invitations emitted since the process started.",
                value: swept.reminded.load(Ordering::Relaxed),
            },
        ];
        match outbox(&invitations) {
            Ok((acknowledged, waiting, oldest_age)) => samples.extend([
                Sample::Counter {
                    name: "invitation_events_acknowledged",
                    help: "Events notification-service has acknowledged.",
                    value: acknowledged,
                },
                Sample::Gauge {
                    name: "invitation_outbox_events",
                    help: "Events written but not yet acknowledged by notification-service.",
                    value: waiting as f64,
                },
                Sample::Gauge {
                    name: "invitation_outbox_oldest_event_age_seconds",
                    help: "How long ago the oldest unacknowledged event happened; 0 when none waits.",
                    value: oldest_age,
                },
            ]),
            Err(e) => tracing::warn!(error = %e, "cannot read the outbox for the metrics"),
        }
        samples
    });
}

/// (acknowledged, waiting, age in seconds of the oldest waiting event).
fn outbox(invitations: &Invitations) -> Result<(u64, u64, f64), crate::storage::StoreError> {
    let store = invitations.store();
    let acknowledged = store.acked_sequence()?;
    let waiting = invitations.durable_through().saturating_sub(acknowledged);
    let mut oldest_age = 0.0;
    if waiting > 0
        && let Some((_, bytes)) = store.outbox_after(acknowledged, 1)?.into_iter().next()
    {
        let event = records::decode_event(&bytes)?;
        if let Some(occurred) = event.occurred_at.as_ref().map(service_kit::time::from_proto) {
            let now = invitations.now();
            oldest_age = now.as_millis().saturating_sub(occurred.as_millis()) as f64 / 1000.0;
        }
    }
    Ok((acknowledged, waiting, oldest_age))
}
