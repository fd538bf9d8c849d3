//! Request builders and inbox readers shared by the end-to-end tests.

use std::time::Duration;

pub(crate) use e2e::inbox::{inbox, mentions};
use e2e::{Invitations, Notifications};
use proto::{invitations::v1 as ipb, notifications::v1 as npb};

pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Sends an invitation and returns its id.
pub(crate) async fn send(client: &mut Invitations, to: &str, message: &str) -> Result<String, tonic::Status> {
    let request = ipb::SendInvitationRequest {
        recipient_id: to.into(),
        message: message.into(),
        idempotency_key: String::new(),
    };
    Ok(client.send_invitation(request).await?.into_inner().id)
}

pub(crate) async fn withdraw(client: &mut Invitations, id: &str) {
    client
        .withdraw_invitation(ipb::WithdrawInvitationRequest {
            invitation_id: id.into(),
            note: String::new(),
        })
        .await
        .expect("withdraw");
}

/// Sets the user's new-invitation notifications to IMMEDIATE with `detail`.
pub(crate) async fn immediate(client: &mut Notifications, detail: npb::Detail) {
    immediate_topic(client, "invitation_received", detail).await;
}

/// Sets one of the user's topics (by its field name) to IMMEDIATE with
/// `detail`.
pub(crate) async fn immediate_topic(client: &mut Notifications, field: &str, detail: npb::Detail) {
    let topic = Some(npb::TopicPreference {
        enabled: true,
        delivery: npb::Delivery::Immediate.into(),
        detail: detail.into(),
        channels: Vec::new(),
    });
    let mut preferences = npb::Preferences::default();
    match field {
        "invitation_received" => preferences.invitation_received = topic,
        "invitation_reminder" => preferences.invitation_reminder = topic,
        other => panic!("no topic {other} here"),
    }
    let request = npb::UpdatePreferencesRequest {
        preferences: Some(preferences),
        update_mask: Some(prost_types::FieldMask {
            paths: vec![field.into()],
        }),
    };
    client.update_preferences(request).await.expect("update preferences");
}

pub(crate) async fn unread(client: &mut Notifications) -> u32 {
    client
        .get_unread_count(npb::GetUnreadCountRequest {})
        .await
        .expect("unread count")
        .into_inner()
        .unread_count
}

/// The next update on a stream, within [`WAIT`].
pub(crate) async fn next_update(stream: &mut tonic::Streaming<npb::NotificationUpdate>) -> npb::NotificationUpdate {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("an update within the wait")
        .expect("the stream is healthy")
        .expect("the stream is open")
}
