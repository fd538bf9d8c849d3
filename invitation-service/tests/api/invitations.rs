//! The life of an invitation over the real API: sending and its pair rules,
//! withdrawing, accepting, ignoring, connections, relationships and
//! malformed ids. The steps and views shared by the other test modules live
//! at the top.

use std::{fmt::Debug, time::Duration};

use invitation_service::domain::{InvitationId, Policy};
use proto::invitations::v1::{self as pb, InvitationState, RelationshipState};
use tonic::{Code, Response, Status};
use tonic_types::StatusExt as _;

use crate::helpers::{DAY, START, TestApp, spawn_app, spawn_app_with};

// ---------------------------------------------------------------------------
// Steps and views shared by the test modules.
// ---------------------------------------------------------------------------

pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// `START + d` as the API shows it.
pub(crate) fn at(d: Duration) -> Option<prost_types::Timestamp> {
    let ms = START.plus(d).as_millis();
    Some(prost_types::Timestamp {
        seconds: i64::try_from(ms / 1000).unwrap(),
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap(),
    })
}

/// A well-formed invitation id that no invitation has.
pub(crate) fn never_existed() -> String {
    InvitationId::new(START, 42).to_string()
}

pub(crate) async fn try_send(
    app: &TestApp,
    from: &str,
    to: &str,
    message: &str,
    idempotency_key: &str,
) -> Result<pb::Invitation, Status> {
    app.client(from)
        .send_invitation(pb::SendInvitationRequest {
            recipient_id: to.into(),
            message: message.into(),
            idempotency_key: idempotency_key.into(),
        })
        .await
        .map(Response::into_inner)
}

pub(crate) async fn send(app: &TestApp, from: &str, to: &str) -> pb::Invitation {
    try_send(app, from, to, "", "")
        .await
        .unwrap_or_else(|s| panic!("{from} cannot invite {to}: {s:?}"))
}

pub(crate) async fn try_get(app: &TestApp, user: &str, id: &str) -> Result<pb::Invitation, Status> {
    app.client(user)
        .get_invitation(pb::GetInvitationRequest {
            invitation_id: id.into(),
        })
        .await
        .map(Response::into_inner)
}

pub(crate) async fn get(app: &TestApp, user: &str, id: &str) -> pb::Invitation {
    try_get(app, user, id)
        .await
        .unwrap_or_else(|s| panic!("{user} cannot read {id}: {s:?}"))
}

pub(crate) async fn try_withdraw(app: &TestApp, user: &str, id: &str, note: &str) -> Result<pb::Invitation, Status> {
    app.client(user)
        .withdraw_invitation(pb::WithdrawInvitationRequest {
            invitation_id: id.into(),
            note: note.into(),
        })
        .await
        .map(Response::into_inner)
}

pub(crate) async fn withdraw(app: &TestApp, user: &str, id: &str) -> pb::Invitation {
    try_withdraw(app, user, id, "")
        .await
        .unwrap_or_else(|s| panic!("{user} cannot withdraw {id}: {s:?}"))
}

pub(crate) async fn try_accept(app: &TestApp, user: &str, id: &str) -> Result<pb::Invitation, Status> {
    app.client(user)
        .accept_invitation(pb::AcceptInvitationRequest {
            invitation_id: id.into(),
        })
        .await
        .map(Response::into_inner)
}

pub(crate) async fn accept(app: &TestApp, user: &str, id: &str) -> pb::Invitation {
    try_accept(app, user, id)
        .await
        .unwrap_or_else(|s| panic!("{user} cannot accept {id}: {s:?}"))
}

pub(crate) async fn try_ignore(app: &TestApp, user: &str, id: &str) -> Result<pb::Invitation, Status> {
    app.client(user)
        .ignore_invitation(pb::IgnoreInvitationRequest {
            invitation_id: id.into(),
        })
        .await
        .map(Response::into_inner)
}

