//! Stored and domain values as contract messages.

use proto::notifications::v1 as pb;

use crate::{
    domain::{Timestamp, Topic, render},
    storage::{StoreError, records::NotificationRecord},
};

pub(crate) use service_kit::time::{from_proto as from_timestamp, to_proto as timestamp};

#[must_use]
pub(crate) fn topic(topic: Topic) -> pb::Topic {
    match topic {
        Topic::InvitationReceived => pb::Topic::InvitationReceived,
        Topic::InvitationAccepted => pb::Topic::InvitationAccepted,
        Topic::InvitationWithdrawn => pb::Topic::InvitationWithdrawn,
        Topic::WithdrawalNote => pb::Topic::WithdrawalNote,
    }
}

/// The notification as its owner sees it.
pub(crate) fn notification(record: &NotificationRecord) -> Result<pb::Notification, StoreError> {
    let topic_value = record.topic()?;
    let items = record.items();
    let rendered = render(topic_value, &items);
    Ok(pb::Notification {
        id: record.number.to_string(),
        cursor: record.cursor,
        topic: topic(topic_value).into(),
        title: rendered.title,
        body: rendered.body,
        actor_id: rendered.actor_id,
        actor_name: rendered.actor_name,
        invitation_ids: items.iter().map(|i| i.invitation_id.clone()).collect(),
        item_count: u32::try_from(items.len()).unwrap_or(u32::MAX),
        created_at: Some(timestamp(Timestamp::from_millis(record.delivered_ms))),
        read: record.read,
    })
}
