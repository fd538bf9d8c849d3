//! Fan-out: many concurrent `Subscribe` streams held open on one
//! notification-service (10 per user, spread over connections of at most
//! [`STREAMS_PER_CONNECTION`] streams, below the server's limit on concurrent
//! streams per connection), its memory, and the delivery latency to one of
//! those users, who has 10 streams open: from the send call's start to the
//! `delivered` update on each of the 10.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use proto::notifications::v1::notification_service_client::NotificationServiceClient;
use serde::Serialize;

use super::{Ctx, delivery, no_undo_window};
use crate::{
    cpu::{CpuUse, Probe},
    load::{self, Call, Latency, Pool},
    progress::{Goal, Progress, step},
    sys,
    users::{SENDS_PER_SENDER, Senders, authorized, send_request},
};

/// Streams each user holds (below the hub's cap of 16).
pub(crate) const STREAMS_PER_USER: u64 = 10;
/// Streams per HTTP/2 connection.
const STREAMS_PER_CONNECTION: u64 = 100;
/// Subscriptions being opened at once.
const OPENING_AT_ONCE: usize = 256;
/// The user whose deliveries are timed.
const WATCHED: &str = "fan-u0";
/// Rate of the timed sends.
const SEND_RATE: f64 = 100.0;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FanoutResult {
    pub(crate) streams: u64,
    pub(crate) users: u64,
    pub(crate) connections: usize,
    /// Time to open every stream.
    pub(crate) open_secs: f64,
    pub(crate) rss_before_bytes: u64,
    pub(crate) rss_after_bytes: u64,
    pub(crate) rss_per_stream_bytes: f64,
    /// The client's own memory with every stream open.
    pub(crate) client_rss_bytes: u64,
    pub(crate) sends: u64,
    /// Deliveries seen on the watched user's streams (sends × 10 expected).
    pub(crate) deliveries: u64,
    pub(crate) missing: u64,
    /// Send start → `delivered`, over every (send, stream).
    pub(crate) latency: Latency,
    /// Send start → the last of the user's streams has it.
    pub(crate) all_streams_latency: Latency,
    pub(crate) cpu: Vec<CpuUse>,
}

