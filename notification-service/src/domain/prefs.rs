//! Each user's notification preferences, per topic, with the defaults of the
//! product: invitations received on/DIGEST/FULL, accepted on/IMMEDIATE/FULL,
//! withdrawn OFF/IMMEDIATE/FULL, withdrawal note on/IMMEDIATE/FULL,
//! reminders on/DIGEST/FULL.

use std::time::Duration;

use super::{Channel, Channels, EmailAddress, LocalTime, QuietHours, Timestamp, Zone};

/// Shortest digest interval a user may choose.
pub const MIN_DIGEST_INTERVAL: Duration = Duration::from_secs(60);
/// Longest digest interval a user may choose.
pub const MAX_DIGEST_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    InvitationReceived,
    InvitationAccepted,
    InvitationWithdrawn,
    WithdrawalNote,
    InvitationReminder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    Immediate,
    Digest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detail {
    /// Who, and their note.
    Full,
    /// That something happened: no identity, no note.
    Minimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicPreference {
    pub enabled: bool,
    pub delivery: Delivery,
    pub detail: Detail,
    /// As chosen; empty means IN_APP alone.
    pub channels: Channels,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    pub invitation_received: TopicPreference,
    pub invitation_accepted: TopicPreference,
    pub invitation_withdrawn: TopicPreference,
    pub withdrawal_note: TopicPreference,
    pub invitation_reminder: TopicPreference,
    /// `None`: the server's default interval.
    pub digest_interval: Option<Duration>,
    /// Mutes every topic.
    pub paused: bool,
    /// Where EMAIL goes.
    pub email_address: Option<EmailAddress>,
    /// The user's clock, for quiet hours and the daily digest time.
    pub time_zone: Zone,
    /// EMAIL and PUSH wait while these hold.
    pub quiet_hours: Option<QuietHours>,
    /// Digests once a day at this local time, instead of by interval.
    pub digest_time: Option<LocalTime>,
}

impl Default for Preferences {
    fn default() -> Self {
        let on = |delivery| TopicPreference {
            enabled: true,
            delivery,
            detail: Detail::Full,
            channels: Channels::NONE,
        };
        Self {
            invitation_received: on(Delivery::Digest),
            invitation_accepted: on(Delivery::Immediate),
            invitation_withdrawn: TopicPreference {
                enabled: false,
                ..on(Delivery::Immediate)
            },
            withdrawal_note: on(Delivery::Immediate),
            invitation_reminder: on(Delivery::Digest),
            digest_interval: None,
            paused: false,
            email_address: None,
            time_zone: Zone::utc(),
            quiet_hours: None,
            digest_time: None,
        }
    }
}

impl Preferences {
    #[must_use]
    pub fn topic(&self, topic: Topic) -> TopicPreference {
        match topic {
            Topic::InvitationReceived => self.invitation_received,
            Topic::InvitationAccepted => self.invitation_accepted,
            Topic::InvitationWithdrawn => self.invitation_withdrawn,
            Topic::WithdrawalNote => self.withdrawal_note,
            Topic::InvitationReminder => self.invitation_reminder,
        }
    }

    /// The topic's preference if it is to be delivered at all (enabled and
    /// not paused).
    #[must_use]
    pub fn active(&self, topic: Topic) -> Option<TopicPreference> {
        let preference = self.topic(topic);
        (preference.enabled && !self.paused).then_some(preference)
    }

    /// Where a notification about `topic` goes, of the channels the server
    /// has (`available`): EMAIL only with an address to send to. When none
    /// of the chosen channels is left (the operator removed the mail server
    /// since), IN_APP, so that nothing is lost.
    #[must_use]
    pub fn channels(&self, topic: Topic, available: Channels) -> Channels {
        let mut chosen = self
            .topic(topic)
            .channels
            .or_in_app()
            .intersect(available.with(Channel::InApp));
        if self.email_address.is_none() {
            chosen = chosen.without(Channel::Email);
        }
        chosen.or_in_app()
    }

    /// When a digest opened at `now` is due: the next `digest_time` on the
    /// user's clock, or `now` plus their interval (the server's by default).
    #[must_use]
    pub fn digest_due(&self, now: Timestamp, default_interval: Duration) -> Timestamp {
        match self.digest_time {
            Some(at) => self.time_zone.next(at, now),
            None => now.plus(self.digest_interval_or(default_interval)),
        }
    }

    /// When EMAIL and PUSH may go out at `now`: at once, or when the user's
    /// quiet hours end.
    #[must_use]
    pub fn loud_from(&self, now: Timestamp) -> Timestamp {
        self.quiet_hours
            .and_then(|quiet| self.time_zone.quiet_until(quiet, now))
            .unwrap_or(now)
    }

    /// The digest interval, falling back to the server's default.
    #[must_use]
    pub fn digest_interval_or(&self, default: Duration) -> Duration {
        self.digest_interval.unwrap_or(default)
    }
}
