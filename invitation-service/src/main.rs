//! The `invitation-service` binary: serves by default; `token` prints a
//! signed JWT for trying the API.

#![forbid(unsafe_code)]

use std::{process::ExitCode, sync::Arc};

use clap::Parser as _;
use invitation_service::{
    App,
    config::{Cli, Command},
    domain::SystemClock,
};
use service_kit::auth::JwtKeys;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let secret = match cli.secret.resolve() {
        Ok(secret) => secret,
        Err(message) => return fail(&message),
    };
    match cli.command {
        Some(Command::Token { user, name, ttl }) => {
            if !service_kit::auth::is_valid_user_id(&user) {
                return fail("--user must be 1 to 128 bytes without spaces or control characters");
            }
            match JwtKeys::new(&secret) {
                Ok(keys) => {
                    println!("{}", keys.mint(&user, name.as_deref(), ttl, None));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Some(Command::Serve) | None => serve(cli.serve.into_config(secret)),
    }
}

fn serve(config: invitation_service::Config) -> ExitCode {
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
    eprintln!("invitation-service: {message}");
    ExitCode::FAILURE
}
