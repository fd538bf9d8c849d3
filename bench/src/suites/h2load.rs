//! The cross-check with a load generator nobody here wrote: nghttp2's
//! `h2load` (Debian package `nghttp2-client`) sends the same gRPC request
//! bytes (5-byte prefix + protobuf) with the same headers over the same
//! number of connections and streams. It knows nothing of gRPC status
//! trailers, so a short run first checks the bytes of reply data per
//! request: a reply message has more than the 5-byte prefix, an error none.

use std::{
    net::SocketAddr,
    process::{Command, Stdio},
    time::Duration,
};

use serde::Serialize;

use crate::{
    cpu::{CpuUse, Probe},
    sys,
    users::Bearer,
};

/// One h2load run and what it printed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct H2loadResult {
    pub(crate) label: String,
    pub(crate) connections: usize,
    pub(crate) streams_per_connection: usize,
    pub(crate) secs: f64,
    pub(crate) requests_per_sec: f64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) mean_ms: f64,
    pub(crate) sd_ms: f64,
    pub(crate) max_ms: f64,
    /// Bytes of reply DATA per request, from a short count-based run: above
    /// 5 means a reply message, not an error.
    pub(crate) data_bytes_per_request: f64,
    /// Server CPU over the run (h2load's own is not measured).
    pub(crate) cpu: Vec<CpuUse>,
    pub(crate) command: String,
}

/// Whether h2load is installed.
#[must_use]
pub(crate) fn available() -> bool {
    sys::has_program("h2load", "--version")
}

