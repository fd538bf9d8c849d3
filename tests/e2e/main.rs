//! End-to-end tests: invitation-service and notification-service as real
//! processes on loopback, each with its own data folder, driven through the
//! generated clients.

mod backup;
mod channels;
mod common;
mod crash;
mod damage;
mod memory;
mod metrics;
mod partitions;
mod reminders;
mod resume;
mod sinks;
mod story;
mod timers;
