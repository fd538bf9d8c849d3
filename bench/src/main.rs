//! `bench`: measures invitation-service and notification-service against
//! the limits of this machine, in one run, with one client: the transport
//! baseline (a bare tonic echo server), durable SendInvitation,
//! GetInvitation, send → delivered on a live stream, catch-up after
//! notification-service was down, behaviour as the data grows, and fan-out
//! to many Subscribe streams. See BENCHMARKS.md.
//!
//! The servers run as their own processes (the release binaries beside this
//! one), pinned to other cores than this client when taskset is installed.

#![forbid(unsafe_code)]

mod cpu;
mod echo;
mod load;
mod procs;
mod progress;
mod report;
mod suites;
mod sys;
mod users;

use std::{
    io::Write as _,
    net::SocketAddr,
    path::PathBuf,
    process::{Command as Process, ExitCode},
    time::Instant,
};

use clap::{Args, Parser, Subcommand};

use crate::{
    procs::Servers,
    report::Report,
    suites::{Ctx, Sizes, catch_up, delivery, fanout, rpc, scale},
    users::Tokens,
};

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Benchmarks of invitation-service and notification-service against this machine's limits"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    options: Options,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
enum Command {
    /// Every benchmark in one run, with the targets checked.
    All,
    /// Every benchmark at tiny sizes, in seconds (keeps the tool working in CI).
    Smoke,
    /// The transport baseline: a bare tonic echo server (and h2load).
    Echo,
    /// Durable SendInvitation, closed loop and open loop.
    Send,
    /// GetInvitation on existing ids, closed loop and open loop (and h2load).
    Get,
    /// Send → delivered on the recipient's live stream, at fixed rates.
    E2e,
    /// Events per second applied after notification-service was down.
    CatchUp,
    /// Preloaded 10^3..10^6 invitations: list and relationship latency,
    /// start-up time, memory, disk.
    Scale,
    /// 10,000 Subscribe streams: memory and delivery latency.
    Fanout,
    /// The echo server process the benchmarks start.
    #[command(hide = true)]
    EchoServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// The preloader process of the scale runs: writes invitations into a
    /// new invitation-service data folder, printing `loaded N` as it goes.
    #[command(hide = true)]
    Preload {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        invitations: u64,
    },
}

#[derive(Debug, Args)]
struct Options {
    /// Print the results as JSON on stdout; the tables then go to stderr.
    #[arg(long, global = true)]
    json: bool,
    /// Tiny sizes (what `smoke` runs).
    #[arg(long, global = true)]
    quick: bool,
    /// Leave the servers and the client unpinned.
    #[arg(long, global = true)]
    no_pin: bool,
    /// Do not build the service binaries first.
    #[arg(long, global = true)]
    no_build: bool,
    /// RUST_LOG of the services (the harness needs the `listening` line).
    #[arg(long, global = true, default_value = "warn,service_kit::server=info")]
    service_log: String,
    /// Connections to each server.
    #[arg(long, global = true)]
    connections: Option<usize>,
    /// Requests in flight per connection in the closed loops.
    #[arg(long, global = true)]
    streams_per_connection: Option<usize>,
    /// Measured seconds of each closed loop.
    #[arg(long, global = true)]
    secs: Option<f64>,
    /// Open-loop rates of SendInvitation, per second.
    #[arg(long, global = true, value_delimiter = ',')]
    send_rates: Option<Vec<f64>>,
    /// Open-loop rates of GetInvitation, per second.
    #[arg(long, global = true, value_delimiter = ',')]
    get_rates: Option<Vec<f64>>,
    /// Open-loop rates of the end-to-end run, per second.
    #[arg(long, global = true, value_delimiter = ',')]
    e2e_rates: Option<Vec<f64>>,
    /// Invitations sent while notification-service is down.
    #[arg(long, global = true)]
    backlog: Option<u64>,
    /// Invitations preloaded for each scale measurement.
    #[arg(long, global = true, value_delimiter = ',')]
    scale_sizes: Option<Vec<u64>>,
    /// Subscribe streams held open in the fan-out run.
    #[arg(long, global = true)]
    streams: Option<u64>,
}

