//! Authentication: every RPC of `NotificationService` needs a valid bearer
//! token, and the caller is always the token's subject.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use proto::notifications::v1 as pb;
use tonic::{Code, Status};

use crate::helpers::{Client, SECRET, spawn_app, well_formed_id};

/// Calls every RPC of the service once with `client`.
async fn call_every_rpc(mut client: Client) -> Vec<(&'static str, Result<(), Status>)> {
    vec![
        (
            "GetPreferences",
            client.get_preferences(pb::GetPreferencesRequest {}).await.map(drop),
        ),
        (
            "UpdatePreferences",
            client
                .update_preferences(pb::UpdatePreferencesRequest {
                    preferences: Some(pb::Preferences {
                        paused: true,
                        ..pb::Preferences::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["paused".into()],
                    }),
                })
                .await
                .map(drop),
        ),
        (
            "ListNotifications",
            client
                .list_notifications(pb::ListNotificationsRequest::default())
                .await
                .map(drop),
        ),
        (
            "Subscribe",
            client.subscribe(pb::SubscribeRequest::default()).await.map(drop),
        ),
        (
            "MarkRead",
            client
                .mark_read(pb::MarkReadRequest {
                    notification_ids: Vec::new(),
                    all: true,
                })
                .await
                .map(drop),
        ),
        (
            "GetUnreadCount",
            client.get_unread_count(pb::GetUnreadCountRequest {}).await.map(drop),
        ),
        (
            "GetDeliveryStatus",
            client
                .get_delivery_status(pb::GetDeliveryStatusRequest {
                    invitation_id: well_formed_id("inv-a"),
                })
                .await
                .map(drop),
        ),
    ]
}

#[tokio::test]
async fn every_rpc_needs_a_valid_token() {
    let app = spawn_app().await;
    let forged = service_kit::auth::JwtKeys::new("some-other-secret-0123456789")
        .unwrap()
        .mint("alice", None, std::time::Duration::from_secs(60), None)
        .unwrap();
    for (what, token) in [("no token", None), ("a forged token", Some(forged))] {
        let results = call_every_rpc(app.client_with_token(token)).await;
        assert_eq!(results.len(), 7);
        for (rpc, result) in results {
            let status = result.expect_err(rpc);
            assert_eq!(status.code(), Code::Unauthenticated, "{rpc} with {what}: {status:?}");
        }
    }
    assert!(
        !app.preferences("alice").await.paused,
        "nothing was changed by the refused calls"
    );

    // With a token every call goes through (GetDeliveryStatus is NOT_FOUND
    // for an invitation nobody sent, which is an answer, not a refusal).
    for (rpc, result) in call_every_rpc(app.client("alice")).await {
        match result {
            Ok(()) => {}
            Err(status) => assert_eq!(
                (rpc, status.code()),
                ("GetDeliveryStatus", Code::NotFound),
                "{status:?}"
            ),
        }
    }
    assert!(
        app.preferences("alice").await.paused,
        "the caller is the token's subject"
    );
    assert!(!app.preferences("bob").await.paused);
}

/// Signs `claims` with HS256 and the service's secret.
fn sign(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::default(), claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

#[tokio::test]
async fn a_token_with_a_hostile_subject_or_name_or_not_valid_yet_is_unauthenticated() {
    let app = spawn_app().await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let cases = [
        (
            "a bidi override in the subject",
            serde_json::json!({ "sub": "alice\u{202e}", "exp": now + 3600 }),
            "the token's subject is not a valid user id: must not contain control or invisible formatting \
             characters (found U+202E)",
        ),
        (
            "a control character in the name",
            serde_json::json!({ "sub": "alice", "name": "Alice\u{7}", "exp": now + 3600 }),
            "the token's name claim is not a valid display name: must not contain control characters (found \
             U+0007)",
        ),
        (
            "valid from an hour on",
            serde_json::json!({ "sub": "alice", "exp": now + 7200, "nbf": now + 3600 }),
            "the token is not valid yet",
        ),
    ];

    for (case, claims, says) in &cases {
        for (rpc, result) in call_every_rpc(app.client_with_token(Some(sign(claims)))).await {
            let status = result.expect_err(rpc);
            assert_eq!(
                (status.code(), status.message()),
                (Code::Unauthenticated, *says),
                "{rpc} with {case}"
            );
        }
    }
    assert!(
        !app.preferences("alice").await.paused,
        "nothing was changed by the refused calls"
    );
}
