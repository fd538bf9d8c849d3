//! What both services share: JWT bearer auth, telemetry, the pieces of server
//! start-up and shutdown (health, reflection, signals), and duration parsing
//! for configuration.

#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod server;
pub mod telemetry;
