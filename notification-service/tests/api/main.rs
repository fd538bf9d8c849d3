//! The integration tests of notification-service: the real server over
//! loopback gRPC on port 0, with a temporary sled folder and a manual clock,
//! fed by a test publisher on the ingest stream.

mod auth;
mod delivery_status;
mod digests;
mod durability;
mod helpers;
mod inbox;
mod ingest;
mod limits;
mod outcomes;
mod preferences;
mod reminders;
mod subscribe;
mod timing;
mod withdrawal;
