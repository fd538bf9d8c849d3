//! Reminders of invitations left pending (`INVITATION_REMINDERS`), as the
//! events notification-service receives: through the real server and its
//! sweep, with the manual clock, published to the `EventIngest` double.

use std::time::Duration;

use invitation_service::domain::{Policy, Reminders};
use proto::invitations::v1::invitation_event::Kind;

use crate::{
    helpers::{DAY, TestApp, eventually, spawn_app_with_config},
    invitations::{accept, ignore, send, withdraw},
    publisher::{Ingest, bind},
};

const WAIT: Duration = Duration::from_secs(15);
/// Long enough for many sweeps (every 20 ms in tests): what has not come
/// by then is not coming.
const QUIET: Duration = Duration::from_millis(300);

/// The app with `policy`, publishing to a fresh double.
async fn app_with(policy: Policy) -> (TestApp, Ingest) {
    let ingest = Ingest::new();
    let (listener, endpoint) = bind().await;
    ingest.serve(listener);
    let (app, store) = spawn_app_with_config(|config| {
        config.notification_endpoint = endpoint;
        config.policy = policy;
    })
    .await;
    // The test reads what the double received; the store stays the server's.
    drop(store);
    (app, ingest)
}

/// The reminders the double has applied, as (invitation id, ordinal).
fn reminders(ingest: &Ingest) -> Vec<(String, u32)> {
    ingest
        .applied()
        .into_iter()
        .filter_map(|event| match event.kind {
            Some(Kind::Reminded(r)) => Some((event.invitation.expect("the invitation").id, r.ordinal)),
            _ => None,
        })
        .collect()
}

async fn wait_for_reminders(ingest: &Ingest, expected: &[(String, u32)]) {
    eventually(WAIT, || async { (reminders(ingest) == expected).then_some(()) }).await;
}

async fn assert_no_more_reminders(ingest: &Ingest, expected: &[(String, u32)]) {
    tokio::time::sleep(QUIET).await;
    assert_eq!(reminders(ingest), expected, "no other reminder");
}

#[tokio::test]
async fn reminders_go_out_at_each_offset_while_the_invitation_is_pending() {
    let (app, ingest) = app_with(Policy::default()).await;
    let bob = send(&app, "alice", "bob").await.id;
    let carol = send(&app, "alice", "carol").await.id;
    let dave = send(&app, "alice", "dave").await.id;
    let erin = send(&app, "alice", "erin").await.id;
    withdraw(&app, "alice", &carol).await;
    accept(&app, "dave", &dave).await;
    ignore(&app, "erin", &erin).await;

    app.clock.advance(7 * DAY - Duration::from_millis(1));
    assert_no_more_reminders(&ingest, &[]).await;

    app.clock.advance(Duration::from_millis(1));
    let first = [(bob.clone(), 1)];
    wait_for_reminders(&ingest, &first).await;
    let event = ingest
        .applied()
        .into_iter()
        .find(|e| matches!(e.kind, Some(Kind::Reminded(_))))
        .expect("the reminder");
    let invitation = event.invitation.expect("the invitation");
    assert_eq!(
        (invitation.sender_id.as_str(), invitation.recipient_id.as_str()),
        ("alice", "bob"),
        "the reminder names the invitation as it is"
    );

    app.clock.advance(7 * DAY);
    let both = [(bob.clone(), 1), (bob.clone(), 2)];
    wait_for_reminders(&ingest, &both).await;

    // No third offset; and none for the withdrawn, accepted or ignored ones.
    app.clock.advance(30 * DAY);
    assert_no_more_reminders(&ingest, &both).await;
}

#[tokio::test]
async fn a_withdrawal_between_offsets_stops_the_next_reminder() {
    let (app, ingest) = app_with(Policy::default()).await;
    let bob = send(&app, "alice", "bob").await.id;
    app.clock.advance(7 * DAY);
    let first = [(bob.clone(), 1)];
    wait_for_reminders(&ingest, &first).await;

    withdraw(&app, "alice", &bob).await;
    app.clock.advance(7 * DAY);
    assert_no_more_reminders(&ingest, &first).await;
}

#[tokio::test]
async fn a_reminder_due_during_downtime_fires_once_after_the_restart() {
    let (app, ingest) = app_with(Policy::default()).await;
    let bob = send(&app, "alice", "bob").await.id;
    let (config, dir, clock) = app.stop().await;

    // Both offsets pass while the server is down: only the latest fires.
    clock.advance(20 * DAY);
    let app = crate::helpers::start(config, dir, clock).await;
    let latest = [(bob.clone(), 2)];
    wait_for_reminders(&ingest, &latest).await;
    app.clock.advance(DAY);
    assert_no_more_reminders(&ingest, &latest).await;
    // And a restart after it fired does not fire it again.
    let app = app.restart().await;
    app.clock.advance(DAY);
    assert_no_more_reminders(&ingest, &latest).await;
}

#[tokio::test]
async fn no_reminder_after_the_invitation_expires_and_none_when_turned_off() {
    // Expiry at 10 days: the 14-day reminder is never filed.
    let policy = Policy {
        pending_ttl: 10 * DAY,
        ..Policy::default()
    };
    let (app, ingest) = app_with(policy).await;
    let bob = send(&app, "alice", "bob").await.id;
    app.clock.advance(7 * DAY);
    let first = [(bob.clone(), 1)];
    wait_for_reminders(&ingest, &first).await;
    app.clock.advance(7 * DAY);
    eventually(WAIT, || async {
        ingest
            .applied()
            .iter()
            .any(|e| matches!(e.kind, Some(Kind::Expired(_))))
            .then_some(())
    })
    .await;
    assert_no_more_reminders(&ingest, &first).await;

    let (app, ingest) = app_with(Policy {
        reminders: Reminders::default(),
        ..Policy::default()
    })
    .await;
    send(&app, "alice", "bob").await;
    app.clock.advance(30 * DAY);
    assert_no_more_reminders(&ingest, &[]).await;
}
