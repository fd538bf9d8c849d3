//! `ops.v1.Admin`, the operators' service both binaries serve (a token with
//! scope [`ADMIN_SCOPE`] is required), and the `backup` subcommand that
//! calls it on the local server with a token it mints from the secret.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use proto::ops::v1::{self as pb, admin_client::AdminClient};
use tonic::{Request, Response, Status};

use crate::{auth::JwtKeys, storage::BackupReport};

/// The scope an operator's token needs for `ops.v1.Admin`.
pub const ADMIN_SCOPE: &str = "admin";

/// What a service backs up.
#[tonic::async_trait]
pub trait BackupSource: Send + Sync + 'static {
    /// A consistent copy of the service's database in `destination`.
    async fn backup(&self, destination: PathBuf) -> Result<BackupReport, Status>;
}

/// The `ops.v1.Admin` implementation over a service's [`BackupSource`].
#[derive(Debug, Clone)]
pub struct AdminApi<B> {
    source: Arc<B>,
}

impl<B> AdminApi<B> {
    pub fn new(source: B) -> Self {
        Self {
            source: Arc::new(source),
        }
    }
}

#[tonic::async_trait]
impl<B: BackupSource> pb::admin_server::Admin for AdminApi<B> {
    #[tracing::instrument(skip_all, fields(rpc = "Backup"), err(level = "info"))]
    async fn backup(&self, request: Request<pb::BackupRequest>) -> Result<Response<pb::BackupResponse>, Status> {
        let pb::BackupRequest { destination } = request.into_inner();
        let report = self.source.backup(PathBuf::from(destination)).await?;
        Ok(Response::new(pb::BackupResponse {
            destination: report.destination.display().to_string(),
            figures: report.figures.into_iter().collect(),
            entries: report.entries,
            took: prost_types::Duration::try_from(report.took).ok(),
        }))
    }
}

/// The `backup --to DIR` subcommand: asks the server listening on `listen`
/// (loopback for `0.0.0.0`) to back itself up into `destination`, a path
/// on the server's machine, and prints what it copied.
pub fn run_backup(name: &str, listen: SocketAddr, secret: &str, destination: &std::path::Path) -> ExitCode {
    let keys = match JwtKeys::new(secret) {
        Ok(keys) => keys,
        Err(e) => return crate::server::fail(name, &e.to_string()),
    };
    let token = keys
        .mint("operator", None, Duration::from_secs(300), Some(ADMIN_SCOPE))
        .expect("a valid subject and no name");
    let destination = std::path::absolute(destination).unwrap_or_else(|_| destination.to_path_buf());
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return crate::server::fail(name, &format!("cannot start the async runtime: {e}")),
    };
    let addr = crate::healthcheck::dial_addr(listen);
    let called = runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let mut request = Request::new(pb::BackupRequest {
            destination: destination.display().to_string(),
        });
        let header = format!("Bearer {token}")
            .parse()
            .map_err(|_| "token header".to_owned())?;
        request.metadata_mut().insert("authorization", header);
        AdminClient::new(channel)
            .backup(request)
            .await
            .map(Response::into_inner)
            .map_err(|s| format!("the backup failed: {:?}: {}", s.code(), s.message()))
    });
    match called {
        Ok(report) => {
            let took = report
                .took
                .map_or(0, |d| d.seconds * 1000 + i64::from(d.nanos) / 1_000_000);
            println!(
                "{name}: backup made in {}: {} entries, writes waited {took} ms",
                report.destination, report.entries
            );
            let mut figures: Vec<_> = report.figures.into_iter().collect();
            figures.sort();
            for (figure, value) in figures {
                println!("  {figure}: {value}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => crate::server::fail(name, &message),
    }
}
