//! Domain values as contract messages, for the gRPC layer: a notification
//! is rendered (title, body, actor) each time it is shown.

use proto::notifications::v1 as pb;

use crate::domain::{Channel, ChannelState, DeliveryStatus, Notification, Topic, Update, UpdateKind, render};

pub(crate) use service_kit::time::{from_proto as from_timestamp, to_proto as timestamp};

#[must_use]
pub(crate) fn topic(topic: Topic) -> pb::Topic {
    match topic {
        Topic::InvitationReceived => pb::Topic::InvitationReceived,
        Topic::InvitationAccepted => pb::Topic::InvitationAccepted,
        Topic::InvitationWithdrawn => pb::Topic::InvitationWithdrawn,
        Topic::WithdrawalNote => pb::Topic::WithdrawalNote,
        Topic::InvitationReminder => pb::Topic::InvitationReminder,
    }
}

#[must_use]
pub(crate) fn channel(channel: Channel) -> pb::Channel {
    match channel {
        Channel::InApp => pb::Channel::InApp,
        Channel::Email => pb::Channel::Email,
        Channel::Push => pb::Channel::Push,
    }
}

#[must_use]
pub(crate) fn delivery_status(status: &DeliveryStatus) -> pb::GetDeliveryStatusResponse {
    let DeliveryStatus {
        delivered,
        deliver_at,
        channels,
    } = status;
    pb::GetDeliveryStatusResponse {
        delivered: *delivered,
        deliver_at: deliver_at.map(timestamp),
        channels: channels
            .iter()
            .map(|&(c, state, at)| pb::ChannelStatus {
                channel: channel(c).into(),
                state: match state {
                    ChannelState::Pending => pb::ChannelState::Pending,
                    ChannelState::Sent => pb::ChannelState::Sent,
                    ChannelState::Failed => pb::ChannelState::Failed,
                    ChannelState::None => pb::ChannelState::None,
                }
                .into(),
                at: at.map(timestamp),
            })
            .collect(),
    }
}

/// The notification as its owner sees it.
#[must_use]
pub(crate) fn notification(notification: &Notification) -> pb::Notification {
    let items = notification.items();
    let rendered = render(notification.topic(), items);
    pb::Notification {
        id: notification.number().to_string(),
        cursor: notification.cursor(),
        topic: topic(notification.topic()).into(),
        title: rendered.title,
        body: rendered.body,
        actor_id: rendered.actor_id,
        actor_name: rendered.actor_name,
        invitation_ids: items.iter().map(|i| i.invitation_id.clone()).collect(),
        item_count: u32::try_from(items.len()).unwrap_or(u32::MAX),
        created_at: notification.delivered_at().map(timestamp),
        read: notification.is_read(),
    }
}

/// An update as its owner's streams receive it.
#[must_use]
pub(crate) fn update(update: &Update) -> pb::NotificationUpdate {
    use pb::notification_update::Kind;
    let kind = match &update.kind {
        UpdateKind::Delivered(n) => Kind::Delivered(notification(n)),
        UpdateKind::Revised(n) => Kind::Revised(notification(n)),
        UpdateKind::Retracted(numbers) => Kind::Retracted(pb::Retraction {
            notification_ids: numbers.iter().map(u64::to_string).collect(),
        }),
    };
    pb::NotificationUpdate {
        cursor: update.cursor,
        kind: Some(kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Detail, Item, Timestamp};

    const AT: Timestamp = Timestamp::from_millis(1_767_225_600_000);

    fn delivered(detail: Detail) -> Notification {
        let mut n = Notification::pending(1 << 32, Topic::InvitationReceived, AT, false);
        n.push(Item::new("inv-1", Detail::Full, "alice", "Alice", "Hello"));
        n.deliver(3, AT, detail, crate::domain::Channels::IN_APP);
        n.set_cursor(8);
        n
    }

    #[test]
    fn a_delivered_notification_is_rendered_with_its_public_number() {
        let pb = notification(&delivered(Detail::Full));
        assert_eq!(
            pb,
            pb::Notification {
                id: "3".to_owned(),
                cursor: 8,
                topic: pb::Topic::InvitationReceived.into(),
                title: "Alice wants to connect".to_owned(),
                body: "Hello".to_owned(),
                actor_id: "alice".to_owned(),
                actor_name: "Alice".to_owned(),
                invitation_ids: vec!["inv-1".to_owned()],
                item_count: 1,
                created_at: Some(timestamp(AT)),
                read: false,
            }
        );
    }

    #[test]
    fn minimal_shows_no_identity_and_a_retraction_names_public_numbers() {
        let pb = notification(&delivered(Detail::Minimal));
        assert_eq!(
            (pb.actor_id.as_str(), pb.actor_name.as_str(), pb.body.as_str()),
            ("", "", "")
        );
        assert!(!pb.title.contains("Alice"));
        let retracted = update(&Update {
            cursor: 9,
            kind: UpdateKind::Retracted(vec![3]),
        });
        assert_eq!(
            retracted,
            pb::NotificationUpdate {
                cursor: 9,
                kind: Some(pb::notification_update::Kind::Retracted(pb::Retraction {
                    notification_ids: vec!["3".to_owned()],
                })),
            }
        );
    }
}
