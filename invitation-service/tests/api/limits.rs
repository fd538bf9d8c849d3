//! The time windows of sending: the rolling weekly limit, the stats a user
//! sees, idempotency keys (a retry within 24 hours counts once), and the
//! expiry of pending invitations.

use std::time::Duration;

use invitation_service::domain::{Policy, Timestamp};
use proto::invitations::v1::{self as pb, InvitationState, RelationshipState};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::{
    helpers::{DAY, START, TestApp, eventually, spawn_app, spawn_app_with},
    invitations::{
        HOUR, accept, at, get, ids, ignore, received, refused, relationship, send, sent, stats, try_accept, try_send,
        try_withdraw, violated_fields, withdraw, world,
    },
};

const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

async fn limited_to_three() -> TestApp {
    spawn_app_with(Policy {
        weekly_limit: 3,
        ..Policy::default()
    })
    .await
}

/// Sends to r1, r2 and r3, an hour apart from `START`; returns their ids.
async fn send_three(app: &TestApp) -> Vec<String> {
    let mut sent = Vec::new();
    for to in ["r1", "r2", "r3"] {
        sent.push(send(app, "alice", to).await.id);
        app.clock.advance(HOUR);
    }
    sent
}

#[tokio::test]
async fn the_send_after_the_weekly_limit_is_resource_exhausted_with_the_retry_time() {
    let app = limited_to_three().await;
    send_three(&app).await;
    let users = ["alice", "r1", "r4"];
    let before = world(&app, &users).await;

    let status = refused(
        try_send(&app, "alice", "r4", "", "").await,
        Code::ResourceExhausted,
        "you have sent 3 invitations in the last 7 days, the weekly limit: you can send again from \
         2026-01-08T00:00:00Z",
    );

    let info = status
        .get_details_error_info()
        .expect("error info with the time from which sending is possible again");
    assert_eq!(info.reason, "WEEKLY_LIMIT");
    assert_eq!(
        info.metadata.get("available_at").map(String::as_str),
        Some("2026-01-08T00:00:00Z")
    );
    assert_eq!(world(&app, &users).await, before, "the refusal changed nothing");
    assert!(received(&app, "r4").await.is_empty());
}

#[tokio::test]
async fn withdrawing_does_not_refund_the_weekly_limit() {
    let app = limited_to_three().await;
    let sent = send_three(&app).await;

    withdraw(&app, "alice", &sent[0]).await;

    refused(
        try_send(&app, "alice", "r4", "", "").await,
        Code::ResourceExhausted,
        "the weekly limit",
    );
    let stats = stats(&app, "alice").await;
    assert_eq!(
        (stats.sent_last_7_days, stats.withdrawn_last_30_days, stats.pending_sent),
        (3, 1, 2),
        "{stats:?}"
    );
    assert_eq!(stats.next_send_available_at, at(WEEK));
}

#[tokio::test]
async fn the_weekly_limit_frees_up_seven_days_after_the_first_send() {
    let app = limited_to_three().await;
    send_three(&app).await;

    app.clock.set(Timestamp::from_millis(START.plus(WEEK).as_millis() - 1));
    refused(
        try_send(&app, "alice", "r4", "", "").await,
        Code::ResourceExhausted,
        "weekly limit",
    );

    app.clock.advance(Duration::from_millis(1));
    let fourth = send(&app, "alice", "r4").await;

    assert_eq!(fourth.created_at, at(WEEK));
    let stats = stats(&app, "alice").await;
    assert_eq!(stats.sent_last_7_days, 3, "the sends of +1h, +2h and now");
    assert_eq!(
        stats.next_send_available_at,
        at(WEEK + HOUR),
        "the next send to leave the window"
    );
    refused(
        try_send(&app, "alice", "r5", "", "").await,
        Code::ResourceExhausted,
        "you can send again from 2026-01-08T01:00:00Z",
    );
}

