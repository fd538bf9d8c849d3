//! E-mail and push: the workers that send what the outbound queues hold
//! (see [`crate::storage`]'s outbound module), one per channel the server
//! has, each apart from the app's delivery so that a slow or failing mail
//! server or webhook never delays IN_APP.
//!
//! A try is begun durably (counted, marked as possibly seen, leased) before
//! anything is sent, and its end recorded durably after: a message is sent
//! again only when a crash falls inside one try (between the other side
//! taking it and our record of that), and then with the same id.

mod config;
pub(crate) mod json;
mod mail;
mod metrics;
pub mod signature;
mod webhook;

use std::time::Duration;

use tokio::{sync::watch, task::JoinSet};

pub use config::{ChannelArgs, ChannelSettings, MailSettings, WebhookSettings};
pub(crate) use metrics::ChannelMetrics;

use crate::{
    domain::{Channel, Timestamp},
    error::Error,
    service::Notifier,
    storage::{Job, Outcome},
};

/// Longest wait between retries, however many tries failed.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How long tries under way may go on once the service is stopping.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Most messages of one channel in flight at once (each a different user's
/// queue head).
const IN_FLIGHT: usize = 16;

/// How one try ended, before the retry policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Try {
    Sent,
    /// Worth trying again (`after`: the other side asked for that wait).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Never worth trying again.
    Failed(String),
}

/// What sends one channel's messages.
#[derive(Debug, Clone)]
enum Sender {
    Mail(mail::Mailer),
    // Boxed: its HTTP client is several times the size of the mailer.
    Push(Box<webhook::Webhook>),
}

impl Sender {
    async fn send(&self, job: &Job) -> Try {
        match self {
            Self::Mail(mailer) => mailer.send(job).await,
            Self::Push(webhook) => webhook.send(job).await,
        }
    }
}

/// One channel's worker and its policy.
#[derive(Debug, Clone)]
struct Worker {
    channel: Channel,
    sender: Sender,
    max_retry_age: Duration,
    first_backoff: Duration,
    /// How long a begun try holds its message before a crash-cut try is
    /// tried again: longer than any try takes.
    lease: Duration,
    notifier: Notifier,
    metrics: ChannelMetrics,
}

/// The outcome of a try under the retry policy: a temporary failure is
/// retried with exponential backoff and jitter until the message is
/// `max_retry_age` old, then it fails.
fn outcome(result: &Try, job: &Job, now: Timestamp, first_backoff: Duration, max_retry_age: Duration) -> Outcome {
    match result {
        Try::Sent => Outcome::Sent,
        Try::Failed(_) => Outcome::Failed,
        Try::Retry { after, .. } => {
            let wait = service_kit::backoff::Backoff::delay_for(first_backoff, MAX_BACKOFF, job.attempts)
                .max(after.unwrap_or_default().min(MAX_BACKOFF));
            let next = now.plus(wait);
            if next.as_millis().saturating_sub(job.created.as_millis())
                > u64::try_from(max_retry_age.as_millis()).unwrap_or(u64::MAX)
            {
                Outcome::Failed
            } else {
                Outcome::RetryAt(next)
            }
        }
    }
}

