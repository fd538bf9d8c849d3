//! The results of a run: one serializable document (the `--json` output),
//! the human tables, and the targets checked against figures from
//! the same run.

use std::io::{self, Write};

use serde::Serialize;

use crate::{
    cpu::CpuUse,
    load::LoadResult,
    suites::{
        Sizes, catch_up::CatchUpResult, delivery::DeliveryResult, fanout::FanoutResult, h2load::H2loadResult,
        rpc::RpcReport, scale::ScalePoint,
    },
    sys::Machine,
};

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) machine: Machine,
    /// Where the servers and the client ran.
    pub(crate) pinning: String,
    /// How events travel between the services: `grpc`, or `jetstream` when
    /// the run was started with `E2E_TRANSPORT=jetstream`.
    pub(crate) transport: &'static str,
    pub(crate) sizes: Sizes,
    pub(crate) load_average_start: [f64; 3],
    pub(crate) load_average_end: [f64; 3],
    /// Seconds since the Unix epoch when the run started.
    pub(crate) started_at: u64,
    pub(crate) duration_secs: f64,
    pub(crate) echo: Option<RpcReport>,
    pub(crate) send: Option<RpcReport>,
    pub(crate) get: Option<RpcReport>,
    pub(crate) e2e: Option<Vec<DeliveryResult>>,
    pub(crate) catch_up: Option<CatchUpResult>,
    pub(crate) scale: Option<Vec<ScalePoint>>,
    pub(crate) fanout: Option<FanoutResult>,
    /// Parts that could not be measured, and why.
    pub(crate) failures: Vec<String>,
    pub(crate) targets: Vec<TargetCheck>,
}

/// One of the targets against this run's figure.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TargetCheck {
    pub(crate) name: String,
    pub(crate) target: String,
    /// `None` when this run did not measure it.
    pub(crate) measured: Option<String>,
    pub(crate) met: Option<bool>,
}

fn check(name: String, target: &str, measured: Option<(String, bool)>) -> TargetCheck {
    TargetCheck {
        name,
        target: target.to_owned(),
        met: measured.as_ref().map(|(_, met)| *met),
        measured: measured.map(|(text, _)| text),
    }
}

