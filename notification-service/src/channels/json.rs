//! The webhook's JSON body: the update as proto3 JSON (the mapping grpcurl
//! and every gRPC gateway use), from the descriptor set reflection serves,
//! so the body follows the contract without a hand-written mirror of it.

use std::sync::OnceLock;

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use proto::notifications::v1 as pb;

fn update_descriptor() -> &'static MessageDescriptor {
    static DESCRIPTOR: OnceLock<MessageDescriptor> = OnceLock::new();
    DESCRIPTOR.get_or_init(|| {
        DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET)
            .expect("the built-in descriptor set decodes")
            .get_message_by_name("notifications.v1.NotificationUpdate")
            .expect("the descriptor set holds NotificationUpdate")
    })
}

/// `update` in proto3 JSON.
#[must_use]
pub(crate) fn update(update: &pb::NotificationUpdate) -> serde_json::Value {
    let message = DynamicMessage::decode(update_descriptor().clone(), update.encode_to_vec().as_slice())
        .expect("a message we encoded decodes");
    message
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .expect("proto3 JSON of a valid message")
}

/// The `type` of a webhook call about `update`.
#[must_use]
pub(crate) fn event_type(update: &pb::NotificationUpdate) -> &'static str {
    match update.kind {
        Some(pb::notification_update::Kind::Revised(_)) => "notification.revised",
        Some(pb::notification_update::Kind::Retracted(_)) => "notification.retracted",
        Some(pb::notification_update::Kind::Delivered(_)) | None => "notification.delivered",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_read_as_proto3_json() {
        let delivered = pb::NotificationUpdate {
            cursor: 7,
            kind: Some(pb::notification_update::Kind::Delivered(pb::Notification {
                id: "3".into(),
                cursor: 7,
                topic: pb::Topic::InvitationReceived.into(),
                title: "Alice wants to connect".into(),
                actor_id: "alice".into(),
                invitation_ids: vec!["inv-1".into()],
                item_count: 1,
                created_at: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            })),
        };
        let json = update(&delivered);
        assert_eq!(json["cursor"], "7", "64-bit integers are strings");
        assert_eq!(json["delivered"]["topic"], "TOPIC_INVITATION_RECEIVED");
        assert_eq!(json["delivered"]["actorId"], "alice");
        assert_eq!(json["delivered"]["invitationIds"][0], "inv-1");
        assert_eq!(json["delivered"]["itemCount"], 1);
        assert_eq!(json["delivered"]["createdAt"], "2023-11-14T22:13:20Z");
        assert_eq!(event_type(&delivered), "notification.delivered");

        let retracted = pb::NotificationUpdate {
            cursor: 0,
            kind: Some(pb::notification_update::Kind::Retracted(pb::Retraction {
                notification_ids: vec!["3".into()],
            })),
        };
        let json = update(&retracted);
        assert_eq!(json, serde_json::json!({"retracted": {"notificationIds": ["3"]}}));
        assert_eq!(event_type(&retracted), "notification.retracted");
    }
}
