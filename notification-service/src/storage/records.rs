//! Stored value encodings: a version byte, then a prost message.

use prost::Message;

use crate::domain::{Delivery, Detail, Item, Preferences, Timestamp, Topic, TopicPreference};

use super::StoreError;

const VERSION: u8 = 1;

pub(crate) fn encode(message: &impl Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + message.encoded_len());
    out.push(VERSION);
    message.encode(&mut out).expect("a Vec grows as needed");
    out
}

pub(crate) fn decode<M: Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M, StoreError> {
    match bytes.split_first() {
        Some((&VERSION, body)) => M::decode(body).map_err(|e| StoreError::Corrupt(format!("{what}: {e}"))),
        Some((version, _)) => Err(StoreError::Corrupt(format!("{what}: unknown record version {version}"))),
        None => Err(StoreError::Corrupt(format!("{what}: empty record"))),
    }
}

pub(crate) fn topic_code(topic: Topic) -> u8 {
    match topic {
        Topic::InvitationReceived => 1,
        Topic::InvitationAccepted => 2,
        Topic::InvitationWithdrawn => 3,
        Topic::WithdrawalNote => 4,
    }
}

pub(crate) fn topic_from_code(code: u32) -> Result<Topic, StoreError> {
    Ok(match code {
        1 => Topic::InvitationReceived,
        2 => Topic::InvitationAccepted,
        3 => Topic::InvitationWithdrawn,
        4 => Topic::WithdrawalNote,
        _ => return Err(StoreError::Corrupt(format!("unknown topic {code}"))),
    })
}

fn detail_code(detail: Detail) -> u32 {
    match detail {
        Detail::Full => 1,
        Detail::Minimal => 2,
    }
}

fn detail_from_code(code: u32) -> Detail {
    // Anything unknown is treated as the more private choice.
    if code == 1 { Detail::Full } else { Detail::Minimal }
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ItemRecord {
    #[prost(string, tag = "1")]
    invitation_id: String,
    #[prost(uint32, tag = "2")]
    detail: u32,
    #[prost(string, tag = "3")]
    actor_id: String,
    #[prost(string, tag = "4")]
    actor_name: String,
    #[prost(string, tag = "5")]
    note: String,
}

impl From<&Item> for ItemRecord {
    fn from(item: &Item) -> Self {
        Self {
            invitation_id: item.invitation_id.clone(),
            detail: detail_code(item.detail),
            actor_id: item.actor_id().to_owned(),
            actor_name: item.actor_name().to_owned(),
            note: item.note().to_owned(),
        }
    }
}

impl From<&ItemRecord> for Item {
    fn from(r: &ItemRecord) -> Self {
        Item::new(
            &r.invitation_id,
            detail_from_code(r.detail),
            &r.actor_id,
            &r.actor_name,
            &r.note,
        )
    }
}

/// Where a notification is in its life.
pub(crate) const PENDING: u32 = 1;
pub(crate) const DELIVERED: u32 = 2;
pub(crate) const RETRACTED: u32 = 3;

/// A notification: held, in an undelivered digest, delivered, or retracted.
/// Its title and body are rendered from the items whenever needed.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct NotificationRecord {
    #[prost(uint64, tag = "1")]
    pub(crate) number: u64,
    #[prost(uint32, tag = "2")]
    pub(crate) topic: u32,
    #[prost(message, repeated, tag = "3")]
    pub(crate) items: Vec<ItemRecord>,
    #[prost(uint32, tag = "4")]
    pub(crate) state: u32,
    /// When a pending one is due.
    #[prost(uint64, tag = "5")]
    pub(crate) due_ms: u64,
    /// When it was delivered.
    #[prost(uint64, tag = "6")]
    pub(crate) delivered_ms: u64,
    #[prost(bool, tag = "7")]
    pub(crate) read: bool,
    /// The cursor of the latest update about it.
    #[prost(uint64, tag = "8")]
    pub(crate) cursor: u64,
    /// True for a digest (several items may join it).
    #[prost(bool, tag = "9")]
    pub(crate) digest: bool,
}

impl NotificationRecord {
    pub(crate) fn topic(&self) -> Result<Topic, StoreError> {
        topic_from_code(self.topic)
    }

    pub(crate) fn items(&self) -> Vec<Item> {
        self.items.iter().map(Item::from).collect()
    }

    pub(crate) fn push(&mut self, item: &Item) {
        if !self.items.iter().any(|i| i.invitation_id == item.invitation_id) {
            self.items.push(ItemRecord::from(item));
        }
    }

    /// Removes the invitation's item; true if it was there.
    pub(crate) fn remove(&mut self, invitation_id: &str) -> bool {
        let before = self.items.len();
        self.items.retain(|i| i.invitation_id != invitation_id);
        self.items.len() != before
    }