pub(crate) async fn ignore(app: &TestApp, user: &str, id: &str) -> pb::Invitation {
    try_ignore(app, user, id)
        .await
        .unwrap_or_else(|s| panic!("{user} cannot ignore {id}: {s:?}"))
}

/// The first page (up to 100) of what `user` sent, newest first.
pub(crate) async fn sent(app: &TestApp, user: &str) -> Vec<pb::Invitation> {
    app.client(user)
        .list_sent_invitations(pb::ListSentInvitationsRequest {
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .invitations
}

/// The first page (up to 100) of what `user` received, newest first.
pub(crate) async fn received(app: &TestApp, user: &str) -> Vec<pb::Invitation> {
    app.client(user)
        .list_received_invitations(pb::ListReceivedInvitationsRequest {
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .invitations
}

/// The first page (up to 100) of `user`'s connections, newest first.
pub(crate) async fn connections(app: &TestApp, user: &str) -> Vec<pb::Connection> {
    app.client(user)
        .list_connections(pb::ListConnectionsRequest {
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .connections
}

pub(crate) async fn relationship(app: &TestApp, user: &str, other: &str) -> pb::GetRelationshipResponse {
    app.client(user)
        .get_relationship(pb::GetRelationshipRequest {
            other_user_id: other.into(),
        })
        .await
        .unwrap_or_else(|s| panic!("{user} cannot read the relationship with {other}: {s:?}"))
        .into_inner()
}

pub(crate) async fn stats(app: &TestApp, user: &str) -> pb::InvitationStats {
    app.client(user)
        .get_invitation_stats(pb::GetInvitationStatsRequest {})
        .await
        .unwrap()
        .into_inner()
}

pub(crate) fn ids(invitations: &[pb::Invitation]) -> Vec<&str> {
    invitations.iter().map(|inv| inv.id.as_str()).collect()
}

/// Everything one user can read about their invitations and their standing
/// with some other users.
#[derive(Debug, PartialEq)]
pub(crate) struct Seen {
    user: String,
    sent: Vec<pb::Invitation>,
    received: Vec<pb::Invitation>,
    connections: Vec<pb::Connection>,
    stats: pb::InvitationStats,
    relationships: Vec<(String, pb::GetRelationshipResponse)>,
}

pub(crate) async fn seen_by(app: &TestApp, user: &str, others: &[&str]) -> Seen {
    let mut relationships = Vec::new();
    for other in others.iter().filter(|o| **o != user) {
        relationships.push(((*other).to_owned(), relationship(app, user, other).await));
    }
    Seen {
        user: user.to_owned(),
        sent: sent(app, user).await,
        received: received(app, user).await,
        connections: connections(app, user).await,
        stats: stats(app, user).await,
        relationships,
    }
}

/// What each of `users` can read, to show that a refused request changed
/// nothing.
pub(crate) async fn world(app: &TestApp, users: &[&str]) -> Vec<Seen> {
    let mut seen = Vec::new();
    for user in users {
        seen.push(seen_by(app, user, users).await);
    }
    seen
}

/// Asserts that `result` is refused with `code` and a message containing
/// `says`, and returns the status.
#[track_caller]
pub(crate) fn refused<T: Debug>(result: Result<T, Status>, code: Code, says: &str) -> Status {
    let status = match result {
        Ok(value) => panic!("expected {code:?} ({says}), got OK: {value:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(says),
        "the message {:?} should say {says:?}",
        status.message()
    );
    status
}

/// The fields named in a status's bad-request details.
pub(crate) fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// SendInvitation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn send_returns_a_pending_invitation_from_the_token_subject() {
    let app = spawn_app().await;

    let inv = try_send(&app, "alice", "bob", "Hello Bob", "").await.unwrap();

    assert_eq!(inv.id.len(), 32, "{inv:?}");
    assert_eq!(inv.sender_id, "alice");
    assert_eq!(inv.sender_name, "alice (display)", "the name claim of the token");
    assert_eq!(inv.recipient_id, "bob");
    assert_eq!(inv.message, "Hello Bob");
    assert_eq!(inv.state(), InvitationState::Pending);
    assert_eq!(inv.created_at, at(Duration::ZERO));
    assert_eq!(inv.updated_at, at(Duration::ZERO));
    assert_eq!(inv.expires_at, at(180 * DAY), "the default pending TTL");
    assert_eq!(get(&app, "alice", &inv.id).await, inv);
    assert_eq!(get(&app, "bob", &inv.id).await, inv, "the recipient sees the same");
    assert_eq!(sent(&app, "alice").await, std::slice::from_ref(&inv));
    assert_eq!(received(&app, "bob").await, [inv]);
}

#[tokio::test]
async fn a_note_of_300_characters_is_accepted_even_when_it_is_600_bytes() {
    let app = spawn_app().await;
    let note = "é".repeat(300);
    assert_eq!(note.len(), 600);

    let inv = try_send(&app, "alice", "bob", &note, "").await.unwrap();

    assert_eq!(inv.message, note);
    assert_eq!(received(&app, "bob").await[0].message, note);
}

#[tokio::test]
async fn a_note_of_301_characters_is_refused_and_nothing_is_sent() {
    let app = spawn_app().await;
    let before = world(&app, &["alice", "bob"]).await;

    let status = refused(
        try_send(&app, "alice", "bob", &"é".repeat(301), "").await,
        Code::InvalidArgument,
        "message: must be at most 300 characters (this one has 301)",
    );

    assert_eq!(violated_fields(&status), ["message"]);
    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}

#[tokio::test]
async fn spaces_around_a_note_are_trimmed_and_do_not_count() {
    let app = spawn_app().await;
    let padded = format!("  {}  ", "é".repeat(300));

    let inv = try_send(&app, "alice", "bob", &padded, "").await.unwrap();

    assert_eq!(inv.message, "é".repeat(300));
}

#[tokio::test]
async fn a_configured_note_limit_applies_at_its_boundary() {
    let app = spawn_app_with(Policy {
        max_note_chars: 5,
        ..Policy::default()
    })
    .await;
    let before = world(&app, &["alice", "bob"]).await;

    refused(
        try_send(&app, "alice", "bob", "éééééé", "").await,
        Code::InvalidArgument,
        "message: must be at most 5 characters (this one has 6)",
    );
    assert_eq!(world(&app, &["alice", "bob"]).await, before);

    let inv = try_send(&app, "alice", "bob", "ééééé", "").await.unwrap();
    assert_eq!(inv.message, "ééééé");
    refused(
        try_withdraw(&app, "alice", &inv.id, "sorry!").await,
        Code::InvalidArgument,
        "note: must be at most 5 characters (this one has 6)",
    );
    assert_eq!(get(&app, "alice", &inv.id).await.state(), InvitationState::Pending);
}

#[tokio::test]
async fn inviting_yourself_is_invalid_argument() {
    let app = spawn_app().await;
    let before = world(&app, &["alice"]).await;

    let status = refused(
        try_send(&app, "alice", "alice", "", "").await,
        Code::InvalidArgument,
        "you cannot invite yourself",
    );

    assert_eq!(violated_fields(&status), ["recipient_id"]);
    assert_eq!(world(&app, &["alice"]).await, before);
}

#[tokio::test]
async fn invalid_recipient_ids_are_invalid_argument() {
    let app = spawn_app().await;
    let too_long = "u".repeat(129);
    let before = world(&app, &["alice"]).await;

    for (recipient, says) in [
        ("", "recipient_id: is required"),
        ("bob smith", "recipient_id: must not contain whitespace (found U+0020)"),
        (too_long.as_str(), "recipient_id: must be at most 128 bytes"),
    ] {
        let status = refused(
            try_send(&app, "alice", recipient, "", "").await,
            Code::InvalidArgument,
            says,
        );
        assert_eq!(violated_fields(&status), ["recipient_id"], "{recipient:?}");
    }

    assert_eq!(world(&app, &["alice"]).await, before);
    let longest = "u".repeat(128);
    assert_eq!(send(&app, "alice", &longest).await.recipient_id, longest);
}

#[tokio::test]
async fn a_second_pending_invitation_to_the_same_user_is_already_exists() {
    let app = spawn_app().await;
    let first = send(&app, "alice", "bob").await;
    let before = world(&app, &["alice", "bob"]).await;

    refused(
        try_send(&app, "alice", "bob", "again?", "").await,
        Code::AlreadyExists,
        "you already have a pending invitation to this user",
    );

    assert_eq!(world(&app, &["alice", "bob"]).await, before);
    assert_eq!(ids(&received(&app, "bob").await), [first.id.as_str()]);
}

#[tokio::test]
async fn inviting_someone_who_already_invited_you_is_already_exists() {
    let app = spawn_app().await;
    send(&app, "alice", "bob").await;
    let before = world(&app, &["alice", "bob"]).await;

    refused(
        try_send(&app, "bob", "alice", "", "").await,
        Code::AlreadyExists,
        "this user has already invited you: accept their invitation instead",
    );

    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}

#[tokio::test]
async fn inviting_a_connection_is_already_exists_in_both_directions() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    accept(&app, "bob", &inv.id).await;
    let before = world(&app, &["alice", "bob"]).await;

    for (from, to) in [("alice", "bob"), ("bob", "alice")] {
        refused(
            try_send(&app, from, to, "", "").await,
            Code::AlreadyExists,
            "you are already connected with this user",
        );
    }

    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}

// ---------------------------------------------------------------------------
// WithdrawInvitation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_sender_withdraws_a_pending_invitation() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    app.clock.advance(HOUR);

    let withdrawn = withdraw(&app, "alice", &inv.id).await;

    assert_eq!(withdrawn.state(), InvitationState::Withdrawn);
    assert_eq!(withdrawn.updated_at, at(HOUR));
    assert_eq!(withdrawn.created_at, inv.created_at);
    assert_eq!(withdrawn.expires_at, None, "no longer pending");
    assert_eq!(get(&app, "alice", &inv.id).await, withdrawn);
    assert_eq!(sent(&app, "alice").await, [withdrawn]);
    let stats = stats(&app, "alice").await;
    assert_eq!(
        (stats.sent_last_7_days, stats.withdrawn_last_30_days, stats.pending_sent),
        (1, 1, 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn only_the_sender_can_withdraw() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    let before = world(&app, &["alice", "bob"]).await;

    refused(
        try_withdraw(&app, "bob", &inv.id, "").await,
        Code::PermissionDenied,
        "only the sender of an invitation can withdraw it",
    );

    assert_eq!(world(&app, &["alice", "bob"]).await, before);
    assert_eq!(get(&app, "bob", &inv.id).await.state(), InvitationState::Pending);
}

#[tokio::test]
async fn withdrawing_twice_is_ok_and_changes_nothing() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    let first = withdraw(&app, "alice", &inv.id).await;
    let before = world(&app, &["alice", "bob"]).await;
    app.clock.advance(HOUR);

    let second = withdraw(&app, "alice", &inv.id).await;

    assert_eq!(second, first, "same state, same updated_at");
    assert_eq!(world(&app, &["alice", "bob"]).await, before);
    assert_eq!(stats(&app, "alice").await.withdrawn_last_30_days, 1);
    assert_eq!(
        relationship(&app, "alice", "bob").await.invite_available_at,
        at(21 * DAY),
        "the cool-down still runs from the first withdrawal"
    );
}

#[tokio::test]
async fn withdrawing_an_accepted_invitation_is_failed_precondition() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    accept(&app, "bob", &inv.id).await;
    let before = world(&app, &["alice", "bob"]).await;

    refused(
        try_withdraw(&app, "alice", &inv.id, "").await,
        Code::FailedPrecondition,
        "the invitation is accepted and can no longer be withdrawn",
    );

    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}

#[tokio::test]
async fn an_apology_note_is_held_to_the_note_limit() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    let before = world(&app, &["alice", "bob"]).await;

    let status = refused(
        try_withdraw(&app, "alice", &inv.id, &"é".repeat(301)).await,
        Code::InvalidArgument,
        "note: must be at most 300 characters (this one has 301)",
    );
    assert_eq!(violated_fields(&status), ["note"]);
    assert_eq!(world(&app, &["alice", "bob"]).await, before, "still pending for both");

    let withdrawn = try_withdraw(&app, "alice", &inv.id, &"é".repeat(300)).await.unwrap();
    assert_eq!(withdrawn.state(), InvitationState::Withdrawn);
}

// ---------------------------------------------------------------------------
// AcceptInvitation and connections
// ---------------------------------------------------------------------------

#[tokio::test]
async fn accepting_connects_both_users() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    app.clock.advance(HOUR);

    let accepted = accept(&app, "bob", &inv.id).await;

    assert_eq!(accepted.state(), InvitationState::Accepted);
    assert_eq!(accepted.updated_at, at(HOUR));
    assert_eq!(accepted.expires_at, None);
    assert_eq!(get(&app, "alice", &inv.id).await, accepted);
    assert_eq!(sent(&app, "alice").await, [accepted]);
    assert!(received(&app, "bob").await.is_empty());
    for (user, other) in [("alice", "bob"), ("bob", "alice")] {
        let rel = relationship(&app, user, other).await;
        assert_eq!(rel.state(), RelationshipState::Connected, "{user}");
        assert_eq!(rel.connected_at, at(HOUR), "{user}");
        assert!(!rel.can_invite, "{user}");
        assert_eq!(
            connections(&app, user).await,
            [pb::Connection {
                user_id: other.into(),
                connected_at: at(HOUR),
            }]
        );
    }
    assert_eq!(stats(&app, "alice").await.pending_sent, 0);
}

#[tokio::test]
async fn only_the_recipient_can_accept() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    let before = world(&app, &["alice", "bob"]).await;

    refused(
        try_accept(&app, "alice", &inv.id).await,
        Code::PermissionDenied,
        "only the recipient of an invitation can accept it",
    );

    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}

#[tokio::test]
async fn accepting_twice_is_ok_and_changes_nothing() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    let first = accept(&app, "bob", &inv.id).await;
    let before = world(&app, &["alice", "bob"]).await;
    app.clock.advance(HOUR);

    assert_eq!(accept(&app, "bob", &inv.id).await, first);
    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}