/// A gRPC message as it travels in a DATA frame: uncompressed flag, length
/// (big-endian u32), protobuf.
#[must_use]
pub(crate) fn grpc_frame(message: &impl prost::Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut frame = Vec::with_capacity(body.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(body.len()).expect("a small message").to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// What to send and how.
#[derive(Debug)]
pub(crate) struct Run<'a> {
    pub(crate) label: &'a str,
    pub(crate) addr: SocketAddr,
    /// `/package.Service/Method`.
    pub(crate) path: &'a str,
    pub(crate) frame: &'a [u8],
    pub(crate) bearer: &'a Bearer,
    pub(crate) connections: usize,
    pub(crate) streams_per_connection: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    /// taskset CPU list for h2load (the client cores).
    pub(crate) cpus: Option<&'a str>,
}

/// Runs h2load (one thread) and parses its summary.
///
/// # Errors
///
/// When h2load fails or prints something unexpected.
pub(crate) async fn run(spec: Run<'_>, probe: &Probe) -> Result<H2loadResult, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let body = dir.path().join("request.bin");
    std::fs::write(&body, spec.frame).map_err(|e| e.to_string())?;
    let bearer = spec.bearer.to_str().map_err(|e| e.to_string())?;
    let mut args: Vec<String> = Vec::new();
    if let Some(cpus) = spec.cpus {
        args.extend(["taskset", "-c", cpus].map(str::to_owned));
    }
    args.extend(
        [
            "h2load",
            "-c",
            &spec.connections.to_string(),
            "-m",
            &spec.streams_per_connection.to_string(),
            "-t",
            "1",
            "--warm-up-time",
            &format!("{}", spec.warmup.as_secs().max(1)),
            "-D",
            &format!("{}", spec.duration.as_secs().max(1)),
            "-d",
            &body.display().to_string(),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
        ]
        .map(str::to_owned),
    );
    args.push("-H".to_owned());
    args.push(format!("authorization: {bearer}"));
    args.push(format!("http://{}{}", spec.addr, spec.path));
    let shown = args
        .iter()
        .map(|a| {
            if a.starts_with("authorization") {
                "authorization: Bearer …".to_owned()
            } else {
                a.clone()
            }
        })
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ");

    // A short count-based run first: its reply bytes per request are exact
    // (the timed run's traffic includes the warm-up's).
    let check: Vec<String> = ["h2load", "-n", "200", "-c", "1", "-m", "1"]
        .into_iter()
        .map(str::to_owned)
        .chain(args.iter().skip_while(|a| *a != "-d").cloned())
        .collect();
    let checked = h2load(check).await?;
    if checked.succeeded == 0 || checked.data_bytes_per_request <= 5.0 {
        return Err(format!(
            "h2load's requests get no reply message ({} succeeded, {:.1} bytes of data each): the request bytes or headers are wrong",
            checked.succeeded, checked.data_bytes_per_request
        ));
    }

    let first = probe.snapshot();
    let parsed = h2load(args).await?;
    // h2load is the client here, not this process.
    let mut cpu = probe.snapshot().since(&first, parsed.succeeded);
    cpu.retain(|use_| !use_.process.starts_with("bench"));
    Ok(H2loadResult {
        label: spec.label.to_owned(),
        connections: spec.connections,
        streams_per_connection: spec.streams_per_connection,
        secs: spec.duration.as_secs_f64(),
        data_bytes_per_request: checked.data_bytes_per_request,
        cpu,
        command: shown,
        ..parsed
    })
}

/// Runs an h2load command line and parses its summary.
async fn h2load(args: Vec<String>) -> Result<H2loadResult, String> {
    let output =
        tokio::task::spawn_blocking(move || Command::new(&args[0]).args(&args[1..]).stdin(Stdio::null()).output())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("h2load: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "h2load exited with {}: {text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse(&text).ok_or_else(|| format!("cannot read h2load's output:\n{text}"))
}

/// The figures from h2load's summary.
fn parse(text: &str) -> Option<H2loadResult> {
    let line = |prefix: &str| text.lines().map(str::trim).find(|l| l.starts_with(prefix));
    // "finished in 10.00s, 35318.50 req/s, 2.10MB/s"
    let requests_per_sec = line("finished in")?
        .split(',')
        .nth(1)?
        .trim()
        .strip_suffix("req/s")?
        .trim()
        .parse()
        .ok()?;
    // "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
    let requests = line("requests:")?;
    let count = |what: &str| -> Option<u64> {
        requests
            .trim_start_matches("requests:")
            .split(',')
            .map(str::trim)
            .find_map(|part| part.strip_suffix(what))
            .and_then(|n| n.trim().parse().ok())
    };
    let (done, succeeded, failed) = (count(" done")?, count(" succeeded")?, count(" failed")?);
    // "traffic: 21.05MB (22069855) total, 5.08MB (5323765) headers (...), 10.44MB (10948735) data"
    let data_bytes: f64 = line("traffic:")?
        .split(',')
        .find(|part| part.trim_end().ends_with("data"))
        .and_then(|part| part.split('(').nth(1))
        .and_then(|n| n.split(')').next())
        .and_then(|n| n.parse().ok())?;
    // "time for request:   179us   38.05ms   27.78ms   3.66ms   89.32%" (min max mean sd)
    let times: Vec<f64> = line("time for request:")?
        .trim_start_matches("time for request:")
        .split_whitespace()
        .filter_map(millis)
        .collect();
    let (max_ms, mean_ms, sd_ms) = (*times.get(1)?, *times.get(2)?, *times.get(3)?);
    let data_bytes_per_request = data_bytes / done.max(1) as f64;
    Some(H2loadResult {
        label: String::new(),
        connections: 0,
        streams_per_connection: 0,
        secs: 0.0,
        requests_per_sec,
        succeeded,
        failed,
        mean_ms,
        sd_ms,
        max_ms,
        data_bytes_per_request,
        cpu: Vec::new(),
        command: String::new(),
    })
}

/// "179us", "38.05ms", "1.2s" in milliseconds.
fn millis(value: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1e3)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "starting benchmark...
spawning thread #0: 50 total client(s). Timing-based test with 1s warm-up time and 10s main duration for measurements.
Warm-up started for thread #0.
progress: 10% of clients started
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.

finished in 10.00s, 35318.50 req/s, 2.10MB/s
requests: 353185 total, 353185 started, 353185 done, 353185 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 353185 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 21.05MB (22069855) total, 5.08MB (5323765) headers (space savings 96.15%), 10.44MB (10948735) data
                     min         max         mean         sd        +/- sd
time for request:      179us     38.05ms     27.78ms      3.66ms    89.32%
time for connect:      225us      4.32ms      2.26ms      1.21ms    58.00%
time to 1st byte:     1.02ms      6.30ms      3.70ms      1.44ms    58.00%
req/s           :     706.11      727.48      716.34        5.15    62.00%
";

    #[test]
    fn reads_the_summary() {
        let r = parse(OUTPUT).unwrap();
        assert!((r.requests_per_sec - 35318.5).abs() < 1e-6);
        assert_eq!((r.succeeded, r.failed), (353_185, 0));
        assert!((r.mean_ms - 27.78).abs() < 1e-9);
        assert!((r.max_ms - 38.05).abs() < 1e-9);
        assert!((r.sd_ms - 3.66).abs() < 1e-9);
        assert!((r.data_bytes_per_request - 31.0).abs() < 0.01);
    }

    #[test]
    fn frames_like_grpc() {
        let frame = grpc_frame(&proto::invitations::v1::GetInvitationRequest {
            invitation_id: "abc".into(),
        });
        assert_eq!(frame, [0, 0, 0, 0, 5, 10, 3, b'a', b'b', b'c']);
    }
}
