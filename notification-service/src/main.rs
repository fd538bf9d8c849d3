//! The `notification-service` binary: serves by default; `healthcheck` asks
//! a running server for its gRPC health.

#![forbid(unsafe_code)]

use std::{process::ExitCode, sync::Arc};

use clap::Parser as _;
use notification_service::{
    App,
    config::{Cli, Command},
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
    // The health check needs no secret: it only asks the server.
    match cli.command {
        Some(Command::Healthcheck { timeout }) => {
            return service_kit::healthcheck::run("notification-service", cli.serve.listen_addr, timeout);
        }
        // Needs no secret: it only reads the folder.
        Some(Command::Verify) => {
            return service_kit::storage::verify(
                "notification-service",
                &cli.serve.data_dir,
                Store::open,
                Store::database,
                Store::durable_figures,
            );
        }
        Some(Command::Backup { to }) => {
            let secret = match service_kit::config::resolve_jwt_secret(
                cli.jwt_secret.as_deref(),
                cli.jwt_secret_file.as_deref(),
            ) {
                Ok(secret) => secret,
                Err(message) => return fail(&message),
            };
            return service_kit::admin::run_backup("notification-service", cli.serve.listen_addr, &secret, &to);
        }
        Some(Command::Serve) | None => {}
    }
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(message) => return fail(&message),
    };
    service_kit::server::run_main("notification-service", || async move {
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
