//! The integration tests of invitation-service: the real server over
//! loopback gRPC on port 0, with a temporary sled folder; and, where the
//! process boundary is the point, the real binary.

mod auth;
mod failstop;
mod helpers;
mod invitations;
mod limits;
mod lists;
mod privacy;
mod process;
mod publisher;
mod rates;
mod reminders;
mod text;
