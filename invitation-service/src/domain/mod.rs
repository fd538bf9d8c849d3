//! The pure core of invitation-service: identifiers, the invitation state
//! machine, the etiquette policy and the relationship between two users. It
//! knows nothing of tonic, prost or sled, and reads time only from the
//! `now` it is given.

mod error;
mod ids;
mod invitation;
mod pair;
mod policy;
mod reminders;

pub use error::DomainError;
pub use ids::{IdempotencyKey, MAX_IDEMPOTENCY_KEY_BYTES, MAX_USER_ID_BYTES, Note, UserId};
pub use invitation::{Action, EventKind, Invitation, State, Transition, ViewerRole};
pub use pair::{Pair, Relationship, RelationshipState};
pub use policy::{Activity, Policy, SEND_WINDOW, SendRequest, WITHDRAWAL_WINDOW};
pub use reminders::{Firing, MAX_REMINDERS, Reminders};
pub use service_kit::{
    ids::InvitationId,
    time::{Clock, ManualClock, SystemClock, Timestamp},
};
