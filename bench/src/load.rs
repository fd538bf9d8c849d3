//! The load generator, the same for every target: a pool of HTTP/2
//! connections (one connection is a ceiling of its own), a closed loop that
//! keeps a fixed number of requests in flight, and an open loop that starts
//! requests at a fixed rate whatever the replies do. Latencies go into HDR
//! histograms (microseconds, 3 significant digits).

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde::Serialize;
use tonic::{
    Status,
    transport::{Channel, Endpoint},
};

use crate::{
    cpu::{CpuUse, Probe},
    progress::{Goal, Progress},
};

/// One request in flight: what a load's request function returns. Every
/// load boxes its requests alike, so the client's cost is the same for all.
pub(crate) type Call = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;

/// Connections to one server, used round-robin.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    channels: Vec<Channel>,
}

impl Pool {
    /// Opens `connections` connections to `endpoint` now, so that connecting
    /// is not part of any measurement.
    ///
    /// # Errors
    ///
    /// When a connection fails.
    pub(crate) async fn connect(endpoint: &str, connections: usize) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true);
        let mut channels = Vec::with_capacity(connections);
        for _ in 0..connections.max(1) {
            channels.push(
                endpoint
                    .connect()
                    .await
                    .map_err(|e| format!("connecting to {}: {e}", endpoint.uri()))?,
            );
        }
        Ok(Self { channels })
    }

    /// The connection for request or worker `i`.
    #[must_use]
    pub(crate) fn channel(&self, i: u64) -> Channel {
        let n = self.channels.len() as u64;
        self.channels[(i % n) as usize].clone()
    }

    #[must_use]
    pub(crate) fn len(&self) -> usize {
        self.channels.len()
    }
}

/// A new latency histogram: 1 µs to 10 minutes.
#[must_use]
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records `d` (in microseconds, at least 1).
pub(crate) fn record(histogram: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
    histogram.saturating_record(us);
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Latency {
    pub(crate) samples: u64,
    pub(crate) mean_ms: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
}

impl Latency {
    #[must_use]
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            samples: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// One measured load.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LoadResult {
    pub(crate) label: String,
    /// "closed" or "open".
    pub(crate) shape: &'static str,
    pub(crate) connections: usize,
    /// Closed loop: requests kept in flight.
    pub(crate) in_flight: Option<usize>,
    /// Open loop: requests started per second.
    pub(crate) offered_rate: Option<f64>,
    /// The measured window (warm-up excluded).
    pub(crate) secs: f64,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    /// Successful requests per second over the window.
    pub(crate) throughput: f64,
    pub(crate) latency: Latency,
    /// Open loop: how late requests started against their schedule (p99,
    /// ms); large when the client cannot keep up.
    pub(crate) start_lag_p99_ms: Option<f64>,
    /// Open loop: requests not started because too many were outstanding.
    pub(crate) skipped: Option<u64>,
    pub(crate) cpu: Vec<CpuUse>,
}

/// When a closed loop stops.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop {
    /// Run for `warmup` unmeasured, then measure for `measure`.
    After { warmup: Duration, measure: Duration },
    /// Run exactly this many requests, all measured.
    Count(u64),
}

#[derive(Debug, Default)]
struct Errors {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Errors {
    fn note(&self, status: &Status) {
        if self.count.fetch_add(1, Ordering::Relaxed) == 0 {
            *self.first.lock().expect("errors lock") = Some(format!("{:?}: {}", status.code(), status.message()));
        }
    }

    fn first(&self) -> Option<String> {
        self.first.lock().expect("errors lock").clone()
    }
}

/// Keeps `in_flight` requests going over `pool` until `stop`; request `i`
/// is `op(i, channel)`. `max_requests` bounds the loop whatever `stop` says.
pub(crate) async fn closed<F>(
    label: &str,
    pool: &Pool,
    in_flight: usize,
    stop: Stop,
    max_requests: u64,
    probe: &Probe,
    op: F,
) -> LoadResult
where
    F: Fn(u64, Channel) -> Call + Clone + Send + Sync + 'static,
{
    let started = Instant::now();
    let (measure_from, end, limit, goal) = match stop {
        Stop::After { warmup, measure } => (
            started + warmup,
            Some(started + warmup + measure),
            max_requests,
            Goal::Secs((warmup + measure).as_secs_f64()),
        ),
        Stop::Count(n) => (started, None, n.min(max_requests), Goal::Count(n.min(max_requests))),
    };
    let progress = Progress::start(label, goal);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Errors::default());
    // CPU is read when the measured window opens and closes.
    let cpu_probe = probe.clone();
    let cpu_start = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        cpu_probe.snapshot()
    });
    let cpu_probe = probe.clone();
    let cpu_end = end.map(|end| {
        tokio::spawn(async move {
            tokio::time::sleep_until(end.into()).await;
            cpu_probe.snapshot()
        })
    });

    let workers: Vec<_> = (0..in_flight.max(1))
        .map(|w| {
            let (op, next, errors, counter) = (op.clone(), Arc::clone(&next), Arc::clone(&errors), progress.counter());
            let channel = pool.channel(w as u64);
            tokio::spawn(async move {
                let mut latencies = histogram();
                let mut ok = 0u64;
                loop {
                    let start = Instant::now();
                    if end.is_some_and(|end| start >= end) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= limit {
                        break;
                    }
                    let result = op(i, channel.clone()).await;
                    let done = Instant::now();
                    counter.fetch_add(1, Ordering::Relaxed);
                    let in_window = done >= measure_from && end.is_none_or(|end| done <= end);
                    match result {
                        Ok(()) if in_window => {
                            ok += 1;
                            record(&mut latencies, done - start);
                        }
                        Ok(()) => {}
                        Err(status) => errors.note(&status),
                    }
                }
                (ok, latencies)
            })
        })
        .collect();
    let mut latencies = histogram();
    let mut ok = 0;
    for worker in workers {
        if let Ok((n, h)) = worker.await {
            ok += n;
            let _ = latencies.add(&h);
        }
    }
    let finished = Instant::now();
    drop(progress);
    let first = cpu_start.await.unwrap_or_else(|_| probe.snapshot());
    let last = match cpu_end {
        Some(task) => task.await.unwrap_or_else(|_| probe.snapshot()),
        None => probe.snapshot(),
    };
    let window = end.unwrap_or(finished).duration_since(measure_from).as_secs_f64();
    LoadResult {
        label: label.to_owned(),
        shape: "closed",
        connections: pool.len(),
        in_flight: Some(in_flight),
        offered_rate: None,
        secs: window,
        ok,
        errors: errors.count.load(Ordering::Relaxed),
        first_error: errors.first(),
        throughput: ok as f64 / window.max(1e-9),
        latency: Latency::of(&latencies),
        start_lag_p99_ms: None,
        skipped: None,
        cpu: last.since(&first, ok),
    }
}