impl Options {
    fn sizes(&self, quick: bool) -> Sizes {
        let mut sizes = if quick { quick_sizes() } else { standard_sizes() };
        let Self {
            json: _,
            quick: _,
            no_pin: _,
            no_build: _,
            service_log: _,
            connections,
            streams_per_connection,
            secs,
            send_rates,
            get_rates,
            e2e_rates,
            backlog,
            scale_sizes,
            streams,
        } = self;
        sizes.connections = connections.unwrap_or(sizes.connections).max(1);
        sizes.streams_per_connection = streams_per_connection.unwrap_or(sizes.streams_per_connection).max(1);
        sizes.closed_secs = secs.unwrap_or(sizes.closed_secs);
        sizes.send_rates = send_rates.clone().unwrap_or(sizes.send_rates);
        sizes.get_rates = get_rates.clone().unwrap_or(sizes.get_rates);
        sizes.e2e_rates = e2e_rates.clone().unwrap_or(sizes.e2e_rates);
        sizes.backlog = backlog.unwrap_or(sizes.backlog);
        sizes.scale_sizes = scale_sizes.clone().unwrap_or(sizes.scale_sizes);
        sizes.fanout_streams = streams.unwrap_or(sizes.fanout_streams);
        sizes
    }
}

/// The sizes: about six minutes for `all` on the 2-core machine.
fn standard_sizes() -> Sizes {
    Sizes {
        connections: 50,
        streams_per_connection: 20,
        warmup_secs: 2.0,
        closed_secs: 10.0,
        open_secs: 5.0,
        send_rates: vec![500.0, 1000.0, 2000.0],
        get_rates: vec![2000.0, 5000.0, 10_000.0],
        get_pool: 10_000,
        e2e_rates: vec![500.0, 1000.0, 2000.0],
        e2e_secs: 8.0,
        e2e_recipients: 500,
        backlog: 50_000,
        scale_sizes: vec![1_000, 100_000, 1_000_000],
        scale_rate: 1000.0,
        scale_secs: 5.0,
        fanout_streams: 10_000,
        fanout_sends: 200,
        h2load_secs: 10.0,
    }
}

/// Every part in seconds.
fn quick_sizes() -> Sizes {
    Sizes {
        connections: 4,
        streams_per_connection: 5,
        warmup_secs: 0.2,
        closed_secs: 1.0,
        open_secs: 1.0,
        send_rates: vec![200.0],
        get_rates: vec![500.0],
        get_pool: 200,
        e2e_rates: vec![200.0],
        e2e_secs: 1.0,
        e2e_recipients: 50,
        backlog: 300,
        scale_sizes: vec![1_000, 3_000],
        scale_rate: 200.0,
        scale_secs: 1.0,
        fanout_streams: 200,
        fanout_sends: 20,
        h2load_secs: 1.0,
    }
}

fn main() -> ExitCode {
    let Cli { command, options } = Cli::parse();
    match command {
        Command::EchoServer { listen } => return serve_echo(listen),
        Command::Preload { dir, invitations } => return preload(&dir, invitations),
        Command::All
        | Command::Smoke
        | Command::Echo
        | Command::Send
        | Command::Get
        | Command::E2e
        | Command::CatchUp
        | Command::Scale
        | Command::Fanout => {}
    }
    if !options.no_build
        && let Err(e) = build_services()
    {
        eprintln!("bench: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = check_binaries() {
        eprintln!("bench: {e}");
        return ExitCode::FAILURE;
    }
    let machine = sys::Machine::describe();
    let (server_cpus, client_cpus) = if options.no_pin {
        (None, None)
    } else {
        cores(machine.cpus)
    };
    let pinning = match (&server_cpus, &client_cpus) {
        (Some(server), Some(client)) => match sys::pin(None, client) {
            Ok(()) => format!("servers on CPU {server}, client (bench, h2load) on CPU {client} (taskset)"),
            Err(e) => {
                eprintln!("warning: {e}; running unpinned");
                "none (taskset failed)".to_owned()
            }
        },
        _ if options.no_pin => "none (--no-pin)".to_owned(),
        _ => "none (taskset missing or a single CPU)".to_owned(),
    };
    let pinned = pinning.starts_with("servers");
    let (server_cpus, client_cpus) = if pinned {
        (server_cpus, client_cpus)
    } else {
        (None, None)
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let quick = options.quick || matches!(command, Command::Smoke);
    let ctx = Ctx {
        servers: Servers {
            cpus: server_cpus,
            log: options.service_log.clone(),
        },
        tokens: Tokens::new(),
        sizes: options.sizes(quick),
        client_cpus,
    };
    let report = runtime.block_on(run(command, ctx, machine, pinning));
    let tables = if options.json {
        report.print(&mut std::io::stderr().lock())
    } else {
        report.print(&mut std::io::stdout().lock())
    };
    if let Err(e) = tables {
        eprintln!("bench: cannot print the results: {e}");
    }
    if options.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{json}");
            }
            Err(e) => eprintln!("bench: cannot encode the results: {e}"),
        }
    }
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the parts `command` names, each on its own servers; a part that
/// fails is reported and the others still run.
async fn run(command: Command, ctx: Ctx, machine: sys::Machine, pinning: String) -> Report {
    let started = Instant::now();
    let mut report = Report {
        machine,
        pinning,
        transport: if e2e::nats::jetstream_requested() {
            "jetstream"
        } else {
            "grpc"
        },
        sizes: ctx.sizes.clone(),
        load_average_start: sys::load_average(),
        load_average_end: [0.0; 3],
        started_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        duration_secs: 0.0,
        echo: None,
        send: None,
        get: None,
        e2e: None,
        catch_up: None,
        scale: None,
        fanout: None,
        failures: Vec::new(),
        targets: Vec::new(),
    };
    let every = matches!(command, Command::All | Command::Smoke);
    let wants = |part: Command| every || command == part;
    if wants(Command::Echo) {
        report.echo = note(&mut report.failures, "echo", rpc::echo(&ctx).await);
    }
    if wants(Command::Send) {
        report.send = note(&mut report.failures, "send", rpc::send(&ctx).await);
    }
    if wants(Command::Get) {
        report.get = note(&mut report.failures, "get", rpc::get(&ctx).await);
    }
    if wants(Command::E2e) {
        report.e2e = note(&mut report.failures, "e2e", delivery::run(&ctx).await);
    }
    if wants(Command::CatchUp) {
        report.catch_up = note(&mut report.failures, "catch-up", catch_up::run(&ctx).await);
    }
    if wants(Command::Scale) {
        report.scale = note(&mut report.failures, "scale", scale::run(&ctx).await);
    }
    if wants(Command::Fanout) {
        report.fanout = note(&mut report.failures, "fanout", fanout::run(&ctx).await);
    }
    report.load_average_end = sys::load_average();
    report.duration_secs = started.elapsed().as_secs_f64();
    report.check_targets();
    report
}

