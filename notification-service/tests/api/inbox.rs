//! The stored inbox: newest first in pages, unread only, read marks and the
//! unread count, and the refusals of malformed requests.

use std::time::Duration;

use proto::notifications::v1 as pb;
use tonic::{Code, Status};

use crate::helpers::{DIGEST, MINUTE, TestApp, invitation, spawn_app, spawn_app_with};

/// A server where `bob` gets `n` notifications, one a second apart.
async fn bob_with(n: u64) -> TestApp {
    let app = spawn_app_with(|config| config.undo_window = Duration::ZERO).await;
    app.receive_immediately("bob").await;
    let mut publisher = app.publisher().await;
    for i in 1..=n {
        publisher
            .publish([invitation(&format!("inv-{i}"), &format!("sender-{i}"), "bob").sent()])
            .await;
        app.advance(Duration::from_secs(1));
    }
    app
}

async fn try_mark_read(app: &TestApp, user: &str, ids: &[&str], all: bool) -> Result<u32, Status> {
    app.client(user)
        .mark_read(pb::MarkReadRequest {
            notification_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
            all,
        })
        .await
        .map(|r| r.into_inner().unread_count)
}

fn invitation_of(notifications: &[pb::Notification]) -> Vec<&str> {
    notifications.iter().map(|n| n.invitation_ids[0].as_str()).collect()
}

#[tokio::test]
async fn the_inbox_pages_newest_first() {
    let app = bob_with(5).await;
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = app.try_list("bob", 2, &token, false).await.unwrap();
        pages.push(invitation_of(&page.notifications).join(","));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, ["inv-5,inv-4", "inv-3,inv-2", "inv-1"]);

    let all = app.inbox("bob").await;
    let times: Vec<_> = all.iter().map(|n| n.created_at.unwrap().seconds).collect();
    assert!(times.windows(2).all(|w| w[0] > w[1]), "newest first: {times:?}");
    // A page that ends exactly at the last notification has no next token.
    let exact = app.try_list("bob", 5, "", false).await.unwrap();
    assert_eq!(exact.notifications, all);
    assert_eq!(exact.next_page_token, "");
    assert_eq!(app.try_list("carol", 2, "", false).await.unwrap().notifications, []);
}

#[tokio::test]
async fn read_marks_and_the_unread_count() {
    let app = bob_with(4).await;
    assert_eq!(app.unread("bob").await, 4);
    let inbox = app.inbox("bob").await;
    let id = |invitation: &str| {
        inbox
            .iter()
            .find(|n| n.invitation_ids == [invitation])
            .map(|n| n.id.clone())
            .unwrap()
    };
    let (two, four) = (id("inv-2"), id("inv-4"));

    assert_eq!(try_mark_read(&app, "bob", &[&two, &four], false).await.unwrap(), 2);
    assert_eq!(app.unread("bob").await, 2);
    let unread = app.try_list("bob", 10, "", true).await.unwrap();
    assert_eq!(invitation_of(&unread.notifications), ["inv-3", "inv-1"]);
    let first_page = app.try_list("bob", 1, "", true).await.unwrap();
    assert_eq!(invitation_of(&first_page.notifications), ["inv-3"]);
    let second_page = app.try_list("bob", 1, &first_page.next_page_token, true).await.unwrap();
    assert_eq!(invitation_of(&second_page.notifications), ["inv-1"]);
    let read: Vec<bool> = app.inbox("bob").await.iter().map(|n| n.read).collect();
    assert_eq!(read, [true, false, true, false]);

    // Marking again, or marking what does not exist, changes nothing.
    assert_eq!(try_mark_read(&app, "bob", &[&two, "999"], false).await.unwrap(), 2);
    // Another user cannot mark bob's notifications, whatever the id.
    let three = id("inv-3");
    assert_eq!(try_mark_read(&app, "carol", &[&three], false).await.unwrap(), 0);
    assert_eq!(try_mark_read(&app, "carol", &[], true).await.unwrap(), 0);
    assert_eq!(app.unread("bob").await, 2);

    assert_eq!(try_mark_read(&app, "bob", &[], true).await.unwrap(), 0);
    assert_eq!(app.unread("bob").await, 0);
    assert_eq!(app.try_list("bob", 10, "", true).await.unwrap().notifications, []);
    assert!(app.inbox("bob").await.iter().all(|n| n.read));
}

#[tokio::test]
async fn malformed_requests_are_refused_and_change_nothing() {
    let app = bob_with(2).await;
    let inbox = app.inbox("bob").await;
    let id = inbox[0].id.as_str();
    let too_many: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let cases: [(&str, &[&str], bool); 5] = [
        ("ids and all", &[id], true),
        ("neither", &[], false),
        ("garbage id", &["not-an-id"], false),
        ("negative id", &["-1"], false),
        ("more than 1000 ids", &too_many, false),
    ];
    for (what, ids, all) in cases {
        let refused = try_mark_read(&app, "bob", ids, all).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
        assert_eq!(app.unread("bob").await, 2, "{what} changed nothing");
    }
    // A thousand is allowed.
    let thousand = &too_many[..1000];
    assert_eq!(try_mark_read(&app, "bob", thousand, false).await.unwrap(), 0);

    for (what, page_size, token) in [("negative page size", -1, ""), ("foreign page token", 2, "abc")] {
        let refused = app.try_list("bob", page_size, token, false).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
    }
}

/// A digest opened before an IMMEDIATE notification but delivered after it
/// is the newer of the two.
#[tokio::test]
async fn the_inbox_is_newest_first_by_delivery() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    publisher
        .publish([invitation("inv-to-bob", "alice", "bob").sent()])
        .await;
    app.advance(MINUTE);
    let by_bob = invitation("inv-by-bob", "bob", "carol");
    publisher.publish([by_bob.sent(), by_bob.accepted()]).await;
    app.advance_settled(&mut publisher, DIGEST).await;

    let inbox = app.inbox("bob").await;
    assert_eq!(inbox.len(), 2);
    let times: Vec<_> = inbox.iter().map(|n| n.created_at.unwrap().seconds).collect();
    assert!(times[0] > times[1], "newest first: {inbox:?}");
    assert_eq!(inbox[0].invitation_ids, ["inv-to-bob"]);
}