#[tokio::test]
async fn removing_a_connection_removes_it_for_both() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    accept(&app, "bob", &inv.id).await;

    app.client("bob")
        .remove_connection(pb::RemoveConnectionRequest {
            other_user_id: "alice".into(),
        })
        .await
        .unwrap();

    for (user, other) in [("alice", "bob"), ("bob", "alice")] {
        assert!(connections(&app, user).await.is_empty(), "{user}");
        let rel = relationship(&app, user, other).await;
        assert_eq!(rel.state(), RelationshipState::None, "{user}");
        assert!(rel.can_invite, "{user}");
        assert_eq!((rel.connected_at, rel.invite_available_at), (None, None), "{user}");
    }
    let before = world(&app, &["alice", "bob"]).await;
    for (user, other) in [("alice", "bob"), ("bob", "alice")] {
        refused(
            app.client(user)
                .remove_connection(pb::RemoveConnectionRequest {
                    other_user_id: other.into(),
                })
                .await,
            Code::NotFound,
            "you are not connected with this user",
        );
    }
    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}

#[tokio::test]
async fn after_removing_a_connection_either_user_can_invite_again() {
    for (inviter, invitee) in [("alice", "bob"), ("bob", "alice")] {
        let app = spawn_app().await;
        let inv = send(&app, "alice", "bob").await;
        accept(&app, "bob", &inv.id).await;
        app.client("alice")
            .remove_connection(pb::RemoveConnectionRequest {
                other_user_id: "bob".into(),
            })
            .await
            .unwrap();

        let again = send(&app, inviter, invitee).await;

        assert_eq!(again.state(), InvitationState::Pending);
        assert_eq!(
            relationship(&app, invitee, inviter).await.state(),
            RelationshipState::PendingReceived
        );
    }
}

