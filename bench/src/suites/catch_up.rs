//! Catch-up: notification-service is stopped, a backlog of invitations is
//! sent (they wait in invitation-service's outbox), then notification-service
//! starts again and the publisher streams the backlog to it. The rate is the
//! backlog's events over the time from the first event applied to the last.
//!
//! An event counts as applied once GetDeliveryStatus (as its sender) finds
//! the invitation: before, it answers NOT_FOUND. The last event is a marker
//! sent after the whole backlog had been acknowledged, so it has the highest
//! sequence; progress is read from events spread through the backlog.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use proto::{
    invitations::v1::invitation_service_client::InvitationServiceClient,
    notifications::v1::{self as npb, notification_service_client::NotificationServiceClient},
};
use serde::Serialize;
use tonic::transport::Channel;

use super::Ctx;
use crate::{
    cpu::{CpuUse, Probe},
    load::{self, Call, LoadResult, Pool, Stop},
    progress::{Goal, Progress, step},
    users::{Bearer, Senders, authorized, send_request},
};

/// Longest wait for the backlog to be applied.
const TIMEOUT: Duration = Duration::from_secs(180);
/// Progress checkpoints through the backlog.
const CHECKPOINTS: u64 = 20;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CatchUpResult {
    pub(crate) events: u64,
    /// Sending the backlog (notification-service down).
    pub(crate) backlog_send: LoadResult,
    /// Spawning notification-service again → it reports SERVING.
    pub(crate) restart_to_serving_ms: f64,
    /// SERVING → the first backlog event applied (the publisher's
    /// reconnection backoff is most of it).
    pub(crate) serving_to_first_ms: f64,
    /// First backlog event applied → last.
    pub(crate) apply_secs: f64,
    /// Events per second from the first applied to the last.
    pub(crate) events_per_sec: f64,
    /// Events per second from SERVING to the last applied.
    pub(crate) events_per_sec_from_serving: f64,
    /// CPU from SERVING to the last event applied.
    pub(crate) cpu: Vec<CpuUse>,
}

/// # Errors
///
/// When the services do not start, the backlog cannot be sent or is not
/// applied in time.
pub(crate) async fn run(ctx: &Ctx) -> Result<CatchUpResult, String> {
    step("catch-up: a backlog applied after notification-service restarts");
    let mut pair = ctx.servers.pair(&[], &[]).await?;
    let sizes = &ctx.sizes;
    let events = sizes.backlog.max(CHECKPOINTS);
    let pool = Pool::connect(&pair.invitation.endpoint(), sizes.connections).await?;
    tokio::task::block_in_place(|| pair.notification.terminate());

    let senders = Senders::new(&ctx.tokens, "cu", events);
    // Invitation ids in the order their sends completed.
    let ids = Arc::new(Mutex::new(vec![
        None::<(String, u64)>;
        usize::try_from(events).unwrap_or(0)
    ]));
    let order = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let op = {
        let (senders, ids, order) = (senders.clone(), Arc::clone(&ids), Arc::clone(&order));
        move |i, channel| -> Call {
            let (_, bearer) = senders.sender(i);
            let message = authorized(senders.unique(i), bearer);
            let (ids, order) = (Arc::clone(&ids), Arc::clone(&order));
            Box::pin(async move {
                let invitation = InvitationServiceClient::new(channel)
                    .send_invitation(message)
                    .await?
                    .into_inner();
                let slot = order.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                ids.lock().expect("ids lock")[slot] = Some((invitation.id, i));
                Ok(())
            })
        }
    };
    let probe = Probe::new(&[("invitation-service", pair.invitation.pid())]);
    let backlog_send = load::closed(
        "catch-up: sending the backlog",
        &pool,
        sizes.in_flight(),
        Stop::Count(events),
        events,
        &probe,
        op,
    )
    .await;
    if backlog_send.errors > 0 {
        return Err(format!(
            "{} backlog sends failed: {}",
            backlog_send.errors,
            backlog_send.first_error.unwrap_or_default()
        ));
    }
    let ids: Vec<(String, u64)> = std::mem::take(&mut *ids.lock().expect("ids lock"))
        .into_iter()
        .flatten()
        .collect();

    // The marker: sent after every backlog send was acknowledged.
    let marker_bearer = ctx.tokens.bearer("cu-marker");
    let marker = InvitationServiceClient::new(pool.channel(0))
        .send_invitation(authorized(send_request("cu-marker-r".to_owned()), &marker_bearer))
        .await
        .map_err(|e| format!("marker send: {e}"))?
        .into_inner()
        .id;

    let (notification, restart) = ctx.servers.restart(&mut pair.notification).await?;
    let serving = Instant::now();
    let probe = Probe::new(&[
        ("invitation-service", pair.invitation.pid()),
        ("notification-service", notification),
    ]);
    let first_cpu = probe.snapshot();
    let channel = Pool::connect(&pair.notification.endpoint(), 1).await?.channel(0);
    let deadline = serving + TIMEOUT;

    let (first_id, first_i) = ids.first().cloned().ok_or("no backlog")?;
    let first_applied = wait_applied(&channel, &first_id, senders.sender(first_i).1, deadline).await?;
    let progress = Progress::start("catch-up: applying the backlog", Goal::Count(events));
    let step_len = (ids.len() as u64 / CHECKPOINTS).max(1);
    for k in 1..CHECKPOINTS {
        let Some((id, i)) = ids.get((k * step_len) as usize) else {
            break;
        };
        wait_applied(&channel, id, senders.sender(*i).1, deadline).await?;
        progress
            .counter()
            .store(k * step_len, std::sync::atomic::Ordering::Relaxed);
    }
    let last_applied = wait_applied(&channel, &marker, &marker_bearer, deadline).await?;
    drop(progress);
    let cpu = probe.snapshot().since(&first_cpu, events);

    let apply_secs = last_applied.duration_since(first_applied).as_secs_f64();
    let from_serving = last_applied.duration_since(serving).as_secs_f64();
    let n = events as f64;
    Ok(CatchUpResult {
        events,
        backlog_send,
        restart_to_serving_ms: restart.as_secs_f64() * 1e3,
        serving_to_first_ms: first_applied.duration_since(serving).as_secs_f64() * 1e3,
        apply_secs,
        events_per_sec: n / apply_secs.max(1e-9),
        events_per_sec_from_serving: n / from_serving.max(1e-9),
        cpu,
    })
}

/// Polls GetDeliveryStatus for `id` (as its sender) until the event is
/// applied; returns when it was first seen applied.
///
/// # Errors
///
/// When it is not applied by `deadline`, or the call fails otherwise.
pub(crate) async fn wait_applied(
    channel: &Channel,
    id: &str,
    bearer: &Bearer,
    deadline: Instant,
) -> Result<Instant, String> {
    let mut client = NotificationServiceClient::new(channel.clone());
    loop {
        let request = authorized(
            npb::GetDeliveryStatusRequest {
                invitation_id: id.to_owned(),
            },
            bearer,
        );
        match client.get_delivery_status(request).await {
            Ok(_) => return Ok(Instant::now()),
            Err(status) if status.code() == tonic::Code::NotFound => {}
            Err(status) => return Err(format!("GetDeliveryStatus: {status}")),
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "invitation {id} was not applied by notification-service in time"
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
