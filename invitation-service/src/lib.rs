//! invitation-service: connection invitations with etiquette guards, kept in
//! sled, with every change and its event written in one transaction.

#![forbid(unsafe_code)]

pub mod app;
pub mod config;
mod convert;
pub mod domain;
mod error;
pub mod grpc;
pub mod metrics;
pub mod publisher;
pub mod service;
pub mod storage;
mod writer;

pub use app::{App, StartError};
pub use config::Config;
pub use error::Error;
