//! The stored form of notifications and of the update log's entries. A
//! notification's state is a code here and an enum in the domain; an
//! unknown code is [`StoreError::Corrupt`].

use prost::Message;
use service_kit::storage::record::{decode, encode};

use crate::{
    domain::{Channels, Item, Notification, State, Timestamp, Update, UpdateKind},
    storage::StoreError,
};

use super::{detail_code, detail_from_code, topic_code, topic_from_code};

/// The stored codes of [`State`].
const PENDING: u32 = 1;
const DELIVERED: u32 = 2;
const RETRACTED: u32 = 3;

#[derive(Clone, PartialEq, Message)]
struct ItemRecord {
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

/// A notification: held, in an undelivered digest, delivered, or retracted.
#[derive(Clone, PartialEq, Message)]
struct NotificationRecord {
    #[prost(uint64, tag = "1")]
    number: u64,
    #[prost(uint32, tag = "2")]
    topic: u32,
    #[prost(message, repeated, tag = "3")]
    items: Vec<ItemRecord>,
    #[prost(uint32, tag = "4")]
    state: u32,
    /// When a pending one is due.
    #[prost(uint64, tag = "5")]
    due_ms: u64,
    /// When a delivered one was delivered.
    #[prost(uint64, tag = "6")]
    delivered_ms: u64,
    #[prost(bool, tag = "7")]
    read: bool,
    /// The cursor of the latest update about it.
    #[prost(uint64, tag = "8")]
    cursor: u64,
    /// True for a pending digest (several items may join it).
    #[prost(bool, tag = "9")]
    digest: bool,
    /// Where a delivered one went: [`Channels::bits`].
    #[prost(uint32, tag = "10")]
    channels: u32,
}

impl From<&Notification> for NotificationRecord {
    fn from(n: &Notification) -> Self {
        let (state, due_ms, digest, delivered_ms, read) = match n.state() {
            State::Pending { due, digest } => (PENDING, due.as_millis(), digest, 0, false),
            State::Delivered { at, read } => (DELIVERED, 0, false, at.as_millis(), read),
            State::Retracted => (RETRACTED, 0, false, 0, false),
        };
        Self {
            number: n.number(),
            topic: u32::from(topic_code(n.topic())),
            items: n.items().iter().map(ItemRecord::from).collect(),
            state,
            due_ms,
            delivered_ms,
            read,
            cursor: n.cursor(),
            digest,
            channels: u32::from(n.channels().bits()),
        }
    }
}

impl TryFrom<&NotificationRecord> for Notification {
    type Error = StoreError;

    fn try_from(r: &NotificationRecord) -> Result<Self, StoreError> {
        let state = match r.state {
            PENDING => State::Pending {
                due: Timestamp::from_millis(r.due_ms),
                digest: r.digest,
            },
            DELIVERED => State::Delivered {
                at: Timestamp::from_millis(r.delivered_ms),
                read: r.read,
            },
            RETRACTED => State::Retracted,
            other => return Err(StoreError::Corrupt(format!("notification: unknown state {other}"))),
        };
        let items = r.items.iter().map(Item::from).collect();
        Ok(Notification::from_parts(
            r.number,
            topic_from_code(r.topic)?,
            items,
            state,
            r.cursor,
            Channels::from_bits(u8::try_from(r.channels).unwrap_or(0)),
        ))
    }
}

pub(crate) fn encode_notification(n: &Notification) -> Vec<u8> {
    encode(&NotificationRecord::from(n))
}

pub(crate) fn decode_notification(bytes: &[u8]) -> Result<Notification, StoreError> {
    Notification::try_from(&decode::<NotificationRecord>("notification", bytes)?)
}

/// An entry of a user's update log: the notification as the update left it
/// (rendered when read), or the public numbers it retracted.
#[derive(Clone, PartialEq, Message)]
pub(super) struct UpdateRecord {
    #[prost(uint64, tag = "1")]
    cursor: u64,
    #[prost(oneof = "UpdateKindRecord", tags = "2, 3, 4")]
    kind: Option<UpdateKindRecord>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum UpdateKindRecord {
    #[prost(message, tag = "2")]
    Delivered(NotificationRecord),
    #[prost(message, tag = "3")]
    Revised(NotificationRecord),
    #[prost(message, tag = "4")]
    Retracted(RetractedRecord),
}

#[derive(Clone, PartialEq, Message)]
struct RetractedRecord {
    #[prost(uint64, repeated, tag = "1")]
    numbers: Vec<u64>,
}

impl From<&Update> for UpdateRecord {
    fn from(update: &Update) -> Self {
        let kind = match &update.kind {
            UpdateKind::Delivered(n) => UpdateKindRecord::Delivered(n.into()),
            UpdateKind::Revised(n) => UpdateKindRecord::Revised(n.into()),
            UpdateKind::Retracted(numbers) => UpdateKindRecord::Retracted(RetractedRecord {
                numbers: numbers.clone(),
            }),
        };
        Self {
            cursor: update.cursor,
            kind: Some(kind),
        }
    }
}

impl TryFrom<&UpdateRecord> for Update {
    type Error = StoreError;