#[tokio::test]
async fn after_removing_a_connection_an_old_cooldown_does_not_block_reinviting() {
    let app = spawn_app().await;
    let first = send(&app, "alice", "bob").await;
    withdraw(&app, "alice", &first.id).await;
    let back = send(&app, "bob", "alice").await;
    accept(&app, "alice", &back.id).await;
    app.client("bob")
        .remove_connection(pb::RemoveConnectionRequest {
            other_user_id: "alice".into(),
        })
        .await
        .unwrap();

    assert!(relationship(&app, "alice", "bob").await.can_invite);
    send(&app, "alice", "bob").await;
}

#[tokio::test]
async fn removing_a_connection_that_does_not_exist_is_not_found() {
    let app = spawn_app().await;
    send(&app, "alice", "bob").await;
    let before = world(&app, &["alice", "bob"]).await;

    for other in ["bob", "stranger"] {
        refused(
            app.client("alice")
                .remove_connection(pb::RemoveConnectionRequest {
                    other_user_id: other.into(),
                })
                .await,
            Code::NotFound,
            "you are not connected with this user",
        );
    }

    assert_eq!(
        world(&app, &["alice", "bob"]).await,
        before,
        "the pending invitation stays"
    );
}

#[tokio::test]
async fn removing_a_connection_with_an_invalid_user_id_is_invalid_argument() {
    let app = spawn_app().await;
    for other in ["", "bob smith"] {
        let status = refused(
            app.client("alice")
                .remove_connection(pb::RemoveConnectionRequest {
                    other_user_id: other.into(),
                })
                .await,
            Code::InvalidArgument,
            "other_user_id: ",
        );
        assert_eq!(violated_fields(&status), ["other_user_id"]);
    }
}

