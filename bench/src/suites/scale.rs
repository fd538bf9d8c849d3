//! Behaviour as the data grows: for each size, preload that many invitations
//! (see [`super::loader`]), start invitation-service on them, and measure the
//! time from spawning it to SERVING, its memory, the disk used per
//! invitation, and ListSentInvitations and GetRelationship latency (open loop
//! at a fixed rate, over a sample of the users). The preload runs in a
//! process of its own (`bench preload`), so its memory is nobody's figure.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use e2e::Kind;
use proto::invitations::v1::{self as ipb, invitation_service_client::InvitationServiceClient};
use serde::Serialize;

use super::{
    Ctx,
    loader::{PER_SENDER, Population},
};
use crate::{
    cpu::Probe,
    load::{self, Call, LoadResult, Pool},
    progress::{Goal, Progress, step},
    sys,
    users::{Bearer, authorized, mix},
};

/// Users whose tokens are minted for the reads (picked across all senders).
const SAMPLED_USERS: u64 = 1000;
/// Nothing listens there: the scale runs need no notification-service, and
/// with the outbox acknowledged the publisher has nothing to send.
const NOWHERE: &str = "http://127.0.0.1:9";

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScalePoint {
    pub(crate) invitations: u64,
    pub(crate) senders: u64,
    pub(crate) load_secs: f64,
    pub(crate) disk_bytes: u64,
    pub(crate) disk_bytes_per_invitation: f64,
    /// Spawning the process → health reports SERVING (±20 ms: the harness
    /// polls its log for the address every 20 ms).
    pub(crate) start_to_serving_ms: f64,
    pub(crate) rss_serving_bytes: u64,
    pub(crate) rss_after_bytes: u64,
    /// The first pass, right after start: the service's caches are cold.
    pub(crate) list_sent_first: LoadResult,
    /// The second pass, after GetRelationship and the first pass (steady
    /// state for the sampled users).
    pub(crate) list_sent: LoadResult,
    pub(crate) relationship: LoadResult,
}

/// # Errors
///
/// When preloading fails or the service does not start on the data.
pub(crate) async fn run(ctx: &Ctx) -> Result<Vec<ScalePoint>, String> {
    let mut points = Vec::new();
    for &n in &ctx.sizes.scale_sizes {
        points.push(point(ctx, n).await?);
    }
    Ok(points)
}

async fn point(ctx: &Ctx, n: u64) -> Result<ScalePoint, String> {
    step(&format!("scale: {n} invitations"));
    let population = Population::of(n);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = dir.path().join("invitation");

    let started = Instant::now();
    preload(&data, n).await?;
    let load_secs = started.elapsed().as_secs_f64();
    let disk_bytes = sys::disk_bytes(&data);

    let (service, startup) = ctx
        .servers
        .service(
            Kind::Invitation,
            &data,
            &[("NOTIFICATION_ENDPOINT", NOWHERE.to_owned())],
        )
        .await?;
    let rss_serving_bytes = sys::rss_bytes(service.pid()).unwrap_or(0);
    let sizes = &ctx.sizes;
    let pool = Pool::connect(&service.endpoint(), sizes.connections).await?;
    let probe = Probe::new(&[("invitation-service", service.pid())]);

    let sampled: Arc<Vec<(u64, Bearer)>> = Arc::new(
        (0..SAMPLED_USERS.min(population.senders))
            .map(|t| {
                let j = mix(t) % population.senders;
                (j, ctx.tokens.bearer(&Population::sender(j)))
            })
            .collect(),
    );
    check_visible(&pool, &sampled[0].1, n).await?;

    let duration = Duration::from_secs_f64(sizes.scale_secs);
    let list = {
        let sampled = Arc::clone(&sampled);
        move |i: u64, channel| -> Call {
            let (_, bearer) = &sampled[pick(i, sampled.len())];
            let message = authorized(ipb::ListSentInvitationsRequest::default(), bearer);
            Box::pin(async move {
                InvitationServiceClient::new(channel)
                    .list_sent_invitations(message)
                    .await
                    .map(drop)
            })
        }
    };
    let relationship = {
        let sampled = Arc::clone(&sampled);
        move |i: u64, channel| -> Call {
            let (j, bearer) = &sampled[pick(i, sampled.len())];
            let other = population.recipient(*j, mix(i.rotate_left(17)) % PER_SENDER);
            let message = authorized(ipb::GetRelationshipRequest { other_user_id: other }, bearer);
            Box::pin(async move {
                InvitationServiceClient::new(channel)
                    .get_relationship(message)
                    .await
                    .map(drop)
            })
        }
    };
    let rate = sizes.scale_rate;
    // First right after start (the service's caches are cold), then again
    // once every sampled user's data has been read (steady state).
    let label = format!("ListSentInvitations at {n}, first");
    let list_sent_first = load::open(&label, &pool, rate, duration, &probe, list.clone()).await;
    let label = format!("GetRelationship at {n}");
    let relationship = load::open(&label, &pool, rate, duration, &probe, relationship).await;
    let label = format!("ListSentInvitations at {n}");
    let list_sent = load::open(&label, &pool, rate, duration, &probe, list).await;
    let rss_after_bytes = sys::rss_bytes(service.pid()).unwrap_or(0);
    drop(service);

    let per_invitation = disk_bytes as f64 / n.max(1) as f64;
    Ok(ScalePoint {
        invitations: n,
        senders: population.senders,
        load_secs,
        disk_bytes,
        disk_bytes_per_invitation: per_invitation,
        start_to_serving_ms: startup.as_secs_f64() * 1e3,
        rss_serving_bytes,
        rss_after_bytes,
        list_sent_first,
        list_sent,
        relationship,
    })
}

/// Preloads `n` invitations into `data` in a child process (this binary's
/// `preload` subcommand), showing its progress.
async fn preload(data: &Path, n: u64) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let mut child = Command::new(exe)
        .arg("preload")
        .arg("--dir")
        .arg(data)
        .args(["--invitations", &n.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the preloader: {e}"))?;
    let stdout = child.stdout.take().ok_or("preloader stdout")?;
    let progress = Progress::start(&format!("scale: preloading {n}"), Goal::Count(n));
    let counter = progress.counter();
    let output = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(done) = line.strip_prefix("loaded ").and_then(|d| d.trim().parse().ok()) {
                counter.store(done, Ordering::Relaxed);
            }
        }
        child.wait_with_output()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("preloader: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "preloading {n} invitations failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn pick(i: u64, len: usize) -> usize {
    (mix(i) % len as u64) as usize
}

/// The preloaded invitations are there: a sampled sender's first page is
/// full.
async fn check_visible(pool: &Pool, bearer: &Bearer, n: u64) -> Result<(), String> {
    let page = InvitationServiceClient::new(pool.channel(0))
        .list_sent_invitations(authorized(ipb::ListSentInvitationsRequest::default(), bearer))
        .await
        .map_err(|e| format!("ListSentInvitations on the preloaded data: {e}"))?
        .into_inner();
    let expected = PER_SENDER.min(50).min(n);
    if (page.invitations.len() as u64) < expected {
        return Err(format!(
            "the preloaded data is not visible: a sender's first page has {} invitations, not {expected}",
            page.invitations.len()
        ));
    }
    Ok(())
}
