//! The list RPCs (newest first, paged with opaque tokens, bounded page
//! sizes) and the durability of what they show across a restart.

use std::time::Duration;

use invitation_service::domain::Policy;
use proto::invitations::v1::{self as pb, InvitationState};
use tonic::{Code, Response, Status};

use crate::{
    helpers::{TestApp, spawn_app, spawn_app_with},
    invitations::{
        accept, at, connections, get, ids, received, refused, send, sent, try_send, violated_fields, withdraw, world,
    },
};

const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum List {
    Sent,
    Received,
}

/// One page of `user`'s list: the invitation ids and the next page token.
async fn page(
    app: &TestApp,
    user: &str,
    list: List,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<String>, String), Status> {
    let mut client = app.client(user);
    let page_token = page_token.to_owned();
    let (invitations, next) = match list {
        List::Sent => {
            let reply = client
                .list_sent_invitations(pb::ListSentInvitationsRequest { page_size, page_token })
                .await
                .map(Response::into_inner)?;
            (reply.invitations, reply.next_page_token)
        }
        List::Received => {
            let reply = client
                .list_received_invitations(pb::ListReceivedInvitationsRequest { page_size, page_token })
                .await
                .map(Response::into_inner)?;
            (reply.invitations, reply.next_page_token)
        }
    };
    Ok((invitations.into_iter().map(|inv| inv.id).collect(), next))
}

/// Every page of `user`'s list, following the tokens to the end.
async fn all_pages(app: &TestApp, user: &str, list: List, page_size: i32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let (items, next) = page(app, user, list, page_size, &token).await.unwrap();
        pages.push(items);
        if next.is_empty() {
            return pages;
        }
        assert!(pages.len() < 1_000, "the pages never end");
        token = next;
    }
}

/// `from` invites `n` users, one minute apart; returns the ids, newest first.
async fn invite_many(app: &TestApp, from: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(send(app, from, &format!("user-{i}")).await.id);
        app.clock.advance(MINUTE);
    }
    out.reverse();
    out
}

/// `n` users each invite `to`, one minute apart; returns the ids, newest first.
async fn invited_by_many(app: &TestApp, to: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(send(app, &format!("user-{i}"), to).await.id);
        app.clock.advance(MINUTE);
    }
    out.reverse();
    out
}

/// `from` invites `n` users at once (the same instant): for counting only.
async fn invite_many_at_once(app: &TestApp, from: &str, n: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let mut client = app.client(from);
        tasks.spawn(async move {
            client
                .send_invitation(pb::SendInvitationRequest {
                    recipient_id: format!("user-{i}"),
                    ..pb::SendInvitationRequest::default()
                })
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
}

#[tokio::test]
async fn lists_are_newest_first() {
    let app = spawn_app().await;

    let sent_ids = invite_many(&app, "alice", 3).await;
    let received_ids = invited_by_many(&app, "bob", 3).await;

    assert_eq!(ids(&sent(&app, "alice").await), sent_ids);
    assert_eq!(ids(&received(&app, "bob").await), received_ids);
    let listed = sent(&app, "alice").await;
    assert_eq!(listed[0].recipient_id, "user-2");
    assert_eq!(listed[2].recipient_id, "user-0");
}

#[tokio::test]
async fn paging_by_two_returns_every_invitation_once_in_order() {
    let app = spawn_app().await;
    let sent_ids = invite_many(&app, "alice", 5).await;
    let received_ids = invited_by_many(&app, "bob", 5).await;

    for (user, list, expected) in [("alice", List::Sent, sent_ids), ("bob", List::Received, received_ids)] {
        let pages = all_pages(&app, user, list, 2).await;
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1], "{list:?}");
        assert_eq!(pages.concat(), expected, "{list:?}: each once, newest first");
    }
}

#[tokio::test]
async fn a_list_that_ends_on_a_page_boundary_has_no_empty_last_page() {
    let app = spawn_app().await;
    let expected = invite_many(&app, "alice", 4).await;

    let (first, token) = page(&app, "alice", List::Sent, 2, "").await.unwrap();
    assert_eq!(first, expected[..2]);
    assert!(!token.is_empty());
    let (second, end) = page(&app, "alice", List::Sent, 2, &token).await.unwrap();
    assert_eq!(second, expected[2..]);
    assert_eq!(end, "", "no token when nothing follows");
}

#[tokio::test]
async fn a_page_size_of_zero_means_fifty() {
    let app = spawn_app().await;
    invite_many_at_once(&app, "alice", 51).await;

    let (first, token) = page(&app, "alice", List::Sent, 0, "").await.unwrap();
    assert_eq!(first.len(), 50);
    assert!(!token.is_empty());
    let (rest, end) = page(&app, "alice", List::Sent, 0, &token).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(end, "");
}

