//! The service's one error type and the one place that turns an error into a
//! gRPC status.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use service_kit::{
    failstop::{Fault, Stopped, TaskFailed},
    limits::RateLimited,
};

use crate::{domain::DomainError, storage::StoreError};

const ERROR_DOMAIN: &str = "invitations.v1";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("durability: {0}")]
    Flush(String),
    #[error("background task: {0}")]
    Task(String),
    /// Storage work on the blocking pool panicked or was cancelled.
    #[error(transparent)]
    TaskFailed(#[from] TaskFailed),
    #[error("{0}")]
    RateLimited(RateLimited),
    #[error(transparent)]
    Backup(#[from] service_kit::storage::BackupError),
    /// An earlier storage fault stopped all storage work: writes, and
    /// reads on the blocking pool (see [`service_kit::failstop::FailStop`]).
    #[error("storage failed earlier; not taking work")]
    StorageFailed,
}

impl From<Stopped> for Error {
    fn from(_: Stopped) -> Self {
        Self::StorageFailed
    }
}

impl Fault for Error {
    /// A fault of the storage itself (an I/O error, a failed flush), as
    /// opposed to a refusal, a damaged record or a bug: it trips the
    /// service's [`FailStop`](service_kit::failstop::FailStop).
    fn is_storage_fault(&self) -> bool {
        matches!(self, Self::Store(StoreError::Sled(_)) | Self::Flush(_))
    }

    /// sled's own error, so that one saying it could not read back what it
    /// wrote marks the folder damaged.
    fn sled_error(&self) -> Option<&sled::Error> {
        match self {
            Self::Store(StoreError::Sled(e)) => Some(e),
            Self::Store(StoreError::Corrupt(_))
            | Self::Domain(_)
            | Self::Flush(_)
            | Self::Task(_)
            | Self::TaskFailed(_)
            | Self::RateLimited(_)
            | Self::Backup(_)
            | Self::StorageFailed => None,
        }
    }
}

/// What a client is told when storage failed: the service is stopping to be
/// restarted, and the request may or may not have been applied.
pub(crate) const STORAGE_FAILED: &str = "storage failed: the service is restarting to recover; \
     this request may or may not have taken effect, so retry it once the service is back \
     (with the same idempotency_key, a retried send is applied once)";

fn with_info(code: Code, message: String, reason: &str, key: &str, value: String) -> Status {
    let metadata = HashMap::from([(key.to_owned(), value)]);
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let domain = match error {
            Error::Domain(e) => e,
            Error::RateLimited(limited) => return service_kit::limits::status(&limited, ERROR_DOMAIN),
            Error::Backup(e) => return e.status(),
            Error::Store(StoreError::Sled(_)) | Error::Flush(_) | Error::StorageFailed => {
                tracing::warn!(error = %error, "request failed: storage failed");
                return Status::unavailable(STORAGE_FAILED);
            }
            Error::Store(StoreError::Corrupt(_)) | Error::Task(_) | Error::TaskFailed(_) => {
                tracing::error!(error = %error, "internal error");
                return Status::internal("internal error; the request may be retried");
            }
        };
        let message = domain.to_string();
        match domain {
            DomainError::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            DomainError::SelfInvite => Status::with_error_details(
                Code::InvalidArgument,
                message.clone(),
                ErrorDetails::with_bad_request_violation("recipient_id", message),
            ),
            DomainError::IdempotencyKeyReused => Status::with_error_details(
                Code::InvalidArgument,
                message.clone(),
                ErrorDetails::with_bad_request_violation("idempotency_key", message),
            ),
            DomainError::InvitationNotFound | DomainError::NotConnected => Status::not_found(message),
            DomainError::AlreadyConnected | DomainError::AlreadyInvited | DomainError::AlreadyInvitedYou => {
                Status::already_exists(message)
            }
            DomainError::CoolingDown { until } => with_info(
                Code::FailedPrecondition,
                message,
                "REINVITE_COOLDOWN",
                "available_at",
                until.to_string(),
            ),
            DomainError::WeeklyLimit { retry_at, .. } => with_info(
                Code::ResourceExhausted,
                message,
                "WEEKLY_LIMIT",
                "available_at",
                retry_at.to_string(),
            ),
            DomainError::NotPending { .. } => Status::failed_precondition(message),
            DomainError::WrongParty { .. } => Status::permission_denied(message),
        }
    }
}
