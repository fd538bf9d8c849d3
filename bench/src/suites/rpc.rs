//! Unary RPC throughput and latency: the echo baseline (the transport
//! limit), durable SendInvitation, and GetInvitation on existing ids. Each
//! runs a closed loop at `connections × streams` in flight (grpc_bench's
//! shape), then open loops at fixed rates; echo and GetInvitation are also
//! driven by h2load when it is installed.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use proto::invitations::v1::{self as ipb, invitation_service_client::InvitationServiceClient};
use serde::Serialize;
use tonic::transport::Channel;

use super::{
    Ctx,
    h2load::{self, H2loadResult},
};
use crate::{
    cpu::Probe,
    echo::EchoClient,
    load::{self, Call, LoadResult, Pool, Stop},
    progress::step,
    sys,
    users::{self, Bearer, Senders, authorized},
};

/// The bounds on sends one closed loop may make (tokens are minted for
/// that many senders up front).
const MAX_CLOSED_SENDS: u64 = 500_000;

/// Results of one RPC's measurements.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct RpcReport {
    pub(crate) runs: Vec<LoadResult>,
    pub(crate) h2load: Option<H2loadResult>,
    /// Why h2load did not run, when it did not.
    pub(crate) h2load_skipped: Option<String>,
    /// Send only: invitation-service's data folder over the invitations
    /// sent (with their outbox events and indexes).
    pub(crate) disk_bytes_per_invitation: Option<f64>,
    /// Send only: how long notification-service took, after the closed
    /// loop, to apply the events it had fallen behind on.
    pub(crate) send_backlog_secs: Option<f64>,
}

/// The share of the closed-loop peak the latency target's open loop offers.
pub(crate) const PEAK_SHARE: f64 = 0.8;

/// The label of that open loop (followed by its rate).
pub(crate) const PEAK_LABEL: &str = "send open 80% of peak";

impl RpcReport {
    /// The open loop at [`PEAK_SHARE`] of the closed-loop peak, if any.
    #[must_use]
    pub(crate) fn at_peak_share(&self) -> Option<&LoadResult> {
        self.runs.iter().find(|r| r.label.starts_with(PEAK_LABEL))
    }

    /// The closed-loop run, if any.
    #[must_use]
    pub(crate) fn closed(&self) -> Option<&LoadResult> {
        self.runs.iter().find(|r| r.shape == "closed")
    }
}

/// A request of the size SendInvitation takes: the echo payload.
fn echo_request() -> ipb::SendInvitationRequest {
    users::send_request("bench-echo-r123456".to_owned())
}

/// # Errors
///
/// When the echo server does not start.
pub(crate) async fn echo(ctx: &Ctx) -> Result<RpcReport, String> {
    step("echo: the transport baseline");
    let server = ctx.servers.echo()?;
    let sizes = &ctx.sizes;
    let pool = Pool::connect(&server.endpoint(), sizes.connections).await?;
    let probe = Probe::new(&[("echo-server", Some(server.pid()))]);
    let bearer = ctx.tokens.bearer("bench-echo");
    let request = echo_request();
    let op = {
        let (bearer, request) = (bearer.clone(), request.clone());
        move |_, channel| -> Call {
            let message = authorized(request.clone(), &bearer);
            Box::pin(async move { EchoClient::new(channel).echo(message).await.map(drop) })
        }
    };
    let label = format!("echo closed {}", sizes.in_flight());
    let stop = Stop::After {
        warmup: sizes.warmup(),
        measure: sizes.closed(),
    };
    let closed = load::closed(&label, &pool, sizes.in_flight(), stop, u64::MAX, &probe, op).await;
    let mut report = RpcReport {
        runs: vec![closed],
        ..RpcReport::default()
    };
    drop(pool);
    cross_check(
        &mut report,
        ctx,
        &probe,
        "echo (h2load)",
        server.addr(),
        "/bench.v1.Echo/Echo",
        &request,
        &bearer,
    )
    .await?;
    Ok(report)
}