#[tokio::test]
async fn stats_start_empty_with_the_configured_limit() {
    let app = spawn_app().await;

    assert_eq!(
        stats(&app, "alice").await,
        pb::InvitationStats {
            weekly_limit: 100,
            ..pb::InvitationStats::default()
        }
    );
    let limited = limited_to_three().await;
    assert_eq!(stats(&limited, "alice").await.weekly_limit, 3);
}

#[tokio::test]
async fn stats_follow_sends_withdrawals_and_acceptances_over_time() {
    let app = spawn_app().await;
    let to_bob = send(&app, "alice", "bob").await;
    app.clock.advance(HOUR);
    let to_carol = send(&app, "alice", "carol").await;
    app.clock.advance(HOUR);
    send(&app, "alice", "dave").await;

    assert_eq!(
        stats(&app, "alice").await,
        pb::InvitationStats {
            sent_last_7_days: 3,
            weekly_limit: 100,
            withdrawn_last_30_days: 0,
            pending_sent: 3,
            oldest_pending_at: at(Duration::ZERO),
            next_send_available_at: None,
        }
    );

    app.clock.advance(HOUR);
    withdraw(&app, "alice", &to_bob.id).await;
    let after_withdrawal = stats(&app, "alice").await;
    assert_eq!(
        (
            after_withdrawal.sent_last_7_days,
            after_withdrawal.withdrawn_last_30_days,
            after_withdrawal.pending_sent
        ),
        (3, 1, 2)
    );
    assert_eq!(
        after_withdrawal.oldest_pending_at,
        at(HOUR),
        "carol's is now the oldest"
    );

    accept(&app, "carol", &to_carol.id).await;
    let after_accept = stats(&app, "alice").await;
    assert_eq!(after_accept.pending_sent, 1);
    assert_eq!(after_accept.oldest_pending_at, at(2 * HOUR));

    app.clock.set(START.plus(WEEK));
    let a_week_on = stats(&app, "alice").await;
    assert_eq!(a_week_on.sent_last_7_days, 2, "the first send has left the window");
    assert_eq!(a_week_on.withdrawn_last_30_days, 1);

    app.clock.set(START.plus(3 * HOUR + 30 * DAY));
    let a_month_on = stats(&app, "alice").await;
    assert_eq!(a_month_on.sent_last_7_days, 0);
    assert_eq!(
        a_month_on.withdrawn_last_30_days, 0,
        "the withdrawal has left the 30-day window"
    );
}

#[tokio::test]
async fn the_recipients_stats_do_not_count_what_they_received() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    ignore(&app, "bob", &inv.id).await;

    assert_eq!(
        stats(&app, "bob").await,
        pb::InvitationStats {
            weekly_limit: 100,
            ..pb::InvitationStats::default()
        }
    );
}

#[tokio::test]
async fn concurrent_sends_never_pass_the_weekly_limit() {
    let app = limited_to_three().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let mut client = app.client("alice");
        tasks.spawn(async move {
            client
                .send_invitation(pb::SendInvitationRequest {
                    recipient_id: format!("r{i}"),
                    ..pb::SendInvitationRequest::default()
                })
                .await
        });
    }

    let mut accepted = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(_) => accepted += 1,
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}"),
        }
    }

    assert_eq!(accepted, 3);
    assert_eq!(sent(&app, "alice").await.len(), 3);
    assert_eq!(stats(&app, "alice").await.sent_last_7_days, 3);
}

// ---------------------------------------------------------------------------
// Idempotency keys
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_invitation_and_counts_once() {
    let app = spawn_app().await;
    let first = try_send(&app, "alice", "bob", "hi", "key-1").await.unwrap();
    app.clock.advance(HOUR);

    let retry = try_send(&app, "alice", "bob", "hi", "key-1").await.unwrap();

    assert_eq!(retry, first);
    assert_eq!(ids(&sent(&app, "alice").await), [first.id.as_str()]);
    assert_eq!(ids(&received(&app, "bob").await), [first.id.as_str()]);
    let stats = stats(&app, "alice").await;
    assert_eq!((stats.sent_last_7_days, stats.pending_sent), (1, 1), "{stats:?}");
}

