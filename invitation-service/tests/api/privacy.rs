//! The product's point: a withdrawal is discreet. The recipient cannot tell a
//! withdrawn invitation from one that never existed, strangers see nothing,
//! and the re-invite cool-down binds the sender alone.

use std::time::Duration;

use proto::invitations::v1::{self as pb, InvitationState, RelationshipState};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::{
    helpers::{DAY, TestApp, spawn_app},
    invitations::{
        HOUR, accept, at, get, ids, ignore, never_existed, received, refused, relationship, seen_by, send, try_accept,
        try_get, try_ignore, try_send, try_withdraw, withdraw, world,
    },
};

const COOLDOWN: Duration = Duration::from_secs(21 * 24 * 3600);

/// What `user` is told by each RPC that takes an invitation id.
async fn answers(app: &TestApp, user: &str, id: &str) -> Vec<(&'static str, Status)> {
    let mut out = Vec::new();
    for (rpc, result) in [
        ("GetInvitation", try_get(app, user, id).await),
        ("AcceptInvitation", try_accept(app, user, id).await),
        ("IgnoreInvitation", try_ignore(app, user, id).await),
        ("WithdrawInvitation", try_withdraw(app, user, id, "").await),
    ] {
        match result {
            Ok(inv) => panic!("{rpc} by {user} answered {inv:?}"),
            Err(status) => out.push((rpc, status)),
        }
    }
    out
}

/// Asserts that `user` gets, for `id`, exactly the NOT_FOUND they get for an
/// id that never existed: same code, message and details.
async fn assert_indistinguishable_from_never_existed(app: &TestApp, user: &str, id: &str) {
    let real = answers(app, user, id).await;
    let never = answers(app, user, &never_existed()).await;
    for ((rpc, seen), (_, reference)) in real.iter().zip(&never) {
        assert_eq!(reference.code(), Code::NotFound, "{rpc}: {reference:?}");
        assert_eq!(reference.message(), "invitation not found", "{rpc}");
        assert_eq!(seen.code(), reference.code(), "{rpc} by {user}: {seen:?}");
        assert_eq!(seen.message(), reference.message(), "{rpc} by {user}");
        assert_eq!(seen.details(), reference.details(), "{rpc} by {user}");
    }
}

#[tokio::test]
async fn after_a_withdrawal_the_recipient_gets_the_not_found_of_an_id_that_never_existed() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    withdraw(&app, "alice", &inv.id).await;
    let before = world(&app, &["alice", "bob"]).await;

    assert_indistinguishable_from_never_existed(&app, "bob", &inv.id).await;

    assert_eq!(
        world(&app, &["alice", "bob"]).await,
        before,
        "the attempts changed nothing"
    );
}

#[tokio::test]
async fn an_ignored_then_withdrawn_invitation_is_not_found_for_the_recipient() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    ignore(&app, "bob", &inv.id).await;
    withdraw(&app, "alice", &inv.id).await;

    assert_indistinguishable_from_never_existed(&app, "bob", &inv.id).await;
    assert_eq!(
        relationship(&app, "bob", "alice").await.state(),
        RelationshipState::None
    );
}

#[tokio::test]
async fn a_third_party_gets_not_found_for_any_invitation() {
    let app = spawn_app().await;
    let pending = send(&app, "alice", "bob").await;
    let accepted = send(&app, "alice", "carol").await;
    accept(&app, "carol", &accepted.id).await;
    let ignored = send(&app, "alice", "dave").await;
    ignore(&app, "dave", &ignored.id).await;
    let withdrawn = send(&app, "erin", "bob").await;
    withdraw(&app, "erin", &withdrawn.id).await;
    let users = ["alice", "bob", "carol", "dave", "erin", "mallory"];
    let before = world(&app, &users).await;

    for inv in [&pending, &accepted, &ignored, &withdrawn] {
        assert_indistinguishable_from_never_existed(&app, "mallory", &inv.id).await;
    }

    assert_eq!(world(&app, &users).await, before, "the attempts changed nothing");
}

