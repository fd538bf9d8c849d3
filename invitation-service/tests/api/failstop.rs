//! Fail-stop: after a storage fault the service takes no more work. Here
//! the fault is tripped by hand, to see the wiring; the fault suite
//! (`tests/faults/`) fills a real disk.

use std::{sync::Arc, time::Duration};

use invitation_service::{App, app::StartError, domain::ManualClock};
use proto::invitations::v1 as pb;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::helpers::{START, connect_as, test_config};

#[tokio::test]
async fn after_a_storage_fault_the_service_refuses_work_goes_not_serving_and_fails_its_run() {
    service_kit::telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), invitation_service::domain::Policy::default());
    let app = App::build(config, Arc::new(ManualClock::starting_at(START)))
        .await
        .unwrap();
    let fail = app.fail_stop();
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let (channel, mut client) = connect_as(addr, "alice").await;
    let send = |to: &str| pb::SendInvitationRequest {
        recipient_id: to.into(),
        message: String::new(),
        idempotency_key: String::new(),
    };
    client.send_invitation(send("bob")).await.unwrap();

    fail.trip(&"No space left on device (os error 28)");

    // Work still in flight, or arriving on an open connection before it
    // closes, is refused as UNAVAILABLE: never INTERNAL, never applied.
    match client.send_invitation(send("carol")).await {
        Err(status) if status.code() == Code::Unavailable => {
            assert!(status.message().contains("storage failed"), "{}", status.message());
        }
        other => panic!("expected UNAVAILABLE, got {other:?}"),
    }
    let mut health = HealthClient::new(channel);
    let serving = health
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map(|r| r.into_inner().status);
    assert!(
        !matches!(serving, Ok(s) if s == i32::from(ServingStatus::Serving)),
        "health must not say SERVING: {serving:?}"
    );

    // The run ends by itself, as an error naming the fault, for the
    // supervisor to restart; no shutdown signal was given.
    let ended = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("the server stops by itself")
        .unwrap();
    match ended {
        Err(StartError::StorageFailed(reason)) => assert!(reason.contains("No space left"), "{reason}"),
        other => panic!("expected StorageFailed, got {other:?}"),
    }
    drop(stop);
}
