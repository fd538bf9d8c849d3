//! Per-channel figures for Prometheus: messages sent, failed for good and
//! retried, and how long a sent one waited since it was queued; the queue
//! lengths are read at each scrape (see [`crate::metrics`]).

use prometheus_client::{
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

use crate::domain::Channel;

type Labels = [(&'static str, &'static str); 1];

fn labels(channel: Channel) -> Labels {
    [("channel", channel.name())]
}

#[derive(Debug, Clone)]
pub(crate) struct ChannelMetrics {
    sent: Family<Labels, Counter>,
    failed: Family<Labels, Counter>,
    retried: Family<Labels, Counter>,
    delay: Family<Labels, Histogram>,
}

impl ChannelMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            sent: Family::default(),
            failed: Family::default(),
            retried: Family::default(),
            delay: Family::new_with_constructor(|| {
                Histogram::new([
                    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 3600.0, 21_600.0, 86_400.0,
                ])
            }),
        };
        registry.register(
            "notification_channel_sent",
            "Messages sent by e-mail or push.",
            metrics.sent.clone(),
        );
        registry.register(
            "notification_channel_failed",
            "Messages given up: refused for good, or failing for the whole retry age.",
            metrics.failed.clone(),
        );
        registry.register(
            "notification_channel_retries",
            "Tries that failed for now and will be tried again.",
            metrics.retried.clone(),
        );
        registry.register(
            "notification_channel_delay_seconds",
            "From queued to sent, retries included.",
            metrics.delay.clone(),
        );
        // Each channel's series exist from the start, at zero.
        for channel in [Channel::Email, Channel::Push] {
            let _ = metrics.sent.get_or_create(&labels(channel));
            let _ = metrics.failed.get_or_create(&labels(channel));
            let _ = metrics.retried.get_or_create(&labels(channel));
        }
        metrics
    }

    pub(crate) fn sent(&self, channel: Channel, waited_ms: u64) {
        self.sent.get_or_create(&labels(channel)).inc();
        #[allow(clippy::cast_precision_loss)] // milliseconds well within f64
        self.delay
            .get_or_create(&labels(channel))
            .observe(waited_ms as f64 / 1000.0);
    }

    pub(crate) fn failed(&self, channel: Channel) {
        self.failed.get_or_create(&labels(channel)).inc();
    }

    pub(crate) fn retried(&self, channel: Channel) {
        self.retried.get_or_create(&labels(channel)).inc();
    }
}
