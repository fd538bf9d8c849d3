//! What the sender of an invitation may learn of its delivery: whether the
//! recipient has been told, and per channel whether and when.

use super::{Channel, Timestamp};

/// Where a notification stands on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    /// Not yet; due (or retried) at the time given with it.
    Pending,
    Sent,
    /// Given up: refused for good, or failing for the whole retry age.
    Failed,
    /// Nothing goes there.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    /// The recipient has been told (in the app, or on their channels).
    pub delivered: bool,
    /// When a held or digested notification is due.
    pub deliver_at: Option<Timestamp>,
    /// Every channel, in the order IN_APP, EMAIL, PUSH.
    pub channels: Vec<(Channel, ChannelState, Option<Timestamp>)>,
}
