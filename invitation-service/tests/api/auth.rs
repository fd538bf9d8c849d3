//! Authentication: every RPC needs a valid bearer token, refusals say what is
//! wrong without echoing the token, and the caller is always the token's
//! subject.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proto::invitations::v1 as pb;
use service_kit::auth::{Claims, JwtKeys};
use tonic::{Code, Request, Status};

use crate::{
    helpers::{Client, SECRET, TestApp, spawn_app},
    invitations::{
        get, ids, never_existed, received, refused, send, stats, try_accept, try_get, try_ignore, try_send, world,
    },
};

/// Seconds since the Unix epoch, as tokens count time.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Signs any serialisable claims with the service's secret.
macro_rules! sign {
    ($claims:expr, $algorithm:expr) => {
        jsonwebtoken::encode(
            &Header::new($algorithm),
            &$claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
}

/// Calls every RPC of the service once with `client`.
async fn call_every_rpc(mut client: Client) -> Vec<(&'static str, Result<(), Status>)> {
    let id = never_existed();
    vec![
        (
            "SendInvitation",
            client
                .send_invitation(pb::SendInvitationRequest {
                    recipient_id: "bob".into(),
                    ..pb::SendInvitationRequest::default()
                })
                .await
                .map(drop),
        ),
        (
            "WithdrawInvitation",
            client
                .withdraw_invitation(pb::WithdrawInvitationRequest {
                    invitation_id: id.clone(),
                    note: String::new(),
                })
                .await
                .map(drop),
        ),
        (
            "AcceptInvitation",
            client
                .accept_invitation(pb::AcceptInvitationRequest {
                    invitation_id: id.clone(),
                })
                .await
                .map(drop),
        ),
        (
            "IgnoreInvitation",
            client
                .ignore_invitation(pb::IgnoreInvitationRequest {
                    invitation_id: id.clone(),
                })
                .await
                .map(drop),
        ),
        (
            "GetInvitation",
            client
                .get_invitation(pb::GetInvitationRequest { invitation_id: id })
                .await
                .map(drop),
        ),
        (
            "ListSentInvitations",
            client
                .list_sent_invitations(pb::ListSentInvitationsRequest::default())
                .await
                .map(drop),
        ),
        (
            "ListReceivedInvitations",
            client
                .list_received_invitations(pb::ListReceivedInvitationsRequest::default())
                .await
                .map(drop),
        ),
        (
            "GetRelationship",
            client
                .get_relationship(pb::GetRelationshipRequest {
                    other_user_id: "bob".into(),
                })
                .await
                .map(drop),
        ),
        (
            "ListConnections",
            client
                .list_connections(pb::ListConnectionsRequest::default())
                .await
                .map(drop),
        ),
        (
            "RemoveConnection",
            client
                .remove_connection(pb::RemoveConnectionRequest {
                    other_user_id: "bob".into(),
                })
                .await
                .map(drop),
        ),
        (
            "GetInvitationStats",
            client
                .get_invitation_stats(pb::GetInvitationStatsRequest {})
                .await
                .map(drop),
        ),
    ]
}

#[tokio::test]
async fn every_rpc_without_credentials_is_unauthenticated() {
    let app = spawn_app().await;

    let results = call_every_rpc(app.client_with_token(None)).await;

    assert_eq!(results.len(), 11, "one call per RPC of the service");
    for (rpc, result) in results {
        let status = result.expect_err(rpc);
        assert_eq!(status.code(), Code::Unauthenticated, "{rpc}: {status:?}");
        assert_eq!(
            status.message(),
            "missing credentials: send the header `authorization: Bearer <token>`",
            "{rpc}"
        );
    }
    assert!(received(&app, "bob").await.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn every_rpc_answers_a_valid_token() {
    let app = spawn_app().await;

    for (rpc, result) in call_every_rpc(app.client("alice")).await {
        if let Err(status) = result {
            assert_eq!(status.code(), Code::NotFound, "{rpc} with a valid token: {status:?}");
        }
    }
}

/// Sends `authorization: <header>` with a SendInvitation from the token's
/// subject to bob.
async fn send_with_header(app: &TestApp, header: &str) -> Result<pb::Invitation, Status> {
    let mut request = Request::new(pb::SendInvitationRequest {
        recipient_id: "bob".into(),
        ..pb::SendInvitationRequest::default()
    });
    request.metadata_mut().insert("authorization", header.parse().unwrap());
    app.client_with_token(None)
        .send_invitation(request)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn bad_credentials_are_unauthenticated_with_a_clear_message_that_never_echoes_the_token() {
    let app = spawn_app().await;
    let far = unix_now() + 3600;
    let claims = |sub: &str, exp: u64| Claims {
        sub: sub.into(),
        name: Some("Alice".into()),
        exp,
        iat: 0,
        scope: None,
    };
    let other_secret = JwtKeys::new("another-secret-0123456789").unwrap();
    let cases = [
        (
            "basic scheme",
            "Basic YWxpY2U6c2VjcmV0".to_owned(),
            "must be `Bearer <token>`",
        ),
        ("garbage", "Bearer not.a.jwt".to_owned(), "the token is malformed"),
        (
            "another secret",
            format!(
                "Bearer {}",
                other_secret
                    .mint("alice", None, Duration::from_secs(3600), None)
                    .unwrap()
            ),
            "the token's signature does not match",
        ),
        (
            "expired",
            format!("Bearer {}", sign!(claims("alice", unix_now() - 3600), Algorithm::HS256)),
            "the token has expired",
        ),
        (
            "HS512",
            format!("Bearer {}", sign!(claims("alice", far), Algorithm::HS512)),
            "the token must be signed with HS256",
        ),
        (
            "invalid subject",
            format!("Bearer {}", sign!(claims("alice smith", far), Algorithm::HS256)),
            "the token's subject is not a valid user id",
        ),
    ];

    for (case, header, says) in &cases {
        let status = send_with_header(&app, header).await.expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert!(status.message().contains(says), "{case}: {:?}", status.message());
        let token = header.split_whitespace().last().unwrap();
        assert!(!status.message().contains(token), "{case}: the token is echoed");
        assert!(!status.message().contains("alice"), "{case}: the subject is echoed");
    }

    assert!(received(&app, "bob").await.is_empty(), "nothing was sent");
    assert_eq!(stats(&app, "alice").await.sent_last_7_days, 0);
}

#[tokio::test]
async fn a_token_without_sub_or_exp_is_told_which_claim_is_missing() {
    let app = spawn_app().await;
    let far = unix_now() + 3600;

    for (case, token) in [
        ("no subject", sign!(HashMap::from([("exp", far)]), Algorithm::HS256)),
        ("no expiry", sign!(HashMap::from([("sub", "alice")]), Algorithm::HS256)),
    ] {
        let status = send_with_header(&app, &format!("Bearer {token}"))
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert_eq!(
            status.message(),
            "the token lacks a required claim (sub, exp)",
            "{case}"
        );
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_matched_in_any_case_and_followed_by_one_or_more_spaces() {
    let app = spawn_app().await;

    for (sender, scheme) in [("alice", "bearer "), ("carol", "Bearer  "), ("dave", "BEARER   ")] {
        let inv = send_with_header(&app, &format!("{scheme}{}", app.token(sender)))
            .await
            .unwrap_or_else(|s| panic!("{scheme:?}: {s:?}"));
        assert_eq!(inv.sender_id, sender);
    }
    for scheme in ["Bearer", "Bearer\t", "Bearer:"] {
        let status = send_with_header(&app, &format!("{scheme}{}", app.token("erin")))
            .await
            .expect_err(scheme);
        assert_eq!(status.code(), Code::Unauthenticated, "{scheme:?}");
        assert_eq!(
            status.message(),
            "the authorization header must be `Bearer <token>`",
            "{scheme:?}"
        );
    }
}

#[tokio::test]
async fn a_token_whose_subject_or_name_breaks_the_text_rules_is_unauthenticated() {
    let app = spawn_app().await;
    let claims = |sub: &str, name: &str| Claims {
        sub: sub.into(),
        name: Some(name.into()),
        exp: unix_now() + 3600,
        iat: 0,
        scope: None,
    };
    let cases = [
        (
            "a bidi override in the subject",
            claims("bob\u{202e}", "Bob"),
            "the token's subject is not a valid user id: must not contain control or invisible formatting \
             characters (found U+202E)",
        ),
        (
            "a zero width space in the subject",
            claims("bo\u{200b}b", "Bob"),
            "the token's subject is not a valid user id: must not contain control or invisible formatting \
             characters (found U+200B)",
        ),
        (
            "an escape sequence in the name",
            claims("mallory", "\u{1b}[2JBob"),
            "the token's name claim is not a valid display name: must not contain control characters (found \
             U+001B)",
        ),
        (
            "a line break in the name",
            claims("mallory", "Bob\nAdmin"),
            "the token's name claim is not a valid display name: must not contain control characters (found \
             U+000A)",
        ),
    ];

    for (case, claims, says) in &cases {
        let status = send_with_header(&app, &format!("Bearer {}", sign!(claims, Algorithm::HS256)))
            .await
            .expect_err(case);
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unauthenticated, *says),
            "{case}"
        );
    }

    assert!(received(&app, "bob").await.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_token_not_valid_yet_is_unauthenticated() {
    let app = spawn_app().await;
    let now = unix_now();
    let token = |nbf: u64| {
        sign!(
            serde_json::json!({ "sub": "alice", "exp": now + 7200, "nbf": nbf }),
            Algorithm::HS256
        )
    };

    let status = send_with_header(&app, &format!("Bearer {}", token(now + 3600)))
        .await
        .expect_err("a token valid from an hour on");

    assert_eq!(
        (status.code(), status.message()),
        (Code::Unauthenticated, "the token is not valid yet")
    );
    assert!(received(&app, "bob").await.is_empty(), "nothing was sent");
    let inv = send_with_header(&app, &format!("Bearer {}", token(now - 60)))
        .await
        .expect("a token valid since a minute ago");
    assert_eq!(inv.sender_id, "alice");
}

#[tokio::test]
async fn the_sender_is_the_token_subject_and_their_name_its_name_claim() {
    let app = spawn_app().await;
    let with_name = |sub: &str, name: Option<&str>| Claims {
        sub: sub.into(),
        name: name.map(str::to_owned),
        exp: unix_now() + 3600,
        iat: 0,
        scope: None,
    };
    // 100 characters once composed, though typed as 200.
    let longest = "e\u{301}".repeat(100);
    let too_long = "é".repeat(101);

    let named = send(&app, "alice", "bob").await;
    let anonymous = send_with_header(
        &app,
        &format!("Bearer {}", sign!(with_name("carol", None), Algorithm::HS256)),
    )
    .await
    .unwrap();
    let blank = send_with_header(
        &app,
        &format!("Bearer {}", sign!(with_name("erin", Some("   ")), Algorithm::HS256)),
    )
    .await
    .unwrap();
    let long = send_with_header(
        &app,
        &format!("Bearer {}", sign!(with_name("dave", Some(&longest)), Algorithm::HS256)),
    )
    .await
    .unwrap();
    let refused = send_with_header(
        &app,
        &format!(
            "Bearer {}",
            sign!(with_name("frank", Some(&too_long)), Algorithm::HS256)
        ),
    )
    .await
    .unwrap_err();

    assert_eq!(
        (named.sender_id.as_str(), named.sender_name.as_str()),
        ("alice", "alice (display)")
    );
    assert_eq!(
        (anonymous.sender_id.as_str(), anonymous.sender_name.as_str()),
        ("carol", "")
    );
    assert_eq!((blank.sender_id.as_str(), blank.sender_name.as_str()), ("erin", ""));
    assert_eq!(long.sender_id, "dave");
    assert_eq!(long.sender_name, "é".repeat(100), "the name is kept composed");
    assert_eq!(
        (refused.code(), refused.message()),
        (
            Code::Unauthenticated,
            "the token's name claim is not a valid display name: must be at most 100 characters (this one has 101)"
        )
    );
}

#[tokio::test]
async fn a_token_for_another_user_cannot_act_on_an_invitation() {
    let app = spawn_app().await;
    let inv = send(&app, "alice", "bob").await;
    let users = ["alice", "bob", "mallory"];
    let before = world(&app, &users).await;

    for result in [
        try_accept(&app, "mallory", &inv.id).await,
        try_ignore(&app, "mallory", &inv.id).await,
        try_get(&app, "mallory", &inv.id).await,
    ] {
        refused(result, Code::NotFound, "invitation not found");
    }

    assert_eq!(world(&app, &users).await, before, "nothing changed");
    assert_eq!(get(&app, "bob", &inv.id).await, inv);
    assert_eq!(ids(&received(&app, "bob").await), [inv.id.as_str()]);
    assert!(received(&app, "mallory").await.is_empty());
}

#[tokio::test]
async fn the_sender_always_comes_from_the_token_never_from_the_request() {
    let app = spawn_app().await;

    let inv = try_send(&app, "mallory", "bob", "from alice, honest", "")
        .await
        .unwrap();

    assert_eq!(inv.sender_id, "mallory");
    assert_eq!(received(&app, "bob").await[0].sender_id, "mallory");
    assert!(
        crate::invitations::sent(&app, "alice").await.is_empty(),
        "nothing is attributed to anyone else"
    );
}
