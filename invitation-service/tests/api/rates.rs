//! Limits per caller: a user over their rate is refused with
//! RESOURCE_EXHAUSTED and when to retry, changes nothing, and slows no one
//! else; a request over the message limit is RESOURCE_EXHAUSTED too.

use std::time::Duration;

use proto::invitations::v1 as pb;
use service_kit::{limits::RateSettings, server::MAX_MESSAGE_BYTES};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::{
    helpers::{TestApp, spawn_app_with_config},
    invitations::{sent, try_send},
};

async fn limited(reads_per_second: u32, writes_per_second: u32) -> TestApp {
    let (app, _store) = spawn_app_with_config(|config| {
        config.rate = RateSettings {
            reads_per_second,
            writes_per_second,
        };
    })
    .await;
    app
}

/// The retry delay a refusal carries, after checking its status and reason.
fn retry_after(status: &tonic::Status, class: &str) -> Duration {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains(&format!("too many {class} from this user")),
        "{}",
        status.message()
    );
    let info = status.get_details_error_info().expect("an ErrorInfo detail");
    assert_eq!(info.reason, "RATE_LIMITED");
    assert_eq!(info.metadata.get("class").map(String::as_str), Some(class));
    let delay = status
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("a RetryInfo detail with a delay");
    assert!(delay > Duration::ZERO && delay <= Duration::from_secs(1), "{delay:?}");
    delay
}

#[tokio::test]
async fn a_user_over_their_write_rate_waits_and_nothing_changes() {
    // 5 a second, a burst of 10.
    let app = limited(1000, 5).await;
    for i in 0..10 {
        try_send(&app, "alice", &format!("r{i}"), "", "").await.unwrap();
    }
    let refused = try_send(&app, "alice", "r10", "", "").await.unwrap_err();
    let delay = retry_after(&refused, "writes");
    assert_eq!(sent(&app, "alice").await.len(), 10, "the refused send stored nothing");

    // Others, and the same user's reads, are not held back.
    try_send(&app, "bob", "r0", "", "").await.unwrap();
    assert_eq!(sent(&app, "alice").await.len(), 10);

    // After the wait the refusal named, the send goes through.
    tokio::time::sleep(delay).await;
    try_send(&app, "alice", "r10", "", "").await.unwrap();
    assert_eq!(sent(&app, "alice").await.len(), 11);
}

#[tokio::test]
async fn a_user_over_their_read_rate_is_refused_with_when_to_retry() {
    let app = limited(3, 1000).await;
    for _ in 0..6 {
        sent(&app, "alice").await;
    }
    let refused = app
        .client("alice")
        .get_invitation_stats(pb::GetInvitationStatsRequest {})
        .await
        .unwrap_err();
    let delay = retry_after(&refused, "reads");
    // Writes have their own budget.
    try_send(&app, "alice", "bob", "", "").await.unwrap();
    tokio::time::sleep(delay).await;
    assert_eq!(sent(&app, "alice").await.len(), 1);
}

#[tokio::test]
async fn a_request_over_the_message_limit_is_resource_exhausted() {
    let (app, _store) = spawn_app_with_config(|_| {}).await;
    let huge = "x".repeat(MAX_MESSAGE_BYTES + 1);
    let refused = try_send(&app, "alice", "bob", &huge, "").await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused
            .message()
            .contains(&format!("over this service's limit of {MAX_MESSAGE_BYTES} bytes")),
        "{}",
        refused.message()
    );
    assert!(sent(&app, "alice").await.is_empty());
    // Just under the limit, the message is read and judged by its length.
    let under = "x".repeat(MAX_MESSAGE_BYTES - 100);
    let refused = try_send(&app, "alice", "bob", &under, "").await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
}