#[tokio::test]
async fn an_idempotency_key_reused_for_a_different_request_is_invalid_argument() {
    let app = spawn_app().await;
    try_send(&app, "alice", "bob", "hi", "key-1").await.unwrap();
    let users = ["alice", "bob", "carol"];
    let before = world(&app, &users).await;

    for (to, message) in [("carol", "hi"), ("bob", "hello")] {
        let status = refused(
            try_send(&app, "alice", to, message, "key-1").await,
            Code::InvalidArgument,
            "idempotency_key was already used for a different request in the last 24 hours",
        );
        assert_eq!(violated_fields(&status), ["idempotency_key"]);
    }

    assert_eq!(world(&app, &users).await, before);
}

#[tokio::test]
async fn idempotency_keys_belong_to_their_sender() {
    let app = spawn_app().await;

    let from_alice = try_send(&app, "alice", "carol", "", "same-key").await.unwrap();
    let from_bob = try_send(&app, "bob", "carol", "", "same-key").await.unwrap();

    assert_ne!(from_alice.id, from_bob.id);
    assert_eq!(from_bob.sender_id, "bob");
    assert_eq!(received(&app, "carol").await.len(), 2);
}

#[tokio::test]
async fn an_idempotency_key_older_than_24_hours_creates_a_new_invitation() {
    let app = spawn_app_with(Policy {
        reinvite_cooldown: Duration::ZERO,
        ..Policy::default()
    })
    .await;
    let first = try_send(&app, "alice", "bob", "hi", "key-1").await.unwrap();
    withdraw(&app, "alice", &first.id).await;

    app.clock.advance(DAY - Duration::from_millis(1));
    let replay = try_send(&app, "alice", "bob", "hi", "key-1").await.unwrap();
    assert_eq!(replay.id, first.id, "still within 24 hours");
    assert_eq!(replay.state(), InvitationState::Withdrawn);

    app.clock.advance(Duration::from_millis(1));
    let fresh = try_send(&app, "alice", "bob", "hi", "key-1").await.unwrap();
    assert_ne!(fresh.id, first.id);
    assert_eq!(fresh.state(), InvitationState::Pending);
    assert_eq!(fresh.created_at, at(DAY));
    assert_eq!(ids(&received(&app, "bob").await), [fresh.id.as_str()]);
    assert_eq!(stats(&app, "alice").await.sent_last_7_days, 2);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_invitation() {
    let app = spawn_app().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mut client = app.client("alice");
        tasks.spawn(async move {
            client
                .send_invitation(pb::SendInvitationRequest {
                    recipient_id: "bob".into(),
                    message: "hi".into(),
                    idempotency_key: "key-1".into(),
                })
                .await
                .map(|reply| reply.into_inner().id)
        });
    }

    let mut answered = Vec::new();
    while let Some(result) = tasks.join_next().await {
        answered.push(result.unwrap().unwrap());
    }

    answered.dedup();
    assert_eq!(answered.len(), 1, "every retry names the same invitation");
    assert_eq!(ids(&received(&app, "bob").await), [answered[0].as_str()]);
    assert_eq!(stats(&app, "alice").await.sent_last_7_days, 1);
}

#[tokio::test]
async fn a_retry_at_the_weekly_limit_replays_instead_of_being_refused() {
    let app = limited_to_three().await;
    send(&app, "alice", "r1").await;
    send(&app, "alice", "r2").await;
    let third = try_send(&app, "alice", "r3", "", "key-3").await.unwrap();

    let retry = try_send(&app, "alice", "r3", "", "key-3").await.unwrap();

    assert_eq!(retry, third);
    assert_eq!(stats(&app, "alice").await.sent_last_7_days, 3);
}

