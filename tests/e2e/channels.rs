//! E-mail and push, end to end: both services as real processes, a real
//! SMTP server (the sink binary) and a real HTTP receiver that checks every
//! signature with the Standard Webhooks library. Digests arrive as one mail
//! with only what is still pending; a push is followed by its retraction;
//! nothing withdrawn in time is ever mailed or pushed; and the mail server
//! or webhook being down, failing, or notification-service being killed
//! loses nothing and sends nothing twice.

use std::{collections::HashMap, time::Duration};

use e2e::{
    Notifications, Pair, eventually, invitations, notifications,
    sinks::{Call, Mail, SmtpSink, WebhookReceiver},
};
use proto::notifications::v1 as npb;

use crate::common::{WAIT, send, withdraw};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What a test's notification-service is given: mail and push where the
/// sinks are, short timers and retries.
fn channel_env(smtp: Option<&SmtpSink>, webhook: Option<&WebhookReceiver>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("NOTIFICATION_TIMER_TICK", "20ms".to_owned()),
        ("NOTIFICATION_UNDO_WINDOW", "1s".to_owned()),
        ("NOTIFICATION_DIGEST_INTERVAL", "3s".to_owned()),
        ("NOTIFICATION_RETRY_BACKOFF", "200ms".to_owned()),
        ("NOTIFICATION_CHANNEL_TIMEOUT", "5s".to_owned()),
        (
            "NOTIFICATION_MAIL_FROM",
            "Discreet <notifications@example.org>".to_owned(),
        ),
    ];
    if let Some(smtp) = smtp {
        env.push(("NOTIFICATION_SMTP_URL", smtp.url()));
    }
    if let Some(webhook) = webhook {
        env.push(("NOTIFICATION_WEBHOOK_URL", webhook.url()));
        env.push(("NOTIFICATION_WEBHOOK_SECRET", SECRET.to_owned()));
    }
    env
}