// ---------------------------------------------------------------------------
// IgnoreInvitation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_ignored_invitation_still_looks_pending_to_its_sender() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    let stats_before = stats(&app, "alice").await;
    app.clock.advance(HOUR);

    let ignored = ignore(&app, "bob", &inv.id).await;

    assert_eq!(ignored.state(), InvitationState::Ignored);
    let seen = get(&app, "alice", &inv.id).await;
    assert_eq!(seen.state(), InvitationState::Pending);
    assert_eq!(seen.expires_at, inv.expires_at);
    let listed = sent(&app, "alice").await;
    assert_eq!(ids(&listed), [inv.id.as_str()]);
    assert_eq!(listed[0].state(), InvitationState::Pending);
    let rel = relationship(&app, "alice", "bob").await;
    assert_eq!(rel.state(), RelationshipState::PendingSent);
    assert_eq!(rel.invitation_id, inv.id);
    assert_eq!(stats(&app, "alice").await, stats_before);
    refused(
        try_send(&app, "alice", "bob", "", "").await,
        Code::AlreadyExists,
        "you already have a pending invitation to this user",
    );
}

#[tokio::test]
async fn an_ignore_leaves_no_trace_in_what_the_sender_sees() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    let before = seen_by(&app, "alice", &["bob"]).await;
    app.clock.advance(HOUR);

    ignore(&app, "bob", &inv.id).await;

    assert_eq!(get(&app, "alice", &inv.id).await, inv);
    assert_eq!(seen_by(&app, "alice", &["bob"]).await, before);
}