#[tokio::test]
async fn a_withdrawn_invitation_leaves_the_recipients_received_list() {
    let app = spawn_app().await;
    let kept = send(&app, "carol", "bob").await;
    let inv = send(&app, "alice", "bob").await;
    assert_eq!(received(&app, "bob").await.len(), 2);

    withdraw(&app, "alice", &inv.id).await;

    assert_eq!(ids(&received(&app, "bob").await), [kept.id.as_str()]);
}

#[tokio::test]
async fn the_recipients_view_after_a_withdrawal_is_that_of_a_world_where_it_was_never_sent() {
    let withdrawn_app = spawn_app().await;
    let inv = send(&withdrawn_app, "alice", "bob").await;
    withdraw(&withdrawn_app, "alice", &inv.id).await;
    let untouched_app = spawn_app().await;

    assert_eq!(
        seen_by(&withdrawn_app, "bob", &["alice"]).await,
        seen_by(&untouched_app, "bob", &["alice"]).await
    );
}

#[tokio::test]
async fn after_a_withdrawal_the_recipient_may_invite_the_sender_at_once() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    withdraw(&app, "alice", &inv.id).await;

    let rel = relationship(&app, "bob", "alice").await;
    assert_eq!(
        rel,
        pb::GetRelationshipResponse {
            state: RelationshipState::None.into(),
            can_invite: true,
            ..pb::GetRelationshipResponse::default()
        },
        "no trace of the sender's cool-down"
    );

    let back = send(&app, "bob", "alice").await;
    assert_eq!(back.state(), InvitationState::Pending);
    assert_eq!(
        relationship(&app, "alice", "bob").await.state(),
        RelationshipState::PendingReceived
    );
}

#[tokio::test]
async fn after_a_withdrawal_the_sender_sees_when_they_may_invite_again() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    app.clock.advance(HOUR);
    withdraw(&app, "alice", &inv.id).await;

    let rel = relationship(&app, "alice", "bob").await;

    assert_eq!(rel.state(), RelationshipState::None);
    assert!(!rel.can_invite);
    assert_eq!(rel.invite_available_at, at(HOUR + COOLDOWN));
    assert_eq!((rel.invitation_id.as_str(), rel.connected_at), ("", None));
}

#[tokio::test]
async fn the_sender_may_reinvite_exactly_when_the_cooldown_ends() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    app.clock.advance(HOUR);
    withdraw(&app, "alice", &inv.id).await;

    app.clock.advance(COOLDOWN - Duration::from_millis(1));
    let before = world(&app, &["alice", "bob"]).await;
    let status = refused(
        try_send(&app, "alice", "bob", "", "").await,
        Code::FailedPrecondition,
        "you withdrew an invitation to this user recently: you can invite them again from 2026-01-22T01:00:00Z",
    );
    let info = status.get_details_error_info().expect("error info with the time");
    assert_eq!(info.reason, "REINVITE_COOLDOWN");
    assert_eq!(
        info.metadata.get("available_at").map(String::as_str),
        Some("2026-01-22T01:00:00Z")
    );
    assert_eq!(
        world(&app, &["alice", "bob"]).await,
        before,
        "the refusal changed nothing"
    );
    assert!(!relationship(&app, "alice", "bob").await.can_invite);

    app.clock.advance(Duration::from_millis(1));
    let rel = relationship(&app, "alice", "bob").await;
    assert!(rel.can_invite);
    assert_eq!(rel.invite_available_at, None);
    let again = send(&app, "alice", "bob").await;
    assert_eq!(again.created_at, at(HOUR + COOLDOWN));
    assert_eq!(ids(&received(&app, "bob").await), [again.id.as_str()]);
}

#[tokio::test]
async fn the_cooldown_is_counted_from_the_withdrawal_not_the_send() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    app.clock.advance(10 * DAY);
    withdraw(&app, "alice", &inv.id).await;

    app.clock.advance(COOLDOWN - 10 * DAY);
    refused(
        try_send(&app, "alice", "bob", "", "").await,
        Code::FailedPrecondition,
        "you can invite them again from 2026-02-01T00:00:00Z",
    );
    assert_eq!(get(&app, "alice", &inv.id).await.state(), InvitationState::Withdrawn);
}
