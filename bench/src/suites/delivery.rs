//! End to end: SendInvitation at fixed rates (open loop) to recipients who
//! listen on a live `Subscribe` stream with IMMEDIATE delivery and no undo
//! window; the latency runs from the send call's start to the `delivered`
//! update naming the invitation on the recipient's stream.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use proto::{
    invitations::v1::{self as ipb, invitation_service_client::InvitationServiceClient},
    notifications::v1::{self as npb, notification_service_client::NotificationServiceClient},
};
use serde::Serialize;
use tonic::{Request, transport::Channel};

use super::{Ctx, no_undo_window};
use crate::{
    cpu::{CpuUse, Probe},
    load::{self, Call, Latency, Pool},
    progress::step,
    users::{Bearer, Senders, authorized, send_request},
};

/// When each invitation's send call started, by the invitation's id.
pub(super) type Starts = Arc<Mutex<HashMap<String, Instant>>>;

/// A SendInvitation that records, under the id it returns, when it started.
pub(super) fn timed_send(channel: Channel, message: Request<ipb::SendInvitationRequest>, starts: &Starts) -> Call {
    let starts = Arc::clone(starts);
    Box::pin(async move {
        let start = Instant::now();
        let invitation = InvitationServiceClient::new(channel)
            .send_invitation(message)
            .await?
            .into_inner();
        starts.lock().expect("starts lock").insert(invitation.id, start);
        Ok(())
    })
}

/// How long to wait for the last deliveries after the last send.
const DRAIN: Duration = Duration::from_secs(15);

/// One rate's figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeliveryResult {
    pub(crate) rate: f64,
    pub(crate) secs: f64,
    pub(crate) sent: u64,
    pub(crate) send_errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) delivered: u64,
    /// Sent but not delivered within the drain time.
    pub(crate) missing: u64,
    /// Send call's start → `delivered` on the recipient's stream.
    pub(crate) latency: Latency,
    /// The SendInvitation call alone.
    pub(crate) send_latency: Latency,
    pub(crate) start_lag_p99_ms: Option<f64>,
    pub(crate) cpu: Vec<CpuUse>,
}

/// Arrival time of each delivered invitation id.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// IMMEDIATE, FULL notifications of received invitations.
#[must_use]
pub(crate) fn immediate() -> npb::UpdatePreferencesRequest {
    npb::UpdatePreferencesRequest {
        preferences: Some(npb::Preferences {
            invitation_received: Some(npb::TopicPreference {
                enabled: true,
                delivery: npb::Delivery::Immediate.into(),
                detail: npb::Detail::Full.into(),
                channels: Vec::new(),
            }),
            ..npb::Preferences::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["invitation_received".to_owned()],
        }),
    }
}

/// Opens a live stream for `bearer`'s user, after setting IMMEDIATE
/// preferences when `set_preferences`.
///
/// # Errors
///
/// When the preferences or the subscription are refused.
pub(crate) async fn subscribe(
    channel: Channel,
    bearer: &Bearer,
    set_preferences: bool,
) -> Result<tonic::Streaming<npb::NotificationUpdate>, tonic::Status> {
    let mut client = NotificationServiceClient::new(channel);
    if set_preferences {
        client.update_preferences(authorized(immediate(), bearer)).await?;
    }
    Ok(client
        .subscribe(authorized(npb::SubscribeRequest { resume_after: None }, bearer))
        .await?
        .into_inner())
}

/// The invitation ids a `delivered` update names.
#[must_use]
pub(crate) fn delivered_ids(update: npb::NotificationUpdate) -> Vec<String> {
    match update.kind {
        Some(npb::notification_update::Kind::Delivered(n)) => n.invitation_ids,
        Some(npb::notification_update::Kind::Revised(_) | npb::notification_update::Kind::Retracted(_)) | None => {
            Vec::new()
        }
    }
}

/// # Errors
///
/// When the services do not start or the recipients cannot subscribe.
pub(crate) async fn run(ctx: &Ctx) -> Result<Vec<DeliveryResult>, String> {
    step("e2e: send → delivered on a live stream");
    let pair = ctx.servers.pair(&no_undo_window(), &[]).await?;
    let sizes = &ctx.sizes;
    let recipients = sizes.e2e_recipients.max(users_needed());
    let streams = Pool::connect(&pair.notification.endpoint(), 8).await?;
    let pool = Pool::connect(&pair.invitation.endpoint(), sizes.connections).await?;
    let probe = Probe::new(&[
        ("invitation-service", pair.invitation.pid()),
        ("notification-service", pair.notification.pid()),
    ]);

    let arrivals: Arrivals = Arc::default();
    let mut readers = tokio::task::JoinSet::new();
    let mut opening = tokio::task::JoinSet::new();
    for r in 0..recipients {
        let bearer = ctx.tokens.bearer(&recipient(r));
        let channel = streams.channel(r);
        opening.spawn(async move { subscribe(channel, &bearer, true).await });
    }
    while let Some(opened) = opening.join_next().await {
        let mut stream = opened
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("subscribing: {e}"))?;
        let arrivals = Arc::clone(&arrivals);
        readers.spawn(async move {
            while let Ok(Some(update)) = stream.message().await {
                let at = Instant::now();
                let ids = delivered_ids(update);
                let mut arrivals = arrivals.lock().expect("arrivals lock");
                for id in ids {
                    arrivals.insert(id, at);
                }
            }
        });
    }

    let mut results = Vec::new();
    for &rate in &sizes.e2e_rates {
        let sends = (rate * sizes.e2e_secs).ceil() as u64;
        let senders = Senders::new(&ctx.tokens, &format!("e2e{rate}"), sends);
        let starts = Starts::default();
        let op = {
            let starts = Arc::clone(&starts);
            move |i, channel| -> Call {
                let (_, bearer) = senders.sender(i);
                // Within one sender the recipients differ (there are more
                // recipients than sends per sender), so every pair is new.
                let message = authorized(send_request(recipient(i % recipients)), bearer);
                timed_send(channel, message, &starts)
            }
        };
        let label = format!("e2e open {rate}/s");
        let sent = load::open(&label, &pool, rate, Duration::from_secs_f64(sizes.e2e_secs), &probe, op).await;

        let deadline = Instant::now() + DRAIN;
        let latencies = loop {
            let outcome = {
                let starts = starts.lock().expect("starts lock");
                let arrivals = arrivals.lock().expect("arrivals lock");
                let mut latencies = load::histogram();
                let mut missing = 0u64;
                for (id, start) in starts.iter() {
                    match arrivals.get(id) {
                        Some(at) => load::record(&mut latencies, at.saturating_duration_since(*start)),
                        None => missing += 1,
                    }
                }
                (latencies, missing)
            };
            if outcome.1 == 0 || Instant::now() >= deadline {
                break outcome;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (latencies, missing) = latencies;
        results.push(DeliveryResult {
            rate,
            secs: sent.secs,
            sent: sent.ok,
            send_errors: sent.errors,
            first_error: sent.first_error.clone(),
            delivered: latencies.len(),
            missing,
            latency: Latency::of(&latencies),
            send_latency: sent.latency.clone(),
            start_lag_p99_ms: sent.start_lag_p99_ms,
            cpu: sent.cpu.clone(),
        });
    }
    readers.abort_all();
    Ok(results)
}

/// At least as many recipients as one sender sends to, so a sender never
/// invites the same recipient twice.
fn users_needed() -> u64 {
    crate::users::SENDS_PER_SENDER
}

fn recipient(r: u64) -> String {
    format!("e2e-r{r}")
}