#[tokio::test]
async fn the_recipient_sees_an_ignored_invitation_as_ignored_and_off_their_list() {
    let app = spawn_app().await;
    let kept = send(&app, "carol", "bob").await;
    let inv = send(&app, "alice", "bob").await;

    ignore(&app, "bob", &inv.id).await;

    assert_eq!(get(&app, "bob", &inv.id).await.state(), InvitationState::Ignored);
    assert_eq!(ids(&received(&app, "bob").await), [kept.id.as_str()]);
    let rel = relationship(&app, "bob", "alice").await;
    assert_eq!(rel.state(), RelationshipState::PendingReceived);
    assert_eq!(rel.invitation_id, inv.id);
}

#[tokio::test]
async fn an_ignored_invitation_can_still_be_accepted() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    ignore(&app, "bob", &inv.id).await;

    let accepted = accept(&app, "bob", &inv.id).await;

    assert_eq!(accepted.state(), InvitationState::Accepted);
    assert_eq!(get(&app, "alice", &inv.id).await.state(), InvitationState::Accepted);
    assert_eq!(
        relationship(&app, "alice", "bob").await.state(),
        RelationshipState::Connected
    );
    assert_eq!(connections(&app, "bob").await[0].user_id, "alice");
}

#[tokio::test]
async fn ignoring_twice_is_ok_and_changes_nothing() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    let first = ignore(&app, "bob", &inv.id).await;
    let before = world(&app, &["alice", "bob"]).await;
    app.clock.advance(HOUR);

    assert_eq!(ignore(&app, "bob", &inv.id).await, first);
    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}