impl Report {
    /// Fills in the targets from this run's figures.
    pub(crate) fn check_targets(&mut self) {
        let echo = self.echo.as_ref().and_then(RpcReport::closed).map(|r| r.throughput);
        let send = self.send.as_ref().and_then(RpcReport::closed);
        let get = self.get.as_ref().and_then(RpcReport::closed);
        // h2load's echo, when it ran: a baseline our own client does not cap.
        let h2_echo = self
            .echo
            .as_ref()
            .and_then(|e| e.h2load.as_ref())
            .map(|h| h.requests_per_sec)
            .filter(|r| *r > 0.0);
        let ratio = |run: Option<&LoadResult>, min: f64| {
            let (run, echo) = (run?, echo?);
            let ratio = run.throughput / echo;
            let against_h2load = h2_echo.map_or(String::new(), |h2| {
                format!("; {:.3} of h2load's echo ({h2:.0} req/s)", run.throughput / h2)
            });
            Some((
                format!("{ratio:.3} ({:.0} / {echo:.0} req/s){against_h2load}", run.throughput),
                ratio >= min,
            ))
        };
        let at_peak_share = self.send.as_ref().and_then(RpcReport::at_peak_share);
        let in_flight = self.sizes.in_flight();
        let mut targets = vec![
            check(
                format!("SendInvitation / echo throughput, {in_flight} in flight"),
                "≥ 0.25",
                ratio(send, 0.25),
            ),
            check(
                "SendInvitation p99, open loop at 80% of the closed-loop peak".to_owned(),
                "≤ 20 ms",
                at_peak_share.map(|r| {
                    (
                        format!(
                            "{:.1} ms at {:.0}/s",
                            r.latency.p99_ms,
                            r.offered_rate.unwrap_or_default()
                        ),
                        r.latency.p99_ms <= 20.0,
                    )
                }),
            ),
            check(
                format!("GetInvitation / echo throughput, {in_flight} in flight"),
                "≥ 0.6",
                ratio(get, 0.6),
            ),
        ];
        let at_2000 = self
            .e2e
            .iter()
            .flatten()
            .find(|r| (r.rate - 2000.0).abs() < 0.5 && r.delivered > 0);
        targets.push(check(
            "e2e send → delivered p50 at 2,000/s".to_owned(),
            "≤ 2 ms",
            at_2000.map(|r| (format!("{:.2} ms", r.latency.p50_ms), r.latency.p50_ms <= 2.0)),
        ));
        targets.push(check(
            "e2e send → delivered p99 at 2,000/s".to_owned(),
            "≤ 10 ms",
            at_2000.map(|r| (format!("{:.2} ms", r.latency.p99_ms), r.latency.p99_ms <= 10.0)),
        ));
        targets.push(check(
            format!(
                "catch-up, {} events",
                self.catch_up.as_ref().map_or(self.sizes.backlog, |c| c.events)
            ),
            "≥ 50,000 events/s",
            self.catch_up.as_ref().map(|c| {
                (
                    format!("{:.0} events/s", c.events_per_sec),
                    c.events_per_sec >= 50_000.0,
                )
            }),
        ));
        let scale = self.scale.as_deref().unwrap_or_default();
        let (small, large) = (scale.first(), scale.last());
        let list_ratio = |pass: fn(&ScalePoint) -> &LoadResult| {
            small
                .zip(large)
                .filter(|(s, l)| l.invitations > s.invitations)
                .map(|(s, l)| {
                    let (s, l) = (pass(s).latency.p99_ms, pass(l).latency.p99_ms);
                    let ratio = l / s.max(1e-9);
                    (format!("{ratio:.2}× ({l:.2} / {s:.2} ms)"), ratio <= 1.5)
                })
        };
        let sizes = format!(
            "{} vs at {} invitations",
            large.map_or(0, |p| p.invitations),
            small.map_or(0, |p| p.invitations)
        );
        targets.push(check(
            format!("ListSentInvitations p99 at {sizes}"),
            "≤ 1.5×",
            list_ratio(|p| &p.list_sent),
        ));
        targets.push(check(
            format!("  the same, first pass right after start, at {sizes}"),
            "(≤ 1.5×)",
            list_ratio(|p| &p.list_sent_first),
        ));
        targets.push(check(
            format!(
                "start to SERVING with {} invitations",
                large.map_or(0, |p| p.invitations)
            ),
            "≤ 2 s",
            large.map(|p| {
                (
                    format!("{:.2} s", p.start_to_serving_ms / 1e3),
                    p.start_to_serving_ms <= 2000.0,
                )
            }),
        ));
        targets.push(check(
            format!(
                "notification-service RSS with {} Subscribe streams",
                self.fanout.as_ref().map_or(self.sizes.fanout_streams, |f| f.streams)
            ),
            "≤ 300 MB",
            self.fanout.as_ref().map(|f| {
                let mb = mb(f.rss_after_bytes);
                (format!("{mb:.0} MB"), mb <= 300.0)
            }),
        ));
        self.targets = targets;
    }