    fn try_from(r: &UpdateRecord) -> Result<Self, StoreError> {
        let kind = match &r.kind {
            Some(UpdateKindRecord::Delivered(n)) => UpdateKind::Delivered(n.try_into()?),
            Some(UpdateKindRecord::Revised(n)) => UpdateKind::Revised(n.try_into()?),
            Some(UpdateKindRecord::Retracted(r)) => UpdateKind::Retracted(r.numbers.clone()),
            None => return Err(StoreError::Corrupt(format!("update {}: no kind", r.cursor))),
        };
        Ok(Update { cursor: r.cursor, kind })
    }
}

pub(crate) fn encode_update(update: &Update) -> Vec<u8> {
    encode(&UpdateRecord::from(update))
}

pub(crate) fn decode_update(bytes: &[u8]) -> Result<Update, StoreError> {
    Update::try_from(&decode::<UpdateRecord>("update", bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Detail, Topic};

    fn delivered() -> Notification {
        let mut n = Notification::pending(1 << 32, Topic::InvitationReceived, Timestamp::from_millis(5), true);
        n.push(Item::new("inv-1", Detail::Full, "alice", "Alice", "Hello"));
        n.push(Item::new("inv-2", Detail::Minimal, "", "", ""));
        n.deliver(3, Timestamp::from_millis(9), Detail::Full, Channels::IN_APP);
        n.set_cursor(4);
        n
    }

    #[test]
    fn notifications_round_trip_in_every_state() {
        let mut n = delivered();
        let pending = Notification::pending(7, Topic::WithdrawalNote, Timestamp::from_millis(5), false);
        assert_eq!(decode_notification(&encode_notification(&pending)).unwrap(), pending);
        assert_eq!(decode_notification(&encode_notification(&n)).unwrap(), n);
        n.mark_read();
        assert_eq!(decode_notification(&encode_notification(&n)).unwrap(), n);
        n.remove("inv-1");
        n.remove("inv-2");
        assert_eq!(n.state(), State::Retracted);
        assert_eq!(decode_notification(&encode_notification(&n)).unwrap(), n);
    }

    #[test]
    fn updates_round_trip() {
        for kind in [
            UpdateKind::Delivered(delivered()),
            UpdateKind::Revised(delivered()),
            UpdateKind::Retracted(vec![3, 9]),
        ] {
            let update = Update { cursor: 12, kind };
            assert_eq!(decode_update(&encode_update(&update)).unwrap(), update);
        }
    }

    #[test]
    fn unknown_codes_and_missing_kinds_are_corrupt() {
        let mut record = NotificationRecord::from(&delivered());
        record.state = 9;
        let e = decode_notification(&encode(&record)).unwrap_err();
        assert!(
            matches!(&e, StoreError::Corrupt(m) if m.contains("unknown state 9")),
            "{e}"
        );
        record.state = DELIVERED;
        record.topic = 77;
        assert!(matches!(
            decode_notification(&encode(&record)),
            Err(StoreError::Corrupt(_))
        ));
        let empty = UpdateRecord { cursor: 1, kind: None };
        assert!(matches!(decode_update(&encode(&empty)), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_update(&[9, 1, 2]), Err(StoreError::Corrupt(_))));
    }
}