impl Worker {
    async fn run(self, tick: Duration, mut stop: watch::Receiver<bool>) {
        let mut in_flight = JoinSet::new();
        let mut first_pass = true;
        loop {
            while in_flight.try_join_next().is_some() {}
            let free = IN_FLIGHT.saturating_sub(in_flight.len());
            let mut busy = false;
            if free > 0 {
                match self
                    .notifier
                    .begin_tries(self.channel, free, self.lease, first_pass)
                    .await
                {
                    Ok(jobs) => {
                        busy = jobs.len() == free;
                        first_pass = false;
                        for job in jobs {
                            let worker = self.clone();
                            in_flight.spawn(async move { worker.try_once(job).await });
                        }
                    }
                    Err(Error::StorageFailed) => break,
                    Err(e) => tracing::error!(channel = self.channel.name(), error = %e, "cannot begin sending"),
                }
            }
            if busy {
                // More may be due: go round again once a slot frees.
                tokio::select! {
                    _ = in_flight.join_next() => {}
                    _ = stop.changed() => break,
                }
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                _ = stop.changed() => break,
            }
        }
        // Tries under way get a moment to finish; one cut short is tried
        // again, under the same id, as soon as the service is back.
        let drained =
            tokio::time::timeout(SHUTDOWN_GRACE, async { while in_flight.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::info!(
                channel = self.channel.name(),
                cut_short = in_flight.len(),
                "stopping with tries under way"
            );
            in_flight.abort_all();
        }
    }

    async fn try_once(self, job: Job) {
        let started = std::time::Instant::now();
        let result = self.sender.send(&job).await;
        let now = self.notifier.now();
        let outcome = outcome(&result, &job, now, self.first_backoff, self.max_retry_age);
        let channel = self.channel.name();
        match (&result, outcome) {
            (_, Outcome::Sent) => {
                tracing::debug!(
                    channel,
                    attempts = job.attempts,
                    took_ms = started.elapsed().as_millis(),
                    "sent"
                );
                self.metrics
                    .sent(self.channel, now.as_millis().saturating_sub(job.created.as_millis()));
            }
            (Try::Retry { reason, .. }, Outcome::RetryAt(at)) => {
                tracing::warn!(channel, attempts = job.attempts, retry_in_ms = at.as_millis().saturating_sub(now.as_millis()), reason = %reason, "send failed; will retry");
                self.metrics.retried(self.channel);
            }
            (Try::Retry { reason, .. } | Try::Failed(reason), _) => {
                tracing::warn!(channel, attempts = job.attempts, reason = %reason, "send failed for good");
                self.metrics.failed(self.channel);
            }
            (Try::Sent, Outcome::RetryAt(_) | Outcome::Failed) => {}
        }
        if let Err(e) = self.notifier.finish_try(job, outcome).await {
            tracing::error!(channel, error = %e, "cannot record how a send ended; it will be tried again");
        }
    }
}

/// Starts a worker for each channel `settings` configures; they stop when
/// `stop` changes.
pub(crate) fn spawn(
    notifier: &Notifier,
    settings: &ChannelSettings,
    metrics: &ChannelMetrics,
    tick: Duration,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut workers = Vec::new();
    if let Some(mail) = &settings.mail {
        workers.push(Worker {
            channel: Channel::Email,
            sender: Sender::Mail(mail::Mailer::new(mail)),
            max_retry_age: mail.max_retry_age,
            first_backoff: settings.first_backoff,
            // lettre's timeout bounds each SMTP command of the conversation.
            lease: mail.timeout * 6 + Duration::from_secs(10),
            notifier: notifier.clone(),
            metrics: metrics.clone(),
        });
    }
    if let Some(webhook) = &settings.webhook {
        workers.push(Worker {
            channel: Channel::Push,
            sender: Sender::Push(Box::new(webhook::Webhook::new(webhook))),
            max_retry_age: webhook.max_retry_age,
            first_backoff: settings.first_backoff,
            lease: webhook.timeout + Duration::from_secs(10),
            notifier: notifier.clone(),
            metrics: metrics.clone(),
        });
    }
    workers
        .into_iter()
        .map(|worker| tokio::spawn(worker.run(tick, stop.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Update, UpdateKind};

    fn job(created_ms: u64, attempts: u32) -> Job {
        Job {
            channel: Channel::Push,
            user: "bob".into(),
            seq: 1,
            id: "msg_1".into(),
            update: Update {
                cursor: 0,
                kind: UpdateKind::Retracted(vec![1]),
            },
            email: String::new(),
            created: Timestamp::from_millis(created_ms),
            attempts,
        }
    }

    #[test]
    fn temporary_failures_back_off_until_the_retry_age_then_fail() {
        let day = Duration::from_secs(86_400);
        let retry = Try::Retry {
            reason: "503".into(),
            after: None,
        };
        let now = Timestamp::from_millis(10_000);
        let first = outcome(&retry, &job(10_000, 1), now, Duration::from_secs(5), day);
        let Outcome::RetryAt(at) = first else {
            panic!("{first:?}")
        };
        assert!((12_500..=15_000).contains(&at.as_millis()), "{at:?}");
        // The tenth try waits 5 s × 2⁹ (jittered), well under the hour cap.
        let Outcome::RetryAt(at) = outcome(&retry, &job(10_000, 10), now, Duration::from_secs(5), day) else {
            panic!()
        };
        assert!(at.as_millis() - 10_000 >= 1_280_000, "{at:?}");
        let old = Timestamp::from_millis(10_000 + 86_400_000);
        assert_eq!(
            outcome(&retry, &job(10_000, 30), old, Duration::from_secs(5), day),
            Outcome::Failed
        );
        assert_eq!(
            outcome(
                &Try::Failed("550".into()),
                &job(10_000, 1),
                now,
                Duration::from_secs(5),
                day
            ),
            Outcome::Failed
        );
        assert_eq!(
            outcome(&Try::Sent, &job(10_000, 1), now, Duration::from_secs(5), day),
            Outcome::Sent
        );
        let asked = Try::Retry {
            reason: "429".into(),
            after: Some(Duration::from_secs(120)),
        };
        let Outcome::RetryAt(at) = outcome(&asked, &job(10_000, 1), now, Duration::from_secs(5), day) else {
            panic!()
        };
        assert_eq!(at.as_millis(), 130_000, "retry-after is honoured");
    }
}