/// # Errors
///
/// When the services do not start.
pub(crate) async fn send(ctx: &Ctx) -> Result<RpcReport, String> {
    step("send: durable SendInvitation");
    let pair = ctx.servers.pair(&[], &[]).await?;
    let sizes = &ctx.sizes;
    let pool = Pool::connect(&pair.invitation.endpoint(), sizes.connections).await?;
    let probe = Probe::new(&[
        ("invitation-service", pair.invitation.pid()),
        ("notification-service", pair.notification.pid()),
    ]);
    let mut report = RpcReport::default();

    let created = Arc::new(AtomicU64::new(0));
    let senders = Senders::new(&ctx.tokens, "sc", MAX_CLOSED_SENDS);
    let label = format!("send closed {}", sizes.in_flight());
    let stop = Stop::After {
        warmup: sizes.warmup(),
        measure: sizes.closed(),
    };
    let closed = load::closed(
        &label,
        &pool,
        sizes.in_flight(),
        stop,
        senders.capacity(),
        &probe,
        send_op(senders, Arc::clone(&created)),
    )
    .await;
    report.runs.push(closed);
    // The closed loop leaves notification-service behind (both services
    // share the server cores); let it catch up so the open loops start clean.
    report.send_backlog_secs = Some(settle(ctx, &pair).await?);

    // The latency target's load: an open loop at 80 % of the peak this
    // closed loop just measured (by Little's law no server meets a tight
    // p99 with 1,000 requests queued at once; at 80 % of its peak it should).
    // Sends at `rate` for the open-loop window, from senders of their own.
    let open_sends = async |label: &str, senders: &str, rate: f64| {
        let sends = (rate * sizes.open_secs).ceil() as u64;
        let senders = Senders::new(&ctx.tokens, senders, sends);
        load::open(
            label,
            &pool,
            rate,
            sizes.open(),
            &probe,
            send_op(senders, Arc::clone(&created)),
        )
        .await
    };
    if let Some(peak) = report.closed().map(|r| r.throughput).filter(|t| *t > 0.0) {
        let rate = (peak * PEAK_SHARE).round().max(1.0);
        report
            .runs
            .push(open_sends(&format!("{PEAK_LABEL} ({rate:.0}/s)"), "s80", rate).await);
        report.send_backlog_secs = Some(report.send_backlog_secs.unwrap_or(0.0) + settle(ctx, &pair).await?);
    }

    for &rate in &sizes.send_rates {
        report
            .runs
            .push(open_sends(&format!("send open {rate}/s"), &format!("so{rate}"), rate).await);
    }
    let per_invitation =
        sys::disk_bytes(pair.invitation.data_dir()) as f64 / created.load(Ordering::Relaxed).max(1) as f64;
    report.disk_bytes_per_invitation = Some(per_invitation);
    Ok(report)
}

