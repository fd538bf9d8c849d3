//! The stored encoding of notification-service's values: prost records
//! behind the kit's version byte (see [`service_kit::storage::record`]),
//! and their conversions to and from the domain.

mod notification;
mod outbound;
mod preferences;

use prost::Message;

use crate::domain::{Channel, ChannelState, Channels, DeliveryStatus, Detail, Timestamp, Topic};

use super::StoreError;

pub(crate) use notification::{decode_notification, decode_update, encode_notification, encode_update};
pub(crate) use outbound::{JobRecord, QueueRecord, channel_code, channel_from_code};
pub(crate) use preferences::{decode_preferences, encode_preferences};
pub(crate) use service_kit::storage::record::{decode, encode};

pub(crate) fn topic_code(topic: Topic) -> u8 {
    match topic {
        Topic::InvitationReceived => 1,
        Topic::InvitationAccepted => 2,
        Topic::InvitationWithdrawn => 3,
        Topic::WithdrawalNote => 4,
        Topic::InvitationReminder => 5,
    }
}

pub(crate) fn topic_from_code(code: u32) -> Result<Topic, StoreError> {
    Ok(match code {
        1 => Topic::InvitationReceived,
        2 => Topic::InvitationAccepted,
        3 => Topic::InvitationWithdrawn,
        4 => Topic::WithdrawalNote,
        5 => Topic::InvitationReminder,
        _ => return Err(StoreError::Corrupt(format!("unknown topic {code}"))),
    })
}

pub(super) fn detail_code(detail: Detail) -> u32 {
    match detail {
        Detail::Full => 1,
        Detail::Minimal => 2,
    }
}

pub(super) fn detail_from_code(code: u32) -> Detail {
    // Anything unknown is treated as the more private choice.
    if code == 1 { Detail::Full } else { Detail::Minimal }
}

/// Per-user counters.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct UserRecord {
    #[prost(uint64, tag = "1")]
    pub(crate) last_notification: u64,
    #[prost(uint64, tag = "2")]
    pub(crate) last_cursor: u64,
    #[prost(uint32, tag = "3")]
    pub(crate) unread: u32,
    // Tag 4 held per-user numbers of pending notifications in an unreleased
    // layout; numbers now come from one counter for all users.
    /// The oldest cursor the update log still holds (0 reads as 1): the log
    /// is `first_kept..=last_cursor`.
    #[prost(uint64, tag = "5")]
    pub(crate) first_kept: u64,
    /// When the user's IMMEDIATE notifications of the last hour were
    /// decided (ms), oldest first: the hourly limit's rolling window.
    #[prost(uint64, repeated, tag = "6")]
    pub(crate) immediate_ms: Vec<u64>,
}

/// What the sender of an invitation may learn: whether the recipient has
/// been told of it yet.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct DeliveryRecord {
    #[prost(string, tag = "1")]
    pub(crate) sender: String,
    #[prost(bool, tag = "2")]
    pub(crate) delivered: bool,
    /// When a held or digested notification is due; 0 when none is.
    #[prost(uint64, tag = "3")]
    pub(crate) deliver_at_ms: u64,
    /// The recipient ignored it before delivery: to the sender it must look
    /// as if delivery happened on schedule.
    #[prost(bool, tag = "4")]
    pub(crate) masked: bool,
    /// Where the recipient's INVITATION_RECEIVED notification of this
    /// invitation is: 0 nowhere, 1 held (`notification_number` is internal),
    /// 2 delivered (the public number). See [`Location`].
    #[prost(uint32, tag = "5")]
    pub(crate) notification_at: u32,
    #[prost(uint64, tag = "6")]
    pub(crate) notification_number: u64,
    /// The recipient, whose channels decide what is pending where.
    #[prost(string, tag = "7")]
    pub(crate) recipient: String,
    /// Where the recipient's notification went, per channel, once it went.
    #[prost(message, repeated, tag = "8")]
    pub(crate) channels: Vec<ChannelRecord>,
    /// Where the recipient's reminders of this invitation are, held or
    /// delivered, so that a withdrawal takes them back too. Never shown to
    /// the sender.
    #[prost(message, repeated, tag = "9")]
    pub(crate) reminders: Vec<PlacementRecord>,
}