#[tokio::test]
async fn only_the_recipient_can_ignore() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    let before = world(&app, &["alice", "bob"]).await;

    refused(
        try_ignore(&app, "alice", &inv.id).await,
        Code::PermissionDenied,
        "only the recipient of an invitation can ignore it",
    );

    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}

#[tokio::test]
async fn ignoring_an_accepted_invitation_is_failed_precondition() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    accept(&app, "bob", &inv.id).await;
    let before = world(&app, &["alice", "bob"]).await;

    refused(
        try_ignore(&app, "bob", &inv.id).await,
        Code::FailedPrecondition,
        "the invitation is accepted and can no longer be ignored",
    );

    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}

#[tokio::test]
async fn two_users_inviting_each_other_at_once_end_with_one_pending_invitation() {
    let app = spawn_app().await;
    let (mut alice, mut bob) = (app.client("alice"), app.client("bob"));
    let to = |recipient: &str| pb::SendInvitationRequest {
        recipient_id: recipient.into(),
        ..pb::SendInvitationRequest::default()
    };

    let (from_alice, from_bob) = tokio::join!(alice.send_invitation(to("bob")), bob.send_invitation(to("alice")));

    let winner = match (from_alice, from_bob) {
        (Ok(inv), Err(status)) | (Err(status), Ok(inv)) => {
            assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
            inv.into_inner()
        }
        (a, b) => panic!("exactly one should succeed: {a:?} {b:?}"),
    };
    assert_eq!(ids(&sent(&app, &winner.sender_id).await), [winner.id.as_str()]);
    assert_eq!(ids(&received(&app, &winner.recipient_id).await), [winner.id.as_str()]);
    assert!(received(&app, &winner.sender_id).await.is_empty());
}

#[tokio::test]
async fn an_accept_racing_a_withdrawal_leaves_one_consistent_outcome() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    let (mut alice, mut bob) = (app.client("alice"), app.client("bob"));

    let (withdrawn, accepted) = tokio::join!(
        alice.withdraw_invitation(pb::WithdrawInvitationRequest {
            invitation_id: inv.id.clone(),
            note: String::new(),
        }),
        bob.accept_invitation(pb::AcceptInvitationRequest {
            invitation_id: inv.id.clone(),
        })
    );

    let state = get(&app, "alice", &inv.id).await.state();
    let rel = relationship(&app, "alice", "bob").await;
    match state {
        InvitationState::Accepted => {
            assert_eq!(withdrawn.unwrap_err().code(), Code::FailedPrecondition);
            assert!(accepted.is_ok());
            assert_eq!(rel.state(), RelationshipState::Connected);
        }
        InvitationState::Withdrawn => {
            assert!(withdrawn.is_ok());
            assert_eq!(accepted.unwrap_err().code(), Code::NotFound);
            assert_eq!(rel.state(), RelationshipState::None);
            assert!(connections(&app, "bob").await.is_empty());
        }
        other @ (InvitationState::Unspecified
        | InvitationState::Pending
        | InvitationState::Ignored
        | InvitationState::Expired) => panic!("the race left the invitation {other:?}"),
    }
    assert_eq!(stats(&app, "alice").await.pending_sent, 0);
}

