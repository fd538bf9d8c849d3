//! The `notification-service` binary: serves by default; `healthcheck` asks
//! a running server for its gRPC health.

#![forbid(unsafe_code)]

use std::{process::ExitCode, sync::Arc};

use clap::Parser as _;
use notification_service::{
    App,
    config::{Cli, Command},
    domain::SystemClock,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The health check needs no secret: it only asks the server.
    if let Some(Command::Healthcheck { timeout }) = cli.command {
        return service_kit::healthcheck::run("notification-service", cli.serve.listen_addr, timeout);
    }
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(message) => return fail(&message),
    };
    service_kit::telemetry::init("info");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async {
        let app = match App::build(config, Arc::new(SystemClock)).await {
            Ok(app) => app,
            Err(e) => return fail(&e.to_string()),
        };
        match app.run(service_kit::server::shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e.to_string()),
        }
    })
}

fn fail(message: &str) -> ExitCode {
    eprintln!("notification-service: {message}");
    ExitCode::FAILURE
}