/// Where one notification about an invitation is: held (by its internal
/// number and due time) or delivered (by its public number).
#[derive(Clone, PartialEq, Message)]
pub(crate) struct PlacementRecord {
    /// 1 held, 2 delivered, as [`DeliveryRecord::notification_at`].
    #[prost(uint32, tag = "1")]
    at: u32,
    #[prost(uint64, tag = "2")]
    number: u64,
    /// When a held one is due (its key in the `due` tree).
    #[prost(uint64, tag = "3")]
    due_ms: u64,
}

/// One of the recipient's notifications about an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) location: Location,
    pub(crate) number: u64,
    /// When a held one is due; 0 for a delivered one.
    pub(crate) due_ms: u64,
}

/// One channel's part of a [`DeliveryRecord`].
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ChannelRecord {
    #[prost(uint32, tag = "1")]
    channel: u32,
    /// See [`state_code`].
    #[prost(uint32, tag = "2")]
    state: u32,
    #[prost(uint64, tag = "3")]
    at_ms: u64,
}

fn state_code(state: ChannelState) -> u32 {
    match state {
        ChannelState::Pending => 1,
        ChannelState::Sent => 2,
        ChannelState::Failed => 3,
        ChannelState::None => 4,
    }
}

fn state_from_code(code: u32) -> ChannelState {
    match code {
        1 => ChannelState::Pending,
        2 => ChannelState::Sent,
        3 => ChannelState::Failed,
        _ => ChannelState::None,
    }
}

/// Where a notification of an invitation is: held (by its internal number)
/// or delivered (by its public number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Location {
    Pending,
    Delivered,
}

impl DeliveryRecord {
    /// Where the recipient's notification of the invitation is, if anywhere.
    pub(crate) fn location(&self) -> Result<Option<(Location, u64)>, StoreError> {
        match self.notification_at {
            0 => Ok(None),
            1 => Ok(Some((Location::Pending, self.notification_number))),
            2 => Ok(Some((Location::Delivered, self.notification_number))),
            other => Err(StoreError::Corrupt(format!("delivery record location {other}"))),
        }
    }

    pub(crate) fn set_location(&mut self, location: Option<(Location, u64)>) {
        (self.notification_at, self.notification_number) = match location {
            None => (0, 0),
            Some((Location::Pending, number)) => (1, number),
            Some((Location::Delivered, number)) => (2, number),
        };
    }

    /// The recipient's notifications about the invitation, the one
    /// announcing it and its reminders.
    pub(crate) fn placements(&self) -> Result<Vec<(Topic, Placement)>, StoreError> {
        let mut all = Vec::with_capacity(1 + self.reminders.len());
        if let Some((location, number)) = self.location()? {
            let due_ms = self.deliver_at_ms;
            all.push((
                Topic::InvitationReceived,
                Placement {
                    location,
                    number,
                    due_ms,
                },
            ));
        }
        for r in &self.reminders {
            let location = match r.at {
                1 => Location::Pending,
                2 => Location::Delivered,
                other => return Err(StoreError::Corrupt(format!("reminder location {other}"))),
            };
            let placement = Placement {
                location,
                number: r.number,
                due_ms: r.due_ms,
            };
            all.push((Topic::InvitationReminder, placement));
        }
        Ok(all)
    }

    /// Records a held reminder (once per notification).
    pub(crate) fn hold_reminder(&mut self, number: u64, due: Timestamp) {
        let held = PlacementRecord {
            at: 1,
            number,
            due_ms: due.as_millis(),
        };
        if !self.reminders.contains(&held) {
            self.reminders.push(held);
        }
    }

    /// The held reminder `pending` was delivered as `public`.
    pub(crate) fn deliver_reminder(&mut self, pending: u64, public: u64) {
        for r in &mut self.reminders {
            if r.at == 1 && r.number == pending {
                *r = PlacementRecord {
                    at: 2,
                    number: public,
                    due_ms: 0,
                };
            }
        }
    }

