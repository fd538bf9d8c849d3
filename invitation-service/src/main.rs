//! The `invitation-service` binary: serves by default; `token` prints a
//! signed JWT for trying the API; `healthcheck` asks a running server for its
//! gRPC health.

#![forbid(unsafe_code)]

use std::{process::ExitCode, sync::Arc};

use clap::Parser as _;
use invitation_service::{
    App,
    config::{Cli, Command, ServeArgs},
    domain::SystemClock,
    storage::Store,
};
use service_kit::{
    auth::{JwtKeys, MintError},
    config::SecretArgs,
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
            service_kit::healthcheck::run("invitation-service", listen.listen_addr, timeout)
        }
        // Needs no secret: it only reads the folder.
        Some(Command::Verify { data }) => service_kit::storage::verify(
            "invitation-service",
            &data.data_dir,
            Store::open,
            Store::database,
            Store::durable_figures,
        ),
        Some(Command::Backup { to, listen, secret }) => with_secret(&secret, |secret| {
            service_kit::admin::run_backup("invitation-service", listen.listen_addr, &secret, &to)
        }),
        Some(Command::Token {
            user,
            name,
            ttl,
            secret,
        }) => with_secret(&secret, |secret| token(&secret, &user, name.as_deref(), ttl)),
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
    }
}

fn with_secret(args: &SecretArgs, then: impl FnOnce(String) -> ExitCode) -> ExitCode {
    match args.resolve() {
        Ok(secret) => then(secret),
        Err(message) => fail(&message),
    }
}

fn token(secret: &str, user: &str, name: Option<&str>, ttl: std::time::Duration) -> ExitCode {
    let keys = match JwtKeys::new(secret) {
        Ok(keys) => keys,
        Err(e) => return fail(&e.to_string()),
    };
    match keys.mint(user, name, ttl, None) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(MintError::UserId(reason)) => fail(&format!("--user {reason}")),
        Err(MintError::Name(reason)) => fail(&format!("--name {reason}")),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match args.into_config() {
        Ok(config) => config,
        Err(message) => return fail(&message),
    };
    service_kit::server::run_main("invitation-service", || async move {
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
    service_kit::server::fail("invitation-service", message)
}