    /// Drops identities and notes from every item.
    pub(crate) fn make_minimal(&mut self) {
        for item in &mut self.items {
            let minimal = Item::new(&item.invitation_id, Detail::Minimal, "", "", "");
            *item = ItemRecord::from(&minimal);
        }
    }

    pub(crate) fn invitation_ids(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|i| i.invitation_id.as_str())
    }
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

    /// (delivered, deliver_at) as the sender sees them at `now`.
    pub(crate) fn seen_by_sender(&self, now: Timestamp) -> (bool, Option<Timestamp>) {
        let due = (self.deliver_at_ms > 0).then(|| Timestamp::from_millis(self.deliver_at_ms));
        if self.delivered || (self.masked && due.is_some_and(|d| d <= now)) {
            (true, None)
        } else {
            (false, due)
        }
    }
}

#[derive(Clone, PartialEq, Message)]
struct TopicRecord {
    #[prost(bool, tag = "1")]
    enabled: bool,
    #[prost(uint32, tag = "2")]
    delivery: u32,
    #[prost(uint32, tag = "3")]
    detail: u32,
}

#[derive(Clone, PartialEq, Message)]
struct PreferencesRecord {
    #[prost(message, optional, tag = "1")]
    invitation_received: Option<TopicRecord>,
    #[prost(message, optional, tag = "2")]
    invitation_accepted: Option<TopicRecord>,
    #[prost(message, optional, tag = "3")]
    invitation_withdrawn: Option<TopicRecord>,
    #[prost(message, optional, tag = "4")]
    withdrawal_note: Option<TopicRecord>,
    #[prost(uint64, optional, tag = "5")]
    digest_interval_ms: Option<u64>,
    #[prost(bool, tag = "6")]
    paused: bool,
}

fn topic_record(p: TopicPreference) -> Option<TopicRecord> {
    Some(TopicRecord {
        enabled: p.enabled,
        delivery: match p.delivery {
            Delivery::Immediate => 1,
            Delivery::Digest => 2,
        },
        detail: detail_code(p.detail),
    })
}

fn topic_preference(r: Option<TopicRecord>, default: TopicPreference) -> TopicPreference {
    r.map_or(default, |r| TopicPreference {
        enabled: r.enabled,
        delivery: if r.delivery == 2 {
            Delivery::Digest
        } else {
            Delivery::Immediate
        },
        detail: detail_from_code(r.detail),
    })
}

pub(crate) fn encode_preferences(p: &Preferences) -> Vec<u8> {
    let Preferences {
        invitation_received,
        invitation_accepted,
        invitation_withdrawn,
        withdrawal_note,
        digest_interval,
        paused,
    } = p;
    encode(&PreferencesRecord {
        invitation_received: topic_record(*invitation_received),
        invitation_accepted: topic_record(*invitation_accepted),
        invitation_withdrawn: topic_record(*invitation_withdrawn),
        withdrawal_note: topic_record(*withdrawal_note),
        digest_interval_ms: digest_interval.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        paused: *paused,
    })
}

pub(crate) fn decode_preferences(bytes: &[u8]) -> Result<Preferences, StoreError> {
    let r: PreferencesRecord = decode("preferences", bytes)?;
    let d = Preferences::default();
    Ok(Preferences {
        invitation_received: topic_preference(r.invitation_received, d.invitation_received),
        invitation_accepted: topic_preference(r.invitation_accepted, d.invitation_accepted),
        invitation_withdrawn: topic_preference(r.invitation_withdrawn, d.invitation_withdrawn),
        withdrawal_note: topic_preference(r.withdrawal_note, d.withdrawal_note),
        digest_interval: r.digest_interval_ms.map(std::time::Duration::from_millis),
        paused: r.paused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_round_trip() {
        let mut p = Preferences::default();
        p.invitation_received.detail = Detail::Minimal;
        p.invitation_received.delivery = Delivery::Immediate;
        p.digest_interval = Some(std::time::Duration::from_secs(600));
        p.paused = true;
        assert_eq!(decode_preferences(&encode_preferences(&p)).unwrap(), p);
        assert_eq!(
            decode_preferences(&encode_preferences(&Preferences::default())).unwrap(),
            Preferences::default()
        );
    }

    #[test]
    fn a_masked_delivery_looks_delivered_once_due() {
        let r = DeliveryRecord {
            sender: "a".into(),
            delivered: false,
            deliver_at_ms: 100,
            masked: true,
            ..DeliveryRecord::default()
        };
        assert_eq!(
            r.seen_by_sender(Timestamp::from_millis(99)),
            (false, Some(Timestamp::from_millis(100)))
        );
        assert_eq!(r.seen_by_sender(Timestamp::from_millis(100)), (true, None));
    }
}
