//! The stored form of the outbound queues (e-mail and push): one record per
//! message to send, the per-user queue bounds, and the per-channel count.

use prost::Message;

use crate::{
    domain::{Channel, Timestamp, Update},
    storage::StoreError,
};

use super::notification::UpdateRecord;

/// A message waiting to go out on a channel.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct JobRecord {
    /// The `webhook-id` and the mail's Message-ID: the same on every try.
    #[prost(string, tag = "1")]
    pub(crate) id: String,
    /// What it says: the update as the owner's streams saw it (cursor 0
    /// when the notification is not in the app).
    #[prost(message, optional, tag = "2")]
    update: Option<UpdateRecord>,
    /// The public number of the notification it is about.
    #[prost(uint64, tag = "3")]
    pub(crate) notification: u64,
    /// Where an e-mail goes (empty for push).
    #[prost(string, tag = "4")]
    pub(crate) email: String,
    #[prost(uint64, tag = "5")]
    pub(crate) created_ms: u64,
    /// When it is due next (its first try, or its next retry).
    #[prost(uint64, tag = "6")]
    pub(crate) next_ms: u64,
    #[prost(uint32, tag = "7")]
    pub(crate) attempts: u32,
    /// A try has begun, so the other side may have it: it can no longer be
    /// taken back silently, only followed by a retraction.
    #[prost(bool, tag = "8")]
    pub(crate) maybe_seen: bool,
}

impl JobRecord {
    pub(crate) fn new(id: String, update: &Update, notification: u64, email: String, now: Timestamp) -> Self {
        Self {
            id,
            update: Some(update.into()),
            notification,
            email,
            created_ms: now.as_millis(),
            next_ms: now.as_millis(),
            attempts: 0,
            maybe_seen: false,
        }
    }

    pub(crate) fn update(&self) -> Result<Update, StoreError> {
        self.update
            .as_ref()
            .ok_or_else(|| StoreError::Corrupt("outbound message without an update".into()))
            .and_then(Update::try_from)
    }

    pub(crate) fn set_update(&mut self, update: &Update) {
        self.update = Some(update.into());
    }
}

/// A user's queue on one channel: messages `head..next` (some may have been
/// taken back, leaving gaps); empty when `head == next`.
#[derive(Clone, Copy, PartialEq, Message)]
pub(crate) struct QueueRecord {
    #[prost(uint64, tag = "1")]
    pub(crate) head: u64,
    #[prost(uint64, tag = "2")]
    pub(crate) next: u64,
}

impl QueueRecord {
    pub(crate) const EMPTY: Self = Self { head: 1, next: 1 };
}

/// The stored code of a channel in keys.
pub(crate) fn channel_code(channel: Channel) -> u8 {
    match channel {
        Channel::InApp => 1,
        Channel::Email => 2,
        Channel::Push => 3,
    }
}

pub(crate) fn channel_from_code(code: u8) -> Result<Channel, StoreError> {
    Ok(match code {
        1 => Channel::InApp,
        2 => Channel::Email,
        3 => Channel::Push,
        _ => return Err(StoreError::Corrupt(format!("unknown channel {code}"))),
    })
}