fn note<T>(failures: &mut Vec<String>, part: &str, result: Result<T, String>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            eprintln!("bench: {part} failed: {e}");
            failures.push(format!("{part}: {e}"));
            None
        }
    }
}

/// taskset CPU lists for the servers and the client: the lower half of the
/// CPUs and the upper half; none on a single CPU or without taskset.
fn cores(cpus: usize) -> (Option<String>, Option<String>) {
    if cpus < 2 || !sys::has_program("taskset", "--version") {
        return (None, None);
    }
    let half = cpus / 2;
    let list = |from: usize, to: usize| {
        if from == to {
            from.to_string()
        } else {
            format!("{from}-{to}")
        }
    };
    (Some(list(0, half - 1)), Some(list(half, cpus - 1)))
}

fn preload(dir: &std::path::Path, invitations: u64) -> ExitCode {
    let population = suites::loader::Population::of(invitations);
    let result = suites::loader::preload(dir, population, &|done| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "loaded {done}");
        let _ = out.flush();
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("preload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve_echo(listen: SocketAddr) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("echo-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(echo::serve(listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The folder this executable is in: target/<profile>.
fn own_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    exe.parent()
        .map(std::path::Path::to_path_buf)
        .ok_or_else(|| "own executable has no folder".to_owned())
}

/// When run through cargo (`cargo run -p bench`), builds the two service
/// binaries with the same profile, so the figures are never those of stale
/// binaries: `-p bench` alone does not build them.
fn build_services() -> Result<(), String> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(());
    };
    let release = own_dir()?.file_name().is_some_and(|name| name == "release");
    let mut build = Process::new(cargo);
    build.args(["build", "-p", "invitation-service", "-p", "notification-service"]);
    // `cargo run` describes the bench package in the environment; build
    // scripts that watch those variables (ring's does) would otherwise be
    // rerun here and again by the next plain build.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo_run = ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_CRATE_", "CARGO_BIN_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_RUSTC_CURRENT_DIR", "OUT_DIR"].contains(&name.as_ref());
        if set_by_cargo_run {
            build.env_remove(name.as_ref());
        }
    }
    if release {
        build.arg("--release");
    }
    eprintln!("== building the services");
    let status = build.status().map_err(|e| format!("cargo build: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo build of the services failed: {status}"))
    }
}

fn check_binaries() -> Result<(), String> {
    if std::env::var_os("E2E_BIN_DIR").is_some() {
        return Ok(());
    }
    let dir = own_dir()?;
    for binary in ["invitation-service", "notification-service"] {
        if !dir.join(binary).exists() {
            return Err(format!(
                "{} not found: build it with `cargo build --release -p invitation-service -p notification-service`",
                dir.join(binary).display()
            ));
        }
    }
    Ok(())
}