// ---------------------------------------------------------------------------
// Malformed ids and GetRelationship
// ---------------------------------------------------------------------------

#[tokio::test]
async fn malformed_invitation_ids_are_invalid_argument_for_every_rpc_that_takes_one() {
    let app = spawn_app().await;
    send(&app, "alice", "bob").await;
    let before = world(&app, &["alice", "bob"]).await;
    let not_hex = "g".repeat(32);

    for (id, says) in [
        ("", "invitation_id: is required"),
        ("xyz", "invitation_id: must be an invitation id (32 hex digits)"),
        (
            not_hex.as_str(),
            "invitation_id: must be an invitation id (32 hex digits)",
        ),
    ] {
        for (rpc, result) in [
            ("GetInvitation", try_get(&app, "bob", id).await),
            ("AcceptInvitation", try_accept(&app, "bob", id).await),
            ("IgnoreInvitation", try_ignore(&app, "bob", id).await),
            ("WithdrawInvitation", try_withdraw(&app, "alice", id, "").await),
        ] {
            let status = match result {
                Ok(inv) => panic!("{rpc}({id:?}) answered {inv:?}"),
                Err(status) => status,
            };
            assert_eq!(status.code(), Code::InvalidArgument, "{rpc}({id:?}): {status:?}");
            assert_eq!(status.message(), says, "{rpc}({id:?})");
            assert_eq!(violated_fields(&status), ["invitation_id"], "{rpc}({id:?})");
        }
    }

    assert_eq!(world(&app, &["alice", "bob"]).await, before);
}

#[tokio::test]
async fn the_relationship_shows_a_pending_invitation_from_each_side() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;

    let alice = relationship(&app, "alice", "bob").await;
    let bob = relationship(&app, "bob", "alice").await;
    let stranger = relationship(&app, "carol", "alice").await;

    assert_eq!(
        (alice.state(), alice.invitation_id.as_str(), alice.can_invite),
        (RelationshipState::PendingSent, inv.id.as_str(), false)
    );
    assert_eq!(
        (bob.state(), bob.invitation_id.as_str(), bob.can_invite),
        (RelationshipState::PendingReceived, inv.id.as_str(), false)
    );
    assert_eq!(
        stranger,
        pb::GetRelationshipResponse {
            state: RelationshipState::None.into(),
            can_invite: true,
            ..pb::GetRelationshipResponse::default()
        }
    );
}

#[tokio::test]
async fn a_relationship_with_yourself_is_invalid_argument() {
    let app = spawn_app().await;

    let status = refused(
        app.client("alice")
            .get_relationship(pb::GetRelationshipRequest {
                other_user_id: "alice".into(),
            })
            .await,
        Code::InvalidArgument,
        "other_user_id: must be another user, not you",
    );

    assert_eq!(violated_fields(&status), ["other_user_id"]);
}

#[tokio::test]
async fn a_relationship_with_an_invalid_user_id_is_invalid_argument() {
    let app = spawn_app().await;
    let too_long = "u".repeat(129);

    for (other, says) in [
        ("", "other_user_id: is required"),
        ("bob smith", "other_user_id: must not contain whitespace (found U+0020)"),
        (too_long.as_str(), "other_user_id: must be at most 128 bytes"),
    ] {
        let status = refused(
            app.client("alice")
                .get_relationship(pb::GetRelationshipRequest {
                    other_user_id: other.into(),
                })
                .await,
            Code::InvalidArgument,
            says,
        );
        assert_eq!(violated_fields(&status), ["other_user_id"]);
    }
}