#[tokio::test]
async fn a_page_size_over_100_returns_100() {
    let app = spawn_app_with(Policy {
        weekly_limit: 200,
        ..Policy::default()
    })
    .await;
    invite_many_at_once(&app, "alice", 101).await;

    let (first, token) = page(&app, "alice", List::Sent, 101, "").await.unwrap();
    assert_eq!(first.len(), 100);
    assert!(!token.is_empty());
    let (rest, end) = page(&app, "alice", List::Sent, 101, &token).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(end, "");
    let mut all = [first, rest].concat();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 101, "each invitation exactly once");
}

#[tokio::test]
async fn connections_are_listed_newest_first_and_paged() {
    let app = spawn_app().await;
    for (i, friend) in ["bob", "carol", "dave"].into_iter().enumerate() {
        let inv = send(&app, "alice", friend).await;
        app.clock.advance(MINUTE * u32::try_from(i + 1).unwrap());
        accept(&app, friend, &inv.id).await;
    }

    let mut client = app.client("alice");
    let first = client
        .list_connections(pb::ListConnectionsRequest {
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let rest = client
        .list_connections(pb::ListConnectionsRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();

    let users = |list: &[pb::Connection]| list.iter().map(|c| c.user_id.clone()).collect::<Vec<_>>();
    assert_eq!(users(&first.connections), ["dave", "carol"]);
    assert_eq!(users(&rest.connections), ["bob"]);
    assert_eq!(rest.next_page_token, "");
    assert_eq!(first.connections[0].connected_at, at(MINUTE * 6));
    assert_eq!(rest.connections[0].connected_at, at(MINUTE));
}

#[tokio::test]
async fn a_negative_page_size_is_invalid_argument_for_every_list() {
    let app = spawn_app().await;
    send(&app, "alice", "bob").await;
    let mut client = app.client("alice");

    let results = [
        client
            .list_sent_invitations(pb::ListSentInvitationsRequest {
                page_size: -1,
                page_token: String::new(),
            })
            .await
            .map(drop),
        client
            .list_received_invitations(pb::ListReceivedInvitationsRequest {
                page_size: -1,
                page_token: String::new(),
            })
            .await
            .map(drop),
        client
            .list_connections(pb::ListConnectionsRequest {
                page_size: -1,
                page_token: String::new(),
            })
            .await
            .map(drop),
    ];

    for result in results {
        let status = refused(result, Code::InvalidArgument, "page_size: must not be negative");
        assert_eq!(violated_fields(&status), ["page_size"]);
    }
}

#[tokio::test]
async fn a_page_token_the_service_did_not_issue_is_invalid_argument_for_every_list() {
    let app = spawn_app().await;
    send(&app, "alice", "bob").await;
    let mut client = app.client("alice");
    let garbage = "not-a-token!".to_owned();

    let results = [
        client
            .list_sent_invitations(pb::ListSentInvitationsRequest {
                page_size: 10,
                page_token: garbage.clone(),
            })
            .await
            .map(drop),
        client
            .list_received_invitations(pb::ListReceivedInvitationsRequest {
                page_size: 10,
                page_token: garbage.clone(),
            })
            .await
            .map(drop),
        client
            .list_connections(pb::ListConnectionsRequest {
                page_size: 10,
                page_token: garbage,
            })
            .await
            .map(drop),
    ];

    for result in results {
        let status = refused(
            result,
            Code::InvalidArgument,
            "page_token: is not a token this service issued; pass next_page_token as given",
        );
        assert_eq!(violated_fields(&status), ["page_token"]);
    }
}

#[tokio::test]
async fn invitations_lists_and_connections_survive_a_restart() {
    let app = spawn_app().await;
    let pending = try_send(&app, "alice", "bob", "hello", "key-1").await.unwrap();
    let to_carol = send(&app, "alice", "carol").await;
    accept(&app, "carol", &to_carol.id).await;
    let to_dave = send(&app, "alice", "dave").await;
    withdraw(&app, "alice", &to_dave.id).await;
    let users = ["alice", "bob", "carol", "dave"];
    let before = world(&app, &users).await;

    let app = app.restart().await;

    assert_eq!(world(&app, &users).await, before);
    assert_eq!(get(&app, "bob", &pending.id).await, pending);
    assert_eq!(
        try_send(&app, "alice", "bob", "hello", "key-1").await.unwrap().id,
        pending.id,
        "the idempotency key is remembered"
    );
    assert_eq!(connections(&app, "carol").await[0].user_id, "alice");
    let accepted = accept(&app, "bob", &pending.id).await;
    assert_eq!(
        accepted.state(),
        InvitationState::Accepted,
        "the restarted service still acts"
    );
}