/// # Errors
///
/// When the services do not start or the streams cannot be opened.
pub(crate) async fn run(ctx: &Ctx) -> Result<FanoutResult, String> {
    let sizes = &ctx.sizes;
    let users = sizes.fanout_streams.div_ceil(STREAMS_PER_USER).max(1);
    let streams = users * STREAMS_PER_USER;
    step(&format!("fanout: {streams} Subscribe streams"));
    let pair = ctx.servers.pair(&no_undo_window(), &[]).await?;
    let rss_before_bytes = sys::rss_bytes(pair.notification.pid()).unwrap_or(0);
    let connections = usize::try_from(streams.div_ceil(STREAMS_PER_CONNECTION)).unwrap_or(1);
    let pool = Pool::connect(&pair.notification.endpoint(), connections).await?;

    let watched_bearer = ctx.tokens.bearer(WATCHED);
    NotificationServiceClient::new(pool.channel(0))
        .update_preferences(authorized(delivery::immediate(), &watched_bearer))
        .await
        .map_err(|e| format!("preferences of the watched user: {e}"))?;

    // Invitation id → arrivals on the watched user's streams.
    let arrivals: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
    let opened = Arc::new(AtomicU64::new(0));
    let failed: Arc<Mutex<Option<String>>> = Arc::default();
    let progress = Progress::start("fanout: opening streams", Goal::Count(streams));
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(OPENING_AT_ONCE));
    let mut readers = tokio::task::JoinSet::new();
    for u in 0..users {
        let user = if u == 0 {
            WATCHED.to_owned()
        } else {
            format!("fan-u{u}")
        };
        let bearer = if u == 0 {
            watched_bearer.clone()
        } else {
            ctx.tokens.bearer(&user)
        };
        for s in 0..STREAMS_PER_USER {
            let n = u * STREAMS_PER_USER + s;
            let channel = pool.channel(n);
            let (bearer, gate, opened, failed, counter) = (
                bearer.clone(),
                Arc::clone(&gate),
                Arc::clone(&opened),
                Arc::clone(&failed),
                progress.counter(),
            );
            let arrivals = (u == 0).then(|| Arc::clone(&arrivals));
            readers.spawn(async move {
                let permit = gate.acquire_owned().await;
                let subscribed = delivery::subscribe(channel, &bearer, false).await;
                drop(permit);
                let mut stream = match subscribed {
                    Ok(stream) => stream,
                    Err(status) => {
                        failed.lock().expect("failed lock").get_or_insert(status.to_string());
                        return;
                    }
                };
                opened.fetch_add(1, Ordering::Relaxed);
                counter.fetch_add(1, Ordering::Relaxed);
                while let Ok(Some(update)) = stream.message().await {
                    let at = Instant::now();
                    if let Some(arrivals) = &arrivals {
                        let mut arrivals = arrivals.lock().expect("arrivals lock");
                        for id in delivery::delivered_ids(update) {
                            arrivals.entry(id).or_default().push(at);
                        }
                    }
                }
            });
        }
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    while opened.load(Ordering::Relaxed) < streams {
        if let Some(e) = failed.lock().expect("failed lock").clone() {
            return Err(format!(
                "opening stream {} of {streams} failed: {e}",
                opened.load(Ordering::Relaxed) + 1
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "only {} of {streams} streams opened in 180 s",
                opened.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let open_secs = started.elapsed().as_secs_f64();
    drop(progress);
    // Let the server settle before reading its memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after_bytes = sys::rss_bytes(pair.notification.pid()).unwrap_or(0);
    let client_rss_bytes = sys::rss_bytes(None).unwrap_or(0);

    // Timed sends to the watched user, each from a new sender.
    let senders = Senders::new(&ctx.tokens, "fan", sizes.fanout_sends * SENDS_PER_SENDER);
    let starts = delivery::Starts::default();
    let op = {
        let starts = Arc::clone(&starts);
        move |i: u64, channel| -> Call {
            // One send per sender: every pair with the watched user is new.
            let (_, bearer) = senders.sender(i * SENDS_PER_SENDER);
            let message = authorized(send_request(WATCHED.to_owned()), bearer);
            delivery::timed_send(channel, message, &starts)
        }
    };
    let senders_pool = Pool::connect(&pair.invitation.endpoint(), 4).await?;
    let probe = Probe::new(&[
        ("invitation-service", pair.invitation.pid()),
        ("notification-service", pair.notification.pid()),
    ]);
    let duration = Duration::from_secs_f64(sizes.fanout_sends as f64 / SEND_RATE);
    let sent = load::open("fanout: timed sends", &senders_pool, SEND_RATE, duration, &probe, op).await;

    let wait_until = Instant::now() + Duration::from_secs(15);
    let (latency, all_streams, deliveries, missing) = loop {
        let outcome = {
            let starts = starts.lock().expect("starts lock");
            let arrivals = arrivals.lock().expect("arrivals lock");
            let (mut each, mut all) = (load::histogram(), load::histogram());
            let (mut deliveries, mut missing) = (0u64, 0u64);
            for (id, start) in starts.iter() {
                let seen = arrivals.get(id).map_or(&[][..], Vec::as_slice);
                deliveries += seen.len() as u64;
                missing += STREAMS_PER_USER.saturating_sub(seen.len() as u64);
                for at in seen {
                    load::record(&mut each, at.saturating_duration_since(*start));
                }
                if seen.len() as u64 >= STREAMS_PER_USER
                    && let Some(last) = seen.iter().max()
                {
                    load::record(&mut all, last.saturating_duration_since(*start));
                }
            }
            (each, all, deliveries, missing)
        };
        if outcome.3 == 0 || Instant::now() >= wait_until {
            break outcome;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    readers.abort_all();

    let per_stream = rss_after_bytes.saturating_sub(rss_before_bytes) as f64 / streams as f64;
    Ok(FanoutResult {
        streams,
        users,
        connections,
        open_secs,
        rss_before_bytes,
        rss_after_bytes,
        rss_per_stream_bytes: per_stream,
        client_rss_bytes,
        sends: sent.ok,
        deliveries,
        missing,
        latency: Latency::of(&latency),
        all_streams_latency: Latency::of(&all_streams),
        cpu: sent.cpu,
    })
}