/// Sends one more invitation and waits until notification-service has
/// applied it (so every earlier event too); returns how long that took.
async fn settle(ctx: &Ctx, pair: &e2e::Pair) -> Result<f64, String> {
    // Each settling send goes to a recipient of its own: a second one to
    // the same would be refused as already pending.
    static SETTLES: AtomicU64 = AtomicU64::new(0);
    let settling = SETTLES.fetch_add(1, Ordering::Relaxed);
    let started = std::time::Instant::now();
    let bearer = ctx.tokens.bearer("settle-sender");
    let id = InvitationServiceClient::new(Pool::connect(&pair.invitation.endpoint(), 1).await?.channel(0))
        .send_invitation(authorized(users::send_request(format!("settle-r{settling}")), &bearer))
        .await
        .map_err(|e| format!("settling send: {e}"))?
        .into_inner()
        .id;
    let channel = Pool::connect(&pair.notification.endpoint(), 1).await?.channel(0);
    let deadline = started + std::time::Duration::from_secs(120);
    super::catch_up::wait_applied(&channel, &id, &bearer, deadline).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Send `i` from its sender to a recipient of its own; counts in `created`.
fn send_op(senders: Senders, created: Arc<AtomicU64>) -> impl Fn(u64, Channel) -> Call + Clone + Send + Sync + 'static {
    move |i, channel| {
        let (_, bearer) = senders.sender(i);
        let message = authorized(senders.unique(i), bearer);
        let created = Arc::clone(&created);
        Box::pin(async move {
            InvitationServiceClient::new(channel).send_invitation(message).await?;
            created.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }
}

/// # Errors
///
/// When the services do not start or the invitations to read cannot be
/// created.
pub(crate) async fn get(ctx: &Ctx) -> Result<RpcReport, String> {
    step("get: GetInvitation on existing ids");
    let pair = ctx.servers.pair(&[], &[]).await?;
    let sizes = &ctx.sizes;
    let pool = Pool::connect(&pair.invitation.endpoint(), sizes.connections).await?;
    let probe = Probe::new(&[
        ("invitation-service", pair.invitation.pid()),
        ("notification-service", pair.notification.pid()),
    ]);

    // The invitations to read, each with its sender's token.
    let senders = Senders::new(&ctx.tokens, "g", sizes.get_pool);
    let created = Arc::new(Mutex::new(Vec::with_capacity(
        usize::try_from(sizes.get_pool).unwrap_or(0),
    )));
    let setup = {
        let (senders, created) = (senders.clone(), Arc::clone(&created));
        move |i, channel| -> Call {
            let (_, bearer) = senders.sender(i);
            let bearer = bearer.clone();
            let message = authorized(senders.unique(i), &bearer);
            let created = Arc::clone(&created);
            Box::pin(async move {
                let invitation = InvitationServiceClient::new(channel)
                    .send_invitation(message)
                    .await?
                    .into_inner();
                let request = ipb::GetInvitationRequest {
                    invitation_id: invitation.id,
                };
                created.lock().expect("created lock").push((request, bearer));
                Ok(())
            })
        }
    };
    let made = load::closed(
        "get: creating invitations",
        &pool,
        sizes.in_flight(),
        Stop::Count(sizes.get_pool),
        sizes.get_pool,
        &Probe::default(),
        setup,
    )
    .await;
    let existing: Arc<Vec<_>> = Arc::new(std::mem::take(&mut *created.lock().expect("created lock")));
    if existing.is_empty() {
        return Err(format!(
            "no invitation to read: {}",
            made.first_error.unwrap_or_default()
        ));
    }

    let mut report = RpcReport::default();
    let label = format!("get closed {}", sizes.in_flight());
    let stop = Stop::After {
        warmup: sizes.warmup(),
        measure: sizes.closed(),
    };
    let op = get_op(Arc::clone(&existing));
    report
        .runs
        .push(load::closed(&label, &pool, sizes.in_flight(), stop, u64::MAX, &probe, op).await);
    for &rate in &sizes.get_rates {
        let label = format!("get open {rate}/s");
        let op = get_op(Arc::clone(&existing));
        report
            .runs
            .push(load::open(&label, &pool, rate, sizes.open(), &probe, op).await);
    }
    drop(pool);

    let (request, bearer) = &existing[0];
    let path = "/invitations.v1.InvitationService/GetInvitation";
    cross_check(
        &mut report,
        ctx,
        &probe,
        "get (h2load)",
        pair.invitation.addr(),
        path,
        request,
        bearer,
    )
    .await?;
    Ok(report)
}

/// Drives one RPC with h2load, in the closed loop's shape and with the same
/// request bytes, into `report`; or records why it could not.
#[expect(clippy::too_many_arguments, reason = "one call per RPC, each naming what differs")]
async fn cross_check(
    report: &mut RpcReport,
    ctx: &Ctx,
    probe: &Probe,
    label: &str,
    addr: std::net::SocketAddr,
    path: &str,
    request: &impl prost::Message,
    bearer: &Bearer,
) -> Result<(), String> {
    if !h2load::available() {
        report.h2load_skipped = Some("h2load is not installed (apt-get install nghttp2-client)".to_owned());
        return Ok(());
    }
    let sizes = &ctx.sizes;
    let frame = h2load::grpc_frame(request);
    let run = h2load::Run {
        label,
        addr,
        path,
        frame: &frame,
        bearer,
        connections: sizes.connections,
        streams_per_connection: sizes.streams_per_connection,
        warmup: sizes.warmup(),
        duration: std::time::Duration::from_secs_f64(sizes.h2load_secs),
        cpus: ctx.client_cpus.as_deref(),
    };
    step(label);
    report.h2load = Some(h2load::run(run, probe).await?);
    Ok(())
}

/// GetInvitation of a well-spread existing invitation, as its sender.
fn get_op(
    existing: Arc<Vec<(ipb::GetInvitationRequest, Bearer)>>,
) -> impl Fn(u64, Channel) -> Call + Clone + Send + Sync + 'static {
    move |i, channel| {
        let (request, bearer) = &existing[(users::mix(i) % existing.len() as u64) as usize];
        let message = authorized(request.clone(), bearer);
        Box::pin(async move {
            InvitationServiceClient::new(channel)
                .get_invitation(message)
                .await
                .map(drop)
        })
    }
}
