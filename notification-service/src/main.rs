//! The `notification-service` binary: serves by default; `healthcheck` asks
//! a running server for its gRPC health.

#![forbid(unsafe_code)]

use std::{process::ExitCode, sync::Arc};

use clap::Parser as _;
use notification_service::{
    App,
    config::{Cli, Command, ServeArgs},
    domain::SystemClock,
    storage::Store,
};

/// mimalloc rather than the system allocator: sled copies and frees B-tree
/// nodes on every write, and glibc's malloc took a quarter of the CPU of a
/// write (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        // The health check needs no secret: it only asks the server.
        Some(Command::Healthcheck { timeout, listen }) => {
            service_kit::healthcheck::run("notification-service", listen.listen_addr, timeout)
        }
        // Needs no secret: it only reads the folder.
        Some(Command::Verify { data }) => service_kit::storage::verify(
            "notification-service",
            &data.data_dir,
            Store::open,
            Store::database,
            Store::durable_figures,
        ),
        Some(Command::Backup { to, listen, secret }) => match secret.resolve() {
            Ok(secret) => service_kit::admin::run_backup("notification-service", listen.listen_addr, &secret, &to),
            Err(message) => fail(&message),
        },
        Some(Command::Serve(args)) => serve(*args),
        None => serve(cli.serve),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match args.into_config() {
        Ok(config) => config,
        Err(message) => return fail(&message),
    };
    service_kit::server::run_main("notification-service", || async move {
        tracing::info!(version = env!("CARGO_PKG_VERSION"), ?config, "starting");
        let app = App::build(config, Arc::new(SystemClock))
            .await
            .map_err(|e| e.to_string())?;
        app.run(service_kit::server::shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    })
}

fn fail(message: &str) -> ExitCode {
    service_kit::server::fail("notification-service", message)
}
