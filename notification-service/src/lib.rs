//! notification-service: applies each recipient's preferences to invitation
//! events before delivery to live streams and a stored inbox, with an undo
//! window, digests, and retraction of what a withdrawal makes untrue; and
//! by e-mail and push where the recipient chose them.

#![forbid(unsafe_code)]

pub mod app;
pub mod channels;
pub mod config;
pub mod consume;
mod convert;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod hub;
pub mod ingest;
mod metrics;
pub mod pump;
pub mod service;
pub mod storage;
pub mod timers;

pub use app::{App, StartError};
pub use config::Config;
pub use error::Error;