#[tokio::test]
async fn an_invalid_idempotency_key_is_invalid_argument() {
    let app = spawn_app().await;
    let before = world(&app, &["alice", "bob"]).await;

    for (key, says) in [
        ("k".repeat(129), "idempotency_key: must be at most 128 bytes"),
        (
            "key\n1".to_owned(),
            "idempotency_key: must not contain control or invisible formatting characters (found U+000A)",
        ),
        (
            "key\u{200b}1".to_owned(),
            "idempotency_key: must not contain control or invisible formatting characters (found U+200B)",
        ),
    ] {
        refused(
            try_send(&app, "alice", "bob", "", &key).await,
            Code::InvalidArgument,
            says,
        );
    }

    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}

// ---------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------

const TTL: Duration = Duration::from_secs(60);

async fn short_ttl() -> TestApp {
    spawn_app_with(Policy {
        pending_ttl: TTL,
        ..Policy::default()
    })
    .await
}

/// Waits for the sweeper to expire `id`, as its sender sees it.
async fn expired(app: &TestApp, sender: &str, id: &str) -> pb::Invitation {
    eventually(Duration::from_secs(5), || async {
        let inv = get(app, sender, id).await;
        (inv.state() == InvitationState::Expired).then_some(inv)
    })
    .await
}

#[tokio::test]
async fn a_pending_invitation_expires_after_the_ttl() {
    let app = short_ttl().await;
    let inv = send(&app, "alice", "bob").await;
    assert_eq!(inv.expires_at, at(TTL));

    app.clock.advance(TTL);
    let gone = expired(&app, "alice", &inv.id).await;

    assert_eq!(gone.updated_at, at(TTL));
    assert_eq!(gone.expires_at, None);
    assert!(received(&app, "bob").await.is_empty());
    let stats = stats(&app, "alice").await;
    assert_eq!((stats.pending_sent, stats.oldest_pending_at), (0, None), "{stats:?}");
    assert_eq!(stats.sent_last_7_days, 1);
    for (user, other) in [("alice", "bob"), ("bob", "alice")] {
        let rel = relationship(&app, user, other).await;
        assert_eq!(rel.state(), RelationshipState::None, "{user}");
        assert!(rel.can_invite, "{user}: expiry starts no cool-down");
        assert_eq!(rel.invite_available_at, None, "{user}");
    }
    let again = send(&app, "alice", "bob").await;
    assert_eq!(ids(&received(&app, "bob").await), [again.id.as_str()]);
}

#[tokio::test]
async fn only_invitations_whose_time_has_come_expire() {
    let app = short_ttl().await;
    let early = send(&app, "alice", "bob").await;
    app.clock.advance(TTL / 2);
    let late = send(&app, "alice", "carol").await;

    app.clock.advance(TTL / 2);
    expired(&app, "alice", &early.id).await;

    assert_eq!(get(&app, "alice", &late.id).await.state(), InvitationState::Pending);
    assert_eq!(ids(&received(&app, "carol").await), [late.id.as_str()]);
    assert_eq!(stats(&app, "alice").await.oldest_pending_at, at(TTL / 2));
}

#[tokio::test]
async fn an_ignored_invitation_expires_too() {
    let app = short_ttl().await;
    let inv = send(&app, "alice", "bob").await;
    ignore(&app, "bob", &inv.id).await;

    app.clock.advance(TTL);
    expired(&app, "alice", &inv.id).await;

    assert_eq!(get(&app, "bob", &inv.id).await.state(), InvitationState::Expired);
    assert_eq!(stats(&app, "alice").await.pending_sent, 0);
    send(&app, "bob", "alice").await;
}

#[tokio::test]
async fn an_expired_invitation_can_no_longer_be_accepted_or_withdrawn() {
    let app = short_ttl().await;
    let inv = send(&app, "alice", "bob").await;
    app.clock.advance(TTL);
    expired(&app, "alice", &inv.id).await;
    let before = world(&app, &["alice", "bob"]).await;

    refused(
        try_accept(&app, "bob", &inv.id).await,
        Code::FailedPrecondition,
        "the invitation is expired and can no longer be accepted",
    );
    refused(
        try_withdraw(&app, "alice", &inv.id, "").await,
        Code::FailedPrecondition,
        "the invitation is expired and can no longer be withdrawn",
    );

    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}
