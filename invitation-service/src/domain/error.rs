//! Why the core refuses a request. Each variant is something a caller can
//! act on; the gRPC layer alone chooses the status code.

use std::fmt;

use super::{State, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// The same message whether the invitation never existed, was withdrawn
    /// before the caller (its recipient) could act, or belongs to others.
    #[error("invitation not found")]
    InvitationNotFound,
    #[error("you are not connected with this user")]
    NotConnected,
    #[error("you cannot invite yourself")]
    SelfInvite,
    #[error("you are already connected with this user")]
    AlreadyConnected,
    #[error("you already have a pending invitation to this user")]
    AlreadyInvited,
    #[error("this user has already invited you: accept their invitation instead")]
    AlreadyInvitedYou,
    #[error("you withdrew an invitation to this user recently: you can invite them again from {until}")]
    CoolingDown { until: Timestamp },
    #[error(
        "you have sent {limit} invitations in the last 7 days, the weekly limit: you can send again from {retry_at}"
    )]
    WeeklyLimit { limit: u32, retry_at: Timestamp },
    #[error("the invitation is {state} and can no longer be {action}")]
    NotPending { state: State, action: &'static str },
    #[error("only the {role} of an invitation can {action} it")]
    WrongParty { role: &'static str, action: &'static str },
    #[error("idempotency_key was already used for a different request in the last 24 hours")]
    IdempotencyKeyReused,
}

impl DomainError {
    /// `field` breaks its rule, for the `reason` given.
    pub fn invalid(field: &'static str, reason: impl fmt::Display) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.to_string(),
        }
    }
}