/// Sets the user's new-invitation notifications to `delivery` and `detail`
/// on `channels`, with `email` as their address.
async fn choose(
    client: &mut Notifications,
    delivery: npb::Delivery,
    detail: npb::Detail,
    channels: &[npb::Channel],
    email: &str,
) -> Result<npb::Preferences, tonic::Status> {
    let request = npb::UpdatePreferencesRequest {
        preferences: Some(npb::Preferences {
            invitation_received: Some(npb::TopicPreference {
                enabled: true,
                delivery: delivery.into(),
                detail: detail.into(),
                channels: channels.iter().map(|&c| c.into()).collect(),
            }),
            email_address: email.to_owned(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["invitation_received".into(), "email_address".into()],
        }),
    };
    Ok(client.update_preferences(request).await?.into_inner())
}

/// Bob's client, once he has chosen as [`choose`] does.
async fn bob_chooses(
    pair: &Pair,
    delivery: npb::Delivery,
    detail: npb::Detail,
    channels: &[npb::Channel],
    email: &str,
) -> Notifications {
    let mut bob = notifications(&pair.notification, "bob");
    choose(&mut bob, delivery, detail, channels, email)
        .await
        .expect("channels the server has, with an address for EMAIL");
    bob
}

async fn mails_at_least(smtp: &SmtpSink, n: usize) -> Vec<Mail> {
    eventually(WAIT, || async {
        let mails = smtp.mails();
        (mails.len() >= n).then_some(mails)
    })
    .await
}

async fn calls_at_least(webhook: &WebhookReceiver, n: usize) -> Vec<Call> {
    eventually(WAIT, || async {
        let calls = webhook.calls();
        (calls.iter().filter(|c| c.status_returned < 300).count() >= n).then_some(calls)
    })
    .await
}

/// The answer to the sender's question, per channel; `None` until
/// notification-service has the invitation's event.
async fn try_channel_state(
    client: &mut Notifications,
    invitation: &str,
    channel: npb::Channel,
) -> Option<npb::ChannelState> {
    let status = client
        .get_delivery_status(npb::GetDeliveryStatusRequest {
            invitation_id: invitation.to_owned(),
        })
        .await
        .ok()?
        .into_inner();
    let entry = status
        .channels
        .iter()
        .find(|c| c.channel == i32::from(channel))
        .expect("every channel is reported");
    Some(npb::ChannelState::try_from(entry.state).expect("a known state"))
}

/// [`try_channel_state`] of an invitation notification-service has.
async fn channel_state(client: &mut Notifications, invitation: &str, channel: npb::Channel) -> npb::ChannelState {
    try_channel_state(client, invitation, channel)
        .await
        .expect("a delivery status")
}

/// Waits out `d` to show that nothing more arrives (what must not happen
/// cannot be waited for).
async fn quiet_for(d: Duration) {
    tokio::time::sleep(d).await;
}

fn accepted(calls: &[Call]) -> Vec<&Call> {
    calls.iter().filter(|c| c.status_returned < 300).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_is_one_mail_with_the_invitations_still_pending_and_none_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(&dir.path().join("smtp"));
    let pair = Pair::start(&channel_env(Some(&smtp), None), &[]);
    bob_chooses(
        &pair,
        npb::Delivery::Digest,
        npb::Detail::Full,
        &[npb::Channel::InApp, npb::Channel::Email],
        "bob@example.com",
    )
    .await;

    let mut ids = HashMap::new();
    for (sender, note) in [
        ("alice", "Hello from Alice"),
        ("carol", "Carol's note"),
        ("dan", "Dan here"),
    ] {
        let mut client = invitations(&pair.invitation, sender);
        ids.insert(sender, (send(&mut client, "bob", note).await.expect("send"), client));
    }
    let (carols, carol) = ids.get_mut("carol").unwrap();
    withdraw(carol, carols).await;

    let mails = mails_at_least(&smtp, 1).await;
    quiet_for(Duration::from_secs(4)).await;
    let mails_now = smtp.mails();
    assert_eq!(mails_now.len(), 1, "one mail per digest: {mails_now:#?}");
    let mail = &mails[0];
    assert_eq!(mail.to, ["bob@example.com"]);
    assert_eq!(mail.subject, "You have 2 new invitations to connect");
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("alice") || part.contains("Hello from Alice"), "{part}");
        assert!(part.contains("Dan here"), "{part}");
        assert!(!part.contains("carol") && !part.contains("Carol"), "withdrawn: {part}");
    }
    assert!(!mail.raw.contains("Carol") && !mail.raw.contains("carol"));
    assert!(mail.message_id.ends_with("@example.org"), "{}", mail.message_id);

    // The sender asks: told by e-mail, and in the app.
    let (alices, _) = &ids["alice"];
    let mut alice_n = notifications(&pair.notification, "alice");
    assert_eq!(
        channel_state(&mut alice_n, alices, npb::Channel::Email).await,
        npb::ChannelState::Sent
    );
    assert_eq!(
        channel_state(&mut alice_n, alices, npb::Channel::InApp).await,
        npb::ChannelState::Sent
    );
    assert_eq!(
        channel_state(&mut alice_n, alices, npb::Channel::Push).await,
        npb::ChannelState::None
    );

    // The next digest is a mail of its own.
    let mut erin = invitations(&pair.invitation, "erin");
    send(&mut erin, "bob", "Erin too").await.expect("send");
    let mails = mails_at_least(&smtp, 2).await;
    assert!(mails[1].subject.contains("wants to connect"), "{}", mails[1].subject);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minimal_mail_names_no_one_anywhere_and_a_quick_withdrawal_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(&dir.path().join("smtp"));
    let webhook = WebhookReceiver::start(SECRET).await;
    let pair = Pair::start(&channel_env(Some(&smtp), Some(&webhook)), &[]);
    let mut bob = bob_chooses(
        &pair,
        npb::Delivery::Immediate,
        npb::Detail::Minimal,
        &[npb::Channel::Email, npb::Channel::Push],
        "bob@example.com",
    )
    .await;

    // A mistake withdrawn inside the undo window: no mail, no push, ever.
    let mut mallory = invitations(&pair.invitation, "mallory");
    let mistake = send(&mut mallory, "bob", "SECRET mistake").await.expect("send");
    withdraw(&mut mallory, &mistake).await;
    let mut alice = invitations(&pair.invitation, "alice");
    send(&mut alice, "bob", "SECRET personal note").await.expect("send");

    let mails = mails_at_least(&smtp, 1).await;
    let calls = calls_at_least(&webhook, 1).await;
    quiet_for(Duration::from_secs(2)).await;
    assert_eq!(smtp.mails().len(), 1, "only Alice's: {:#?}", smtp.mails());
    assert_eq!(accepted(&webhook.calls()).len(), 1, "only Alice's");
    let mail = &mails[0];
    assert_eq!(mail.subject, "You have a new invitation to connect");
    for text in [&mail.raw, &mail.text, &mail.html] {
        for secret in ["alice", "Alice", "SECRET", "mallory", &mistake] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    let body = calls[0].body.to_string();
    assert!(calls[0].fresh, "signature and timestamp check out");
    assert!(
        !body.contains("alice") && !body.contains("SECRET") && !body.contains(&mistake),
        "{body}"
    );
    // Bob chose no IN_APP: his inbox stays empty.
    let inbox = bob
        .list_notifications(npb::ListNotificationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inbox.notifications, []);

    let mut mallory_n = notifications(&pair.notification, "mallory");
    for channel in [npb::Channel::Email, npb::Channel::Push, npb::Channel::InApp] {
        assert_eq!(
            channel_state(&mut mallory_n, &mistake, channel).await,
            npb::ChannelState::None,
            "{channel:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_is_followed_by_its_retraction_each_signed_and_failures_are_retried_with_one_id() {
    let webhook = WebhookReceiver::start(SECRET).await;
    // The first two tries of the first call fail.
    webhook.respond_with(vec![500, 503]);
    let pair = Pair::start(&channel_env(None, Some(&webhook)), &[]);
    bob_chooses(
        &pair,
        npb::Delivery::Immediate,
        npb::Detail::Full,
        &[npb::Channel::InApp, npb::Channel::Push],
        "",
    )
    .await;
    let mut alice = invitations(&pair.invitation, "alice");
    let id = send(&mut alice, "bob", "Hi Bob").await.expect("send");

    let calls = calls_at_least(&webhook, 1).await;
    assert_eq!(calls.len(), 3, "two failures, then the delivery: {calls:#?}");
    assert!(calls.iter().all(|c| c.id == calls[0].id), "one webhook-id on every try");
    assert!(calls.iter().all(|c| c.fresh), "every signature checks out");
    let delivered = &calls[2];
    assert_eq!(delivered.body["type"], "notification.delivered");
    assert_eq!(delivered.body["data"]["user_id"], "bob");
    let notification = &delivered.body["data"]["update"]["delivered"];
    assert_eq!(notification["invitationIds"][0], id.as_str());
    assert_eq!(notification["actorId"], "alice");
    let alice_n = notifications(&pair.notification, "alice");
    // Recorded once the worker has the webhook's answer.
    eventually(WAIT, || {
        let mut alice_n = alice_n.clone();
        let id = id.clone();
        async move {
            (try_channel_state(&mut alice_n, &id, npb::Channel::Push).await == Some(npb::ChannelState::Sent))
                .then_some(())
        }
    })
    .await;

    withdraw(&mut alice, &id).await;
    let calls = calls_at_least(&webhook, 2).await;
    let accepted = accepted(&calls);
    let retracted = accepted[1];
    assert!(retracted.fresh);
    assert_eq!(retracted.body["type"], "notification.retracted");
    assert_ne!(retracted.id, delivered.id);
    assert_eq!(
        retracted.body["data"]["update"]["retracted"]["notificationIds"][0],
        notification["id"]
    );
    assert!(
        retracted.body["data"]["update"]["cursor"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > delivered.body["data"]["update"]["cursor"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        "in the app's order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_webhook_never_delays_the_app() {
    let webhook = WebhookReceiver::start(SECRET).await;
    webhook.set_delay(Duration::from_secs(4));
    let pair = Pair::start(&channel_env(None, Some(&webhook)), &[]);
    let mut bob = bob_chooses(
        &pair,
        npb::Delivery::Immediate,
        npb::Detail::Full,
        &[npb::Channel::InApp, npb::Channel::Push],
        "",
    )
    .await;
    let mut stream = bob
        .subscribe(npb::SubscribeRequest { resume_after: None })
        .await
        .unwrap()
        .into_inner();
    let mut alice = invitations(&pair.invitation, "alice");
    let mut carol = invitations(&pair.invitation, "carol");
    send(&mut alice, "bob", "one").await.expect("send");
    send(&mut carol, "bob", "two").await.expect("send");
    // Both reach the app while the webhook still holds its first call.
    for _ in 0..2 {
        crate::common::next_update(&mut stream).await;
    }
    let calls = webhook.calls();
    assert!(
        calls.len() <= 1,
        "the app did not wait for the webhook: {} calls answered so far",
        calls.len()
    );
    // And the pushes go out in turn, each once.
    let calls = calls_at_least(&webhook, 2).await;
    assert_eq!(accepted(&calls).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_server_down_then_back_and_a_refusal_for_now_lose_nothing_and_send_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut smtp = SmtpSink::start(&dir.path().join("smtp"));
    let pair = Pair::start(&channel_env(Some(&smtp), None), &[]);
    bob_chooses(
        &pair,
        npb::Delivery::Immediate,
        npb::Detail::Full,
        &[npb::Channel::Email],
        "bob@example.com",
    )
    .await;

    smtp.kill();
    let mut alice = invitations(&pair.invitation, "alice");
    let first = send(&mut alice, "bob", "while the server is down").await.expect("send");
    let mut alice_n = notifications(&pair.notification, "alice");
    // Held for the undo window, then tried and retried: pending all along.
    eventually(WAIT, || async {
        (pair.notification.log().contains("will retry")).then_some(())
    })
    .await;
    assert_eq!(
        channel_state(&mut alice_n, &first, npb::Channel::Email).await,
        npb::ChannelState::Pending
    );
    let retries_while_down = pair.notification.log().matches("will retry").count();
    let back = std::time::Instant::now();
    smtp.restart();
    // A refusal for now (451) on the next mail, then the server takes it.
    let mails = mails_at_least(&smtp, 1).await;
    println!(
        "figures: mail server down: {retries_while_down} tries failed for now; the mail arrived {} ms after it came back",
        back.elapsed().as_millis()
    );
    let retries_before = pair.notification.log().matches("will retry").count();
    smtp.set_reply(Some(451));
    let mut carol = invitations(&pair.invitation, "carol");
    let second = send(&mut carol, "bob", "after a refusal").await.expect("send");
    eventually(WAIT, || async {
        let log = pair.notification.log();
        (log.matches("will retry").count() > retries_before && log.contains("451")).then_some(())
    })
    .await;
    smtp.set_reply(None);
    let mails = [mails, mails_at_least(&smtp, 2).await].concat();
    quiet_for(Duration::from_secs(2)).await;
    let all = smtp.mails();
    assert_eq!(all.len(), 2, "each mail once: {all:#?}");
    assert!(mails.iter().any(|m| m.text.contains("while the server is down")));
    assert!(all.iter().any(|m| m.text.contains("after a refusal")));
    let mut carol_n = notifications(&pair.notification, "carol");
    assert_eq!(
        channel_state(&mut carol_n, &second, npb::Channel::Email).await,
        npb::ChannelState::Sent
    );

    // A permanent refusal (550) fails the mail, and the sender is told so.
    smtp.set_reply(Some(550));
    let mut dan = invitations(&pair.invitation, "dan");
    let third = send(&mut dan, "bob", "refused for good").await.expect("send");
    let mut dan_n = notifications(&pair.notification, "dan");
    eventually(WAIT, || {
        let mut dan_n = dan_n.clone();
        let third = third.clone();
        async move {
            (try_channel_state(&mut dan_n, &third, npb::Channel::Email).await == Some(npb::ChannelState::Failed))
                .then_some(())
        }
    })
    .await;
    assert_eq!(
        channel_state(&mut dan_n, &third, npb::Channel::Email).await,
        npb::ChannelState::Failed
    );
}

/// notification-service killed while mail and push wait in its queue (the
/// mail server down, the webhook failing): after the restart each goes out
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_queueing_and_sending_loses_nothing_and_sends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut smtp = SmtpSink::start(&dir.path().join("smtp"));
    let webhook = WebhookReceiver::start(SECRET).await;
    let mut pair = Pair::start(&channel_env(Some(&smtp), Some(&webhook)), &[]);
    let bob = bob_chooses(
        &pair,
        npb::Delivery::Immediate,
        npb::Detail::Full,
        &[npb::Channel::InApp, npb::Channel::Email, npb::Channel::Push],
        "bob@example.com",
    )
    .await;
    smtp.kill();
    webhook.respond_with(vec![500; 1000]);

    const SENDERS: usize = 5;
    let mut ids = Vec::new();
    for i in 0..SENDERS {
        let mut sender = invitations(&pair.invitation, &format!("sender-{i}"));
        ids.push(send(&mut sender, "bob", &format!("note {i}")).await.expect("send"));
    }
    // Every one delivered in the app, so its mail and push are queued.
    eventually(WAIT, || {
        let mut bob = bob.clone();
        async move { (crate::common::inbox(&mut bob).await.len() == SENDERS).then_some(()) }
    })
    .await;
    pair.notification.kill();
    let failed_calls = webhook.calls().len();
    webhook.respond_with(Vec::new());
    smtp.restart();
    let restarted = std::time::Instant::now();
    pair.notification.restart();

    mails_at_least(&smtp, SENDERS).await;
    let calls = calls_at_least(&webhook, SENDERS).await;
    let all_out = restarted.elapsed();
    quiet_for(Duration::from_secs(3)).await;
    let mails = smtp.mails().len();
    println!(
        "figures: kill -9 with {SENDERS} mails and {SENDERS} pushes queued ({failed_calls} failed push tries before); \
         after the restart {mails} mails and {} accepted pushes, all out {} ms after the restart began",
        accepted(&webhook.calls()).len(),
        all_out.as_millis()
    );
    assert_eq!(mails, SENDERS, "each mail once");
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for call in accepted(&webhook.calls()) {
        assert!(call.fresh);
        *delivered.entry(call.id.clone()).or_default() += 1;
    }
    assert_eq!(delivered.len(), SENDERS, "each push once: {calls:#?}");
    assert!(delivered.values().all(|&n| n == 1), "{delivered:?}");
}
