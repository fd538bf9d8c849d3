//! Hostile text at the edges: user ids that look like another user's, notes
//! that carry terminal escapes or NUL, and the same text typed composed or
//! decomposed. Refusals store nothing; what is stored is the normalised text.

use proto::invitations::v1 as pb;
use tonic::Code;

use crate::{
    helpers::spawn_app,
    invitations::{get, received, refused, send, sent, stats, try_send, try_withdraw, violated_fields, world},
};

#[tokio::test]
async fn a_recipient_id_with_an_invisible_character_is_invalid_argument_and_nothing_is_stored() {
    let app = spawn_app().await;

    for (recipient, found) in [("bo\u{200b}b", "U+200B"), ("bo\u{202e}b", "U+202E")] {
        let status = refused(
            try_send(&app, "alice", recipient, "", "").await,
            Code::InvalidArgument,
            &format!("recipient_id: must not contain control or invisible formatting characters (found {found})"),
        );
        assert_eq!(violated_fields(&status), ["recipient_id"], "{found}");
    }

    assert!(sent(&app, "alice").await.is_empty(), "nothing was stored");
    assert!(received(&app, "bob").await.is_empty());
    assert_eq!(stats(&app, "alice").await.sent_last_7_days, 0);
}

#[tokio::test]
async fn an_other_user_id_with_a_bidi_override_is_invalid_argument() {
    let app = spawn_app().await;

    let status = refused(
        app.client("alice")
            .get_relationship(pb::GetRelationshipRequest {
                other_user_id: "\u{202e}bob".into(),
            })
            .await,
        Code::InvalidArgument,
        "other_user_id: must not contain control or invisible formatting characters (found U+202E)",
    );

    assert_eq!(violated_fields(&status), ["other_user_id"]);
}

#[tokio::test]
async fn a_message_with_an_escape_sequence_or_nul_is_invalid_argument_and_nothing_is_stored() {
    let app = spawn_app().await;

    for (message, found) in [("\u{1b}[31mred\u{1b}[0m", "U+001B"), ("a\u{0}b", "U+0000")] {
        let status = refused(
            try_send(&app, "alice", "bob", message, "").await,
            Code::InvalidArgument,
            &format!("message: must not contain control characters other than line feed and tab (found {found})"),
        );
        assert_eq!(violated_fields(&status), ["message"], "{found}");
        assert!(!status.message().contains("red"), "the text is not echoed");
    }

    assert!(sent(&app, "alice").await.is_empty(), "nothing was stored");
    assert!(received(&app, "bob").await.is_empty());
}

#[tokio::test]
async fn a_withdrawal_note_with_nul_or_a_bidi_isolate_is_refused_and_the_invitation_stays_pending() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    let before = world(&app, &["alice", "bob"]).await;

    refused(
        try_withdraw(&app, "alice", &inv.id, "sorry\u{0}").await,
        Code::InvalidArgument,
        "note: must not contain control characters other than line feed and tab (found U+0000)",
    );
    refused(
        try_withdraw(&app, "alice", &inv.id, "sorry \u{2066}x\u{2069}").await,
        Code::InvalidArgument,
        "note: must not contain bidirectional embedding, override or isolate controls (found U+2066)",
    );

    assert_eq!(world(&app, &["alice", "bob"]).await, before);
    assert_eq!(get(&app, "alice", &inv.id).await.state(), pb::InvitationState::Pending);
}

#[tokio::test]
async fn a_decomposed_note_counts_and_comes_back_as_composed_characters() {
    let app = spawn_app().await;
    // "é" typed as "e" and a combining acute accent: two characters each.
    let decomposed = "e\u{301}".repeat(300);
    assert_eq!(decomposed.chars().count(), 600);

    let inv = try_send(&app, "alice", "bob", &decomposed, "").await.unwrap();

    assert_eq!(inv.message, "é".repeat(300));
    assert_eq!(inv.message.chars().count(), 300);
    assert_eq!(received(&app, "bob").await[0].message, "é".repeat(300));
    refused(
        try_send(&app, "alice", "carol", &"e\u{301}".repeat(301), "").await,
        Code::InvalidArgument,
        "message: must be at most 300 characters (this one has 301)",
    );
}

#[tokio::test]
async fn line_breaks_tabs_and_emoji_sequences_are_kept_and_carriage_returns_become_line_feeds() {
    let app = spawn_app().await;
    let technologist = "\u{1f469}\u{200d}\u{1f4bb}";

    let inv = try_send(
        &app,
        "alice",
        "bob",
        &format!("Hello\r\nfrom\rme\tand {technologist}\n"),
        "",
    )
    .await
    .unwrap();

    assert_eq!(inv.message, format!("Hello\nfrom\nme\tand {technologist}"));
}

#[tokio::test]
async fn a_user_id_typed_decomposed_reaches_the_same_user() {
    let app = spawn_app().await;
    let composed = "\u{e9}milie";
    let decomposed = "e\u{301}milie";

    let inv = send(&app, "alice", decomposed).await;

    assert_eq!(inv.recipient_id, composed, "the id is stored composed");
    let seen = received(&app, composed).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id, inv.id);
    // A token whose subject is typed decomposed is the same user too.
    assert_eq!(received(&app, decomposed).await, seen);
    refused(
        try_send(&app, decomposed, "alice", "", "").await,
        Code::AlreadyExists,
        "this user has already invited you",
    );
}