/// Most requests an open loop lets be outstanding before it skips starts
/// (and says so), so an overloaded target cannot exhaust memory.
const MAX_OUTSTANDING: u64 = 50_000;
/// How long an open loop waits for stragglers after its last start.
const DRAIN: Duration = Duration::from_secs(30);

/// Starts `rate` requests per second over `pool` for `duration`, whatever
/// the replies do; request `i` is `op(i, channel)`. Latency is measured
/// from each request's actual start; how late starts were against the
/// schedule is reported beside it.
pub(crate) async fn open<F>(label: &str, pool: &Pool, rate: f64, duration: Duration, probe: &Probe, op: F) -> LoadResult
where
    F: Fn(u64, Channel) -> Call + Clone + Send + Sync + 'static,
{
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let progress = Progress::start(label, Goal::Count(total));
    let counter = progress.counter();
    let errors = Arc::new(Errors::default());
    let latencies = Arc::new(Mutex::new(histogram()));
    let lags = Arc::new(Mutex::new(histogram()));
    let outstanding = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let mut skipped = 0u64;
    let first = probe.snapshot();
    let t0 = Instant::now() + Duration::from_millis(5);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let at = t0 + Duration::from_secs_f64(i as f64 / rate);
        if at > Instant::now() {
            tokio::time::sleep_until(at.into()).await;
        }
        if outstanding.load(Ordering::Relaxed) >= MAX_OUTSTANDING {
            skipped += 1;
            continue;
        }
        outstanding.fetch_add(1, Ordering::Relaxed);
        let (op, channel) = (op.clone(), pool.channel(i));
        let (errors, latencies, lags, outstanding, ok, counter) = (
            Arc::clone(&errors),
            Arc::clone(&latencies),
            Arc::clone(&lags),
            Arc::clone(&outstanding),
            Arc::clone(&ok),
            Arc::clone(&counter),
        );
        tasks.spawn(async move {
            let start = Instant::now();
            let result = op(i, channel).await;
            let done = Instant::now();
            match result {
                Ok(()) => {
                    ok.fetch_add(1, Ordering::Relaxed);
                    record(&mut latencies.lock().expect("latency lock"), done - start);
                }
                Err(status) => errors.note(&status),
            }
            record(&mut lags.lock().expect("lag lock"), start.saturating_duration_since(at));
            outstanding.fetch_sub(1, Ordering::Relaxed);
            counter.fetch_add(1, Ordering::Relaxed);
            done
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let mut last_done = Instant::now();
    let drained = tokio::time::timeout(DRAIN, async {
        while let Some(done) = tasks.join_next().await {
            if let Ok(done) = done {
                last_done = last_done.max(done);
            }
        }
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
    drop(progress);
    let last = probe.snapshot();
    let ok = ok.load(Ordering::Relaxed);
    let window = last_done.duration_since(t0).as_secs_f64().max(duration.as_secs_f64());
    let latencies = latencies.lock().expect("latency lock");
    let lags = lags.lock().expect("lag lock");
    LoadResult {
        label: label.to_owned(),
        shape: "open",
        connections: pool.len(),
        in_flight: None,
        offered_rate: Some(rate),
        secs: window,
        ok,
        errors: errors.count.load(Ordering::Relaxed),
        first_error: errors.first(),
        throughput: ok as f64 / window,
        latency: Latency::of(&latencies),
        start_lag_p99_ms: Some(Latency::of(&lags).p99_ms),
        skipped: Some(skipped),
        cpu: last.since(&first, ok),
    }
}
