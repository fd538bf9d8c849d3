//! The service's one error type and the one place that turns an error into a
//! gRPC status.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use service_kit::{
    failstop::{Fault, Stopped, TaskFailed},
    limits::RateLimited,
};

use crate::storage::StoreError;

const ERROR_DOMAIN: &str = "notifications.v1";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("{field} chooses {channel}, which this server does not offer (its operator has not set {variable})")]
    ChannelUnavailable {
        field: &'static str,
        channel: &'static str,
        variable: &'static str,
    },
    /// The same message whether the invitation is unknown or someone else's.
    #[error("no delivery status for this invitation")]
    DeliveryStatusNotFound,
    #[error(
        "resume_after={after} is older than the updates kept (or not yet issued): list your notifications \
         again and subscribe without resume_after"
    )]
    CursorOutOfRange { after: u64 },
    #[error("this stream fell behind and was ended: subscribe again with resume_after={resume_after}")]
    StreamBehind { resume_after: u64 },
    #[error("server shutting down: subscribe again with resume_after={resume_after}")]
    ServerClosing { resume_after: u64 },
    #[error("at most {max} streams per user are open at once: close one first")]
    TooManyStreams { max: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("durability: {0}")]
    Flush(String),
    #[error(transparent)]
    Task(#[from] TaskFailed),
    #[error("{0}")]
    RateLimited(RateLimited),
    #[error(transparent)]
    Backup(#[from] service_kit::storage::BackupError),
    /// An earlier storage fault stopped all storage work (see
    /// [`service_kit::failstop::FailStop`]).
    #[error("storage failed earlier; not taking work")]
    StorageFailed,
    /// NATS JetStream could not be reached or answered with an error.
    #[error("event transport: {0}")]
    Transport(String),
}

impl Fault for Error {
    /// An I/O error or a failed flush, as opposed to a refusal, a damaged
    /// record or a bug: it trips the service's
    /// [`service_kit::failstop::FailStop`].
    fn is_storage_fault(&self) -> bool {
        matches!(self, Self::Store(StoreError::Sled(_)) | Self::Flush(_))
    }

    fn sled_error(&self) -> Option<&sled::Error> {
        if let Self::Store(StoreError::Sled(e)) = self {
            Some(e)
        } else {
            None
        }
    }
}

impl From<Stopped> for Error {
    fn from(Stopped: Stopped) -> Self {
        Self::StorageFailed
    }
}

/// What a client is told when storage failed.
const STORAGE_FAILED: &str = "storage failed: the service is restarting to recover; \
     this request may or may not have taken effect, so retry it once the service is back";

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            Error::ChannelUnavailable { channel, variable, .. } => Status::with_error_details(
                Code::FailedPrecondition,
                message,
                ErrorDetails::with_precondition_failure_violation(
                    "CHANNEL_UNAVAILABLE",
                    channel,
                    format!("the server offers {channel} once {variable} is set"),
                ),
            ),
            Error::DeliveryStatusNotFound => Status::not_found(message),
            Error::StreamBehind { .. } | Error::TooManyStreams { .. } => Status::resource_exhausted(message),
            Error::ServerClosing { .. } | Error::Transport(_) => Status::unavailable(message),
            Error::RateLimited(limited) => service_kit::limits::status(&limited, ERROR_DOMAIN),
            Error::Backup(e) => e.status(),
            Error::CursorOutOfRange { .. } | Error::Store(StoreError::SequenceGap { .. }) => {
                Status::out_of_range(message)
            }
            Error::Store(StoreError::Sled(_)) | Error::Flush(_) | Error::StorageFailed => {
                tracing::warn!(error = %message, "request failed: storage failed");
                Status::unavailable(STORAGE_FAILED)
            }
            Error::Store(StoreError::Corrupt(_)) | Error::Task(_) => {
                tracing::error!(error = %message, "internal error");
                Status::internal("internal error; the request may be retried")
            }
        }
    }
}
