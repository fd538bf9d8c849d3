//! What both services share: JWT bearer auth, per-user rate limits, the text rules for user ids,
//! names and notes, invitation ids, telemetry, the pieces of server start-up
//! and shutdown (health, reflection, signals), the `healthcheck` client,
//! duration parsing for configuration, and the clock.

#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod backoff;
pub mod checkpoint;
pub mod config;
pub mod failstop;
pub mod healthcheck;
pub mod ids;
pub mod jetstream;
pub mod limits;
pub mod metrics;
pub mod partition;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod text;
pub mod time;
