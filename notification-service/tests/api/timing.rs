//! The user's clock: a daily digest at a local time in their time zone, and
//! quiet hours that hold push (and e-mail) until they end while the app
//! gets everything at once; a withdrawal during the wait leaves no trace.
//! Driven by the manual clock from 2026-01-01T00:00:00Z.

use std::time::Duration;

use e2e::sinks::WebhookReceiver;
use notification_service::channels::{ChannelSettings, WebhookSettings, signature::WebhookSecret};
use proto::notifications::v1::{self as pb, Delivery::Immediate, Detail::Full};
use tonic::Code;

use crate::helpers::{
    MINUTE, PATIENCE, QUIET, UNDO, at, delivered, eventually, invitation, spawn_app, spawn_app_with, topic,
    well_formed_id,
};

const HOUR: Duration = Duration::from_secs(3600);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn clock(time_zone: &str, quiet: Option<(&str, &str)>, digest_time: &str) -> pb::Preferences {
    pb::Preferences {
        time_zone: time_zone.to_owned(),
        quiet_hours: quiet.map(|(start, end)| pb::QuietHours {
            start: start.to_owned(),
            end: end.to_owned(),
        }),
        digest_time: digest_time.to_owned(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_daily_digest_goes_out_at_nine_on_the_users_clock() {
    let app = spawn_app().await;
    let mut publisher = app.publisher().await;
    // 00:00Z is 19:00 the evening before in New York (EST, -05:00).
    app.update_preferences(
        "bob",
        clock("America/New_York", None, "09:00"),
        &["time_zone", "digest_time"],
    )
    .await;
    let mut stream = app.subscribe("bob", None).await;
    let a = invitation(&well_formed_id("inv-a"), "alice", "bob");
    publisher.publish([a.sent()]).await;
    let nine = 14 * HOUR; // 09:00 EST on 1 January
    assert_eq!(app.delivery_status("alice", &a.id).await, (false, at(nine)));

    app.advance(nine - Duration::from_secs(1));
    stream.assert_quiet().await;
    app.advance(Duration::from_secs(1));
    let update = stream.next().await;
    assert_eq!(delivered(&update).invitation_ids, std::slice::from_ref(&a.id));

    // The next one waits for the next morning.
    let b = invitation(&well_formed_id("inv-b"), "carol", "bob");
    publisher.publish([b.sent()]).await;
    assert_eq!(app.delivery_status("carol", &b.id).await, (false, at(nine + 24 * HOUR)));
}

#[tokio::test]
async fn bad_clocks_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let before = app.preferences("bob").await;
    for (what, update, mask, field) in [
        (
            "unknown zone",
            clock("Mars/Olympus", None, ""),
            "time_zone",
            "time_zone",
        ),
        ("a fixed offset", clock("+02:00", None, ""), "time_zone", "time_zone"),
        ("hour 24", clock("", None, "24:00"), "digest_time", "digest_time"),
        ("one digit", clock("", None, "9:00"), "digest_time", "digest_time"),
        (
            "quiet start",
            clock("", Some(("22:61", "07:00")), ""),
            "quiet_hours",
            "quiet_hours.start",
        ),
        (
            "quiet end",
            clock("", Some(("22:00", "")), ""),
            "quiet_hours",
            "quiet_hours.end",
        ),
    ] {
        let refused = app.try_update_preferences("bob", update, &[mask]).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
        assert!(refused.message().starts_with(field), "{what}: {}", refused.message());
    }
    assert_eq!(app.preferences("bob").await, before, "nothing changed");
    assert_eq!(before.time_zone, "UTC", "the default zone");
    let kept = app
        .update_preferences(
            "bob",
            clock("Australia/Lord_Howe", Some(("23:30", "06:30")), "07:15"),
            &["time_zone", "quiet_hours", "digest_time"],
        )
        .await;
    assert_eq!(kept.time_zone, "Australia/Lord_Howe");
    assert_eq!(
        kept.quiet_hours.map(|q| (q.start, q.end)),
        Some(("23:30".into(), "06:30".into()))
    );
    assert_eq!(kept.digest_time, "07:15");
}

#[tokio::test]
async fn quiet_hours_hold_push_but_not_the_app_and_a_withdrawal_meanwhile_leaves_no_trace() {
    let webhook = WebhookReceiver::start(SECRET).await;
    let url = webhook.url().parse().unwrap();
    let app = spawn_app_with(move |config| {
        config.channels = ChannelSettings {
            webhook: Some(WebhookSettings {
                url,
                secret: WebhookSecret::parse(SECRET).unwrap(),
                max_retry_age: 24 * HOUR,
                timeout: Duration::from_secs(5),
            }),
            ..ChannelSettings::default()
        };
    })
    .await;
    let mut publisher = app.publisher().await;
    // 00:00Z is 01:00 in Berlin: inside 22:00–07:00, which ends at 06:00Z.
    app.update_preferences(
        "bob",
        pb::Preferences {
            invitation_received: Some(pb::TopicPreference {
                channels: vec![pb::Channel::InApp.into(), pb::Channel::Push.into()],
                ..topic(true, Immediate, Full)
            }),
            ..clock("Europe/Berlin", Some(("22:00", "07:00")), "")
        },
        &["invitation_received", "time_zone", "quiet_hours"],
    )
    .await;
    let a = invitation(&well_formed_id("inv-a"), "alice", "bob");
    let c = invitation(&well_formed_id("inv-c"), "carol", "bob");
    publisher.publish([a.sent(), c.sent()]).await;
    app.advance(UNDO);
    // The app has both at once, in the middle of the night.
    let inbox = app.wait_for_inbox("bob", 2).await;
    assert_eq!(inbox.len(), 2);
    let status = app.try_delivery_status("alice", &a.id).await.unwrap();
    let push = status
        .channels
        .iter()
        .find(|c| c.channel == i32::from(pb::Channel::Push))
        .unwrap();
    assert_eq!(push.state(), pb::ChannelState::Pending);
    assert_eq!(push.at, at(6 * HOUR), "pushed when the quiet hours end");

    // Carol withdraws while the push waits: it will never be pushed.
    publisher.publish([c.withdrawn("")]).await;
    app.advance(6 * HOUR - UNDO - MINUTE);
    tokio::time::sleep(QUIET).await;
    assert_eq!(webhook.calls(), [], "nothing during the quiet hours");

    app.advance(MINUTE);
    let calls = eventually(PATIENCE, || async {
        let calls = webhook.calls();
        (!calls.is_empty()).then_some(calls)
    })
    .await;
    tokio::time::sleep(QUIET).await;
    let calls = webhook.calls().len().max(calls.len());
    assert_eq!(calls, 1, "alice's alone");
    let call = &webhook.calls()[0];
    assert!(call.verified);
    let body = call.body.to_string();
    assert!(body.contains(&a.id) && !body.contains(&c.id), "{body}");
}

/// Past `NOTIFICATION_MAX_IMMEDIATE_PER_HOUR` in a rolling hour, IMMEDIATE
/// notifications join the user's next digest: none is dropped, and once
/// the hour has rolled on they are immediate again.
#[tokio::test]
async fn past_the_hourly_limit_immediate_notifications_join_the_next_digest() {
    const LIMIT: u32 = 3;
    let app = spawn_app_with(|config| config.max_immediate_per_hour = LIMIT).await;
    let mut publisher = app.publisher().await;
    app.receive_immediately("bob").await;
    let invitations: Vec<_> = (0..5)
        .map(|i| invitation(&well_formed_id(&format!("inv-{i}")), &format!("sender-{i}"), "bob"))
        .collect();
    publisher
        .publish(invitations.iter().map(crate::helpers::Inv::sent))
        .await;
    app.advance(UNDO);
    let inbox = app.wait_for_inbox("bob", 3).await;
    assert_eq!(inbox.len(), 3, "three at once: {inbox:#?}");
    for inv in &invitations[3..] {
        assert_eq!(
            app.delivery_status(&inv.sender, &inv.id).await,
            (false, at(crate::helpers::DIGEST)),
            "the rest wait for the digest"
        );
    }
    app.advance(crate::helpers::DIGEST - UNDO);
    let inbox = app.wait_for_inbox("bob", 4).await;
    assert_eq!(
        inbox[0].invitation_ids,
        [invitations[3].id.clone(), invitations[4].id.clone()]
    );

    // An hour after the first three, the window has rolled on.
    app.advance(HOUR);
    let late = invitation(&well_formed_id("inv-late"), "sender-late", "bob");
    publisher.publish([late.sent()]).await;
    assert_eq!(
        app.delivery_status("sender-late", &late.id).await,
        (false, at(HOUR + crate::helpers::DIGEST + UNDO))
    );
}