    /// The human tables.
    ///
    /// # Errors
    ///
    /// When the output cannot be written.
    pub(crate) fn print(&self, out: &mut dyn Write) -> io::Result<()> {
        let m = &self.machine;
        writeln!(out)?;
        writeln!(
            out,
            "machine: {} × {}, {} GiB, Linux {}",
            m.cpus, m.cpu_model, m.memory_gib, m.kernel
        )?;
        let [a, b, c] = self.load_average_start;
        let [d, e, f] = self.load_average_end;
        writeln!(
            out,
            "load average: {a:.2} {b:.2} {c:.2} at the start, {d:.2} {e:.2} {f:.2} at the end ({:.0} s)",
            self.duration_secs
        )?;
        writeln!(out, "pinning: {}", self.pinning)?;
        writeln!(out, "event transport: {}", self.transport)?;

        let runs: Vec<&LoadResult> = [&self.echo, &self.send, &self.get]
            .into_iter()
            .flatten()
            .flat_map(|r| &r.runs)
            .collect();
        if !runs.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "{:<22} {:>9} {:>7} {:>6} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7}  cpu: cores used, µs per request",
                "load", "shape", "ok", "errors", "req/s", "p50 ms", "p90", "p99", "p99.9", "max"
            )?;
            for run in runs {
                load_row(out, run)?;
            }
        }
        if let Some(secs) = self.send.as_ref().and_then(|s| s.send_backlog_secs) {
            writeln!(
                out,
                "after the send closed loop, notification-service took {secs:.1} s to apply the events it was behind on"
            )?;
        }
        if let Some(bytes) = self.send.as_ref().and_then(|s| s.disk_bytes_per_invitation) {
            writeln!(
                out,
                "invitation-service data folder after the sends: {bytes:.0} bytes per invitation sent"
            )?;
        }
        let checks: Vec<(&str, &LoadResult, &H2loadResult)> = [("echo", &self.echo), ("get", &self.get)]
            .into_iter()
            .filter_map(|(name, r)| {
                let r = r.as_ref()?;
                Some((name, r.closed()?, r.h2load.as_ref()?))
            })
            .collect();
        if !checks.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "cross-check, same request bytes and connections × streams: {:>11} {:>12} {:>9} {:>9} {:>10}",
                "bench req/s", "h2load req/s", "bench ms", "h2load ms", "reply B/req"
            )?;
            for (name, bench, h2) in checks {
                writeln!(
                    out,
                    "  {name:<58} {:>11.0} {:>12.0} {:>9.2} {:>9.2} {:>10.1}  (mean latency; {} failed)",
                    bench.throughput,
                    h2.requests_per_sec,
                    bench.latency.mean_ms,
                    h2.mean_ms,
                    h2.data_bytes_per_request,
                    h2.failed
                )?;
                writeln!(out, "    h2load server cpu: {}", cpu_summary(&h2.cpu))?;
            }
        }
        for skipped in [&self.echo, &self.get]
            .into_iter()
            .flatten()
            .filter_map(|r| r.h2load_skipped.as_ref())
            .take(1)
        {
            writeln!(out, "cross-check skipped: {skipped}")?;
        }
        if let Some(e2e) = &self.e2e {
            writeln!(out)?;
            writeln!(
                out,
                "{:<22} {:>7} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7}  {:>14}  cpu",
                "e2e send → delivered", "sent", "delivered", "missing", "p50 ms", "p90", "p99", "max", "send p50/p99"
            )?;
            for r in e2e {
                writeln!(
                    out,
                    "{:<22} {:>7} {:>9} {:>7} {:>7.2} {:>7.2} {:>7.2} {:>7.2}  {:>6.2}/{:<7.2}  {}",
                    format!("open {:.0}/s", r.rate),
                    r.sent,
                    r.delivered,
                    r.missing,
                    r.latency.p50_ms,
                    r.latency.p90_ms,
                    r.latency.p99_ms,
                    r.latency.max_ms,
                    r.send_latency.p50_ms,
                    r.send_latency.p99_ms,
                    cpu_summary(&r.cpu)
                )?;
            }
        }
        if let Some(c) = &self.catch_up {
            writeln!(out)?;
            writeln!(
                out,
                "catch-up: {} events applied at {:.0} events/s ({:.2} s from the first to the last; {:.0} events/s counting from SERVING)",
                c.events, c.events_per_sec, c.apply_secs, c.events_per_sec_from_serving
            )?;
            writeln!(
                out,
                "  restart → SERVING {:.0} ms, SERVING → first event applied {:.0} ms; backlog sent at {:.0}/s; cpu {}",
                c.restart_to_serving_ms,
                c.serving_to_first_ms,
                c.backlog_send.throughput,
                cpu_summary(&c.cpu)
            )?;
        }
        if let Some(scale) = &self.scale {
            writeln!(out)?;
            writeln!(
                out,
                "{:>12} {:>7} {:>10} {:>13} {:>7} {:>9}  {:>17}  {:>17}  {:>17}",
                "invitations",
                "load s",
                "disk B/inv",
                "start→SERVING",
                "RSS MB",
                "RSS after",
                "list p50/p99 ms",
                "1st list p50/p99",
                "relation p50/p99"
            )?;
            for p in scale {
                writeln!(
                    out,
                    "{:>12} {:>7.1} {:>10.0} {:>10.0} ms {:>7.0} {:>9.0}  {:>8.2}/{:<8.2}  {:>8.2}/{:<8.2}  {:>8.2}/{:<8.2}",
                    p.invitations,
                    p.load_secs,
                    p.disk_bytes_per_invitation,
                    p.start_to_serving_ms,
                    mb(p.rss_serving_bytes),
                    mb(p.rss_after_bytes),
                    p.list_sent.latency.p50_ms,
                    p.list_sent.latency.p99_ms,
                    p.list_sent_first.latency.p50_ms,
                    p.list_sent_first.latency.p99_ms,
                    p.relationship.latency.p50_ms,
                    p.relationship.latency.p99_ms
                )?;
            }
        }
        if let Some(f) = &self.fanout {
            writeln!(out)?;
            writeln!(
                out,
                "fanout: {} streams ({} users × 10, {} connections) opened in {:.1} s; notification-service RSS {:.0} → {:.0} MB ({:.1} KB per stream); client RSS {:.0} MB",
                f.streams,
                f.users,
                f.connections,
                f.open_secs,
                mb(f.rss_before_bytes),
                mb(f.rss_after_bytes),
                f.rss_per_stream_bytes / 1024.0,
                mb(f.client_rss_bytes)
            )?;
            writeln!(
                out,
                "  user with 10 streams: {} sends, {} deliveries, {} missing; send → delivered p50 {:.2} ms, p99 {:.2} ms; to all 10 streams p50 {:.2} ms, p99 {:.2} ms",
                f.sends,
                f.deliveries,
                f.missing,
                f.latency.p50_ms,
                f.latency.p99_ms,
                f.all_streams_latency.p50_ms,
                f.all_streams_latency.p99_ms
            )?;
        }
        if !self.targets.is_empty() {
            writeln!(out)?;
            writeln!(out, "{:<62} {:>18} {:>30}  met", "target", "wanted", "measured")?;
            for t in &self.targets {
                let met = match t.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                };
                writeln!(
                    out,
                    "{:<62} {:>18} {:>30}  {met}",
                    t.name,
                    t.target,
                    t.measured.as_deref().unwrap_or("not measured")
                )?;
            }
        }
        for failure in &self.failures {
            writeln!(out, "FAILED: {failure}")?;
        }
        Ok(())
    }
}

fn load_row(out: &mut dyn Write, run: &LoadResult) -> io::Result<()> {
    let shape = match (run.in_flight, run.offered_rate) {
        (Some(n), _) => format!("{n} fl"),
        (None, Some(rate)) => format!("{rate:.0}/s"),
        (None, None) => String::new(),
    };
    let l = &run.latency;
    writeln!(
        out,
        "{:<22} {:>9} {:>7} {:>6} {:>9.0} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>7.2}  {}{}",
        run.label,
        shape,
        run.ok,
        run.errors,
        run.throughput,
        l.p50_ms,
        l.p90_ms,
        l.p99_ms,
        l.p999_ms,
        l.max_ms,
        cpu_summary(&run.cpu),
        run.first_error
            .as_ref()
            .map(|e| format!("  first error: {e}"))
            .unwrap_or_default()
    )
}

fn cpu_summary(uses: &[CpuUse]) -> String {
    uses.iter()
        .map(|u| {
            let name = u.process.split([' ', '-']).next().unwrap_or(&u.process);
            match u.us_per_request {
                Some(us) => format!("{name} {:.2} ({us:.0})", u.cores),
                None => format!("{name} {:.2}", u.cores),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}
