//! The `healthcheck` subcommand both binaries have: it asks a running
//! server's `grpc.health.v1.Health/Check` and turns the answer into an exit
//! code, so that a container image needs no extra tool for its health check.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    process::ExitCode,
    time::Duration,
};

use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

/// How long the whole check (connect and call) may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a server is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("the health check at {addr} failed: {code:?}: {message}")]
    Call {
        addr: SocketAddr,
        code: tonic::Code,
        message: String,
    },
    #[error("{addr} is {status}")]
    NotServing { addr: SocketAddr, status: &'static str },
}

/// The address to dial for a server that listens on `listen`: loopback
/// when it listens on every interface (`0.0.0.0` or `::`).
#[must_use]
pub fn dial_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip @ (IpAddr::V4(_) | IpAddr::V6(_)) => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Asks the server at `addr` for its overall health (service `""`), giving
/// up after `timeout`.
///
/// # Errors
///
/// [`Unhealthy`] unless the server answers SERVING.
pub async fn check(addr: SocketAddr, timeout: Duration) -> Result<(), Unhealthy> {
    match tokio::time::timeout(timeout, ask(addr, timeout)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(Unhealthy::Timeout { addr, timeout }),
    }
}

async fn ask(addr: SocketAddr, timeout: Duration) -> Result<(), Unhealthy> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| Unhealthy::Connect {
            addr,
            reason: e.to_string(),
        })?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = endpoint.connect().await.map_err(|e| Unhealthy::Connect {
        addr,
        reason: error_chain(&e),
    })?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map_err(|status| Unhealthy::Call {
            addr,
            code: status.code(),
            message: status.message().to_owned(),
        })?
        .into_inner();
    match ServingStatus::try_from(reply.status) {
        Ok(ServingStatus::Serving) => Ok(()),
        Ok(status @ (ServingStatus::Unknown | ServingStatus::NotServing | ServingStatus::ServiceUnknown)) => {
            Err(Unhealthy::NotServing {
                addr,
                status: status.as_str_name(),
            })
        }
        Err(_) => Err(Unhealthy::NotServing {
            addr,
            status: "an unknown status",
        }),
    }
}

/// "transport error: connection refused" rather than just "transport error".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        // Layers that wrap an error often repeat its message.
        let message = cause.to_string();
        if message != last {
            text.push_str(": ");
            text.push_str(&message);
            last = message;
        }
        source = cause.source();
    }
    text
}

/// The whole subcommand: checks the server that `binary` runs on `listen`,
/// prints one line saying what it found, and exits 0 when it is SERVING and
/// 1 otherwise.
#[must_use]
pub fn run(binary: &str, listen: SocketAddr, timeout: Duration) -> ExitCode {
    let addr = dial_addr(listen);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{binary}: unhealthy: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(check(addr, timeout)) {
        Ok(()) => {
            println!("{binary}: {addr} is SERVING");
            ExitCode::SUCCESS
        }
        Err(unhealthy) => {
            eprintln!("{binary}: unhealthy: {unhealthy}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_health::ServingStatus as Status;

    use super::*;

    /// A server with only the health service, on a port the OS picks.
    async fn health_server() -> (SocketAddr, tonic_health::server::HealthReporter) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (reporter, service) = crate::server::health(&[]).await;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (addr, reporter)
    }

    #[tokio::test]
    async fn serving_then_not_serving() {
        let (addr, reporter) = health_server().await;
        let not_yet = check(addr, DEFAULT_TIMEOUT).await.unwrap_err();
        assert!(matches!(not_yet, Unhealthy::NotServing { .. }), "{not_yet}");
        assert!(not_yet.to_string().contains("NOT_SERVING"), "{not_yet}");

        crate::server::set_status(&reporter, &[], Status::Serving).await;
        check(addr, DEFAULT_TIMEOUT).await.unwrap();

        crate::server::set_status(&reporter, &[], Status::NotServing).await;
        assert!(matches!(
            check(addr, DEFAULT_TIMEOUT).await,
            Err(Unhealthy::NotServing { .. })
        ));
    }

    #[tokio::test]
    async fn a_closed_port_fails_fast() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let started = std::time::Instant::now();
        let err = check(addr, DEFAULT_TIMEOUT).await.unwrap_err();
        assert!(matches!(err, Unhealthy::Connect { .. }), "{err}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        assert!(started.elapsed() < DEFAULT_TIMEOUT, "took {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        // Accepts connections but never speaks HTTP/2.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let timeout = Duration::from_millis(300);
        let err = check(addr, timeout).await.unwrap_err();
        assert!(
            matches!(err, Unhealthy::Timeout { .. } | Unhealthy::Call { .. }),
            "{err}"
        );
        drop(listener);
    }

    #[test]
    fn unspecified_addresses_dial_loopback() {
        let v4: SocketAddr = "0.0.0.0:50051".parse().unwrap();
        assert_eq!(dial_addr(v4), "127.0.0.1:50051".parse::<SocketAddr>().unwrap());
        let v6: SocketAddr = "[::]:50052".parse().unwrap();
        assert_eq!(dial_addr(v6), "[::1]:50052".parse::<SocketAddr>().unwrap());
        let given: SocketAddr = "192.0.2.7:7000".parse().unwrap();
        assert_eq!(dial_addr(given), given);
    }
}
