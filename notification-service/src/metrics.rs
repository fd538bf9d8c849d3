//! notification-service's own figures for Prometheus, read at each scrape
//! (the per-RPC and storage metrics come from service-kit).

use prometheus_client::registry::Registry;
use service_kit::metrics::{Sample, Sampler};

use crate::{domain::Channel, service::Notifier};

/// Registers the figures of `notifier` in `registry`.
pub(crate) fn register(registry: &mut Registry, notifier: &Notifier) {
    let notifier = notifier.clone();
    Sampler::register(registry, move || {
        // Sequences start at 1 and each is applied once: the last one
        // applied from a source is how many of its events were.
        let applied = notifier
            .durable_figures()
            .iter()
            .filter(|(name, _)| name.starts_with("applied."))
            .map(|(_, value)| *value)
            .sum();
        let mut samples = vec![
            Sample::Counter {
                name: "notification_events_applied",
                help: "Events applied (each sequence once, however often it was sent).",
                value: applied,
            },
            Sample::Gauge {
                name: "notification_live_streams",
                help: "Open Subscribe streams.",
                value: notifier.hub().stream_count() as f64,
            },
        ];
        match notifier.store().undelivered() {
            Ok((held, digests)) => samples.extend([
                Sample::Gauge {
                    name: "notification_held",
                    help: "Notifications held for the undo window (or due later), not yet delivered.",
                    value: held as f64,
                },
                Sample::Gauge {
                    name: "notification_digests_open",
                    help: "Digests gathering items, not yet sent.",
                    value: digests as f64,
                },
            ]),
            Err(e) => tracing::warn!(error = %e, "cannot count undelivered notifications for the metrics"),
        }
        let now = notifier.now();
        let mut queued = Vec::new();
        let mut oldest = Vec::new();
        for channel in [Channel::Email, Channel::Push] {
            match notifier.store().outbound_figures(channel, now) {
                Ok((count, age)) => {
                    queued.push((channel.name(), count as f64));
                    oldest.push((channel.name(), age.map_or(0.0, |a| a.as_secs_f64())));
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the outbound queues for the metrics"),
            }
        }
        samples.extend([
            Sample::GaugeBy {
                name: "notification_channel_queued",
                help: "Messages waiting to be sent by e-mail or push (retries included).",
                label: "channel",
                values: queued,
            },
            Sample::GaugeBy {
                name: "notification_channel_oldest_queued_seconds",
                help: "Age of the oldest message at the head of a queue (0 when none waits): how far behind a channel is.",
                label: "channel",
                values: oldest,
            },
        ]);
        samples
    });
}