    /// Forgets a notification about the invitation: the announcing one, or
    /// a reminder.
    pub(crate) fn forget(&mut self, topic: Topic, location: Location, number: u64) {
        if topic == Topic::InvitationReminder {
            let at = match location {
                Location::Pending => 1,
                Location::Delivered => 2,
            };
            self.reminders.retain(|r| (r.at, r.number) != (at, number));
        } else {
            self.set_location(None);
        }
    }

    /// Records where the notification stands on `channel`.
    pub(crate) fn set_channel(&mut self, channel: Channel, state: ChannelState, at: Timestamp) {
        let code = u32::from(channel_code(channel));
        let entry = ChannelRecord {
            channel: code,
            state: state_code(state),
            at_ms: at.as_millis(),
        };
        match self.channels.iter_mut().find(|c| c.channel == code) {
            Some(slot) => *slot = entry,
            None => self.channels.push(entry),
        }
    }

    /// Forgets where the notification went: it was taken back before it
    /// went anywhere.
    pub(crate) fn clear_channel(&mut self, channel: Channel) {
        let code = u32::from(channel_code(channel));
        self.channels.retain(|c| c.channel != code);
    }

    /// What the sender sees at `now`. `pending_on` are the channels the
    /// recipient's notification will go to when it is due (from their
    /// preferences now).
    pub(crate) fn seen_by_sender(&self, now: Timestamp, pending_on: Channels) -> DeliveryStatus {
        let due = (self.deliver_at_ms > 0).then(|| Timestamp::from_millis(self.deliver_at_ms));
        let per_channel = |state: &dyn Fn(Channel) -> (ChannelState, Option<Timestamp>)| {
            Channel::ALL
                .iter()
                .map(|&c| {
                    let (state, at) = state(c);
                    (c, state, at)
                })
                .collect()
        };
        if self.delivered {
            return DeliveryStatus {
                delivered: true,
                deliver_at: None,
                channels: per_channel(&|c| {
                    self.channels
                        .iter()
                        .find(|r| r.channel == u32::from(channel_code(c)))
                        .map_or((ChannelState::None, None), |r| {
                            (state_from_code(r.state), Some(Timestamp::from_millis(r.at_ms)))
                        })
                }),
            };
        }
        // An ignored invitation must look delivered on schedule, on the
        // channels it would have gone to.
        let masked_due = self.masked && due.is_some_and(|d| d <= now);
        let state = if masked_due {
            ChannelState::Sent
        } else {
            ChannelState::Pending
        };
        DeliveryStatus {
            delivered: masked_due,
            deliver_at: due.filter(|_| !masked_due),
            channels: per_channel(&|c| match due {
                Some(due) if pending_on.contains(c) => (state, Some(due)),
                Some(_) | None => (ChannelState::None, None),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_delivery_looks_delivered_once_due() {
        let r = DeliveryRecord {
            sender: "a".into(),
            delivered: false,
            deliver_at_ms: 100,
            masked: true,
            ..DeliveryRecord::default()
        };
        let on = Channels::IN_APP.with(Channel::Email);
        let before = r.seen_by_sender(Timestamp::from_millis(99), on);
        assert_eq!(
            (before.delivered, before.deliver_at),
            (false, Some(Timestamp::from_millis(100)))
        );
        let due = Some(Timestamp::from_millis(100));
        assert_eq!(
            before.channels,
            [
                (Channel::InApp, ChannelState::Pending, due),
                (Channel::Email, ChannelState::Pending, due),
                (Channel::Push, ChannelState::None, None)
            ]
        );
        let after = r.seen_by_sender(Timestamp::from_millis(100), on);
        assert_eq!((after.delivered, after.deliver_at), (true, None));
        assert_eq!(
            after.channels,
            [
                (Channel::InApp, ChannelState::Sent, due),
                (Channel::Email, ChannelState::Sent, due),
                (Channel::Push, ChannelState::None, None)
            ]
        );
    }
}
