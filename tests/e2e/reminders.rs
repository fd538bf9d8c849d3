//! Reminders end to end, with offsets of seconds (`INVITATION_REMINDERS`):
//! the built binaries, invitation-service's sweep emitting `reminded`, and
//! notification-service delivering it under its own topic. A withdrawn,
//! accepted or ignored invitation is never reminded of; a reminder due
//! while invitation-service was killed fires once after its restart.

use std::time::Duration;

use e2e::{Notifications, Pair, eventually, invitations, notifications};
use proto::{invitations::v1 as ipb, notifications::v1 as npb};

use crate::{
    common::{WAIT, immediate_topic, inbox, send, withdraw},
    metrics::{metrics, value},
};

/// Reminders after 2 s and 4 s.
const OFFSETS: &str = "2s,4s";
/// Past both offsets, with a margin for a sweep (every second).
const PAST_BOTH: Duration = Duration::from_secs(7);

fn reminders_about(listed: &[npb::Notification], id: &str) -> usize {
    listed
        .iter()
        .filter(|n| n.topic() == npb::Topic::InvitationReminder && n.invitation_ids.iter().any(|i| i == id))
        .count()
}

async fn wait_for_reminders(bob: &Notifications, id: &str, n: usize) -> Vec<npb::Notification> {
    eventually(WAIT, || {
        let mut bob = bob.clone();
        async move {
            let listed = inbox(&mut bob).await;
            (reminders_about(&listed, id) >= n).then_some(listed)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_invitation_is_reminded_at_each_offset_and_a_withdrawn_one_never() {
    let pair = Pair::start(
        &[("NOTIFICATION_DIGEST_INTERVAL", "1s".into())],
        &[("INVITATION_REMINDERS", OFFSETS.into())],
    );
    let mut bob = notifications(&pair.notification, "bob");
    immediate_topic(&mut bob, "invitation_reminder", npb::Detail::Full).await;

    let alices = send(&mut invitations(&pair.invitation, "alice"), "bob", "hello")
        .await
        .expect("send");
    let mut carol = invitations(&pair.invitation, "carol");
    let carols = send(&mut carol, "bob", "oops").await.expect("send");
    withdraw(&mut carol, &carols).await;
    let daves = send(&mut invitations(&pair.invitation, "dave"), "bob", "hi")
        .await
        .expect("send");
    let erins = send(&mut invitations(&pair.invitation, "erin"), "bob", "hey")
        .await
        .expect("send");
    let mut bob_acts = invitations(&pair.invitation, "bob");
    bob_acts
        .accept_invitation(ipb::AcceptInvitationRequest {
            invitation_id: daves.clone(),
        })
        .await
        .expect("accept");
    bob_acts
        .ignore_invitation(ipb::IgnoreInvitationRequest {
            invitation_id: erins.clone(),
        })
        .await
        .expect("ignore");

    let first = wait_for_reminders(&bob, &alices, 1).await;
    let reminder = first
        .iter()
        .find(|n| n.topic() == npb::Topic::InvitationReminder)
        .expect("the reminder");
    assert!(
        reminder.title.ends_with("is still waiting for your answer"),
        "{reminder:?}"
    );
    assert_eq!(reminder.body, "hello");
    let listed = wait_for_reminders(&bob, &alices, 2).await;

    // Well past both offsets: two reminders of alice's, none of the others.
    tokio::time::sleep(PAST_BOTH).await;
    let listed_later = inbox(&mut bob).await;
    assert_eq!(reminders_about(&listed_later, &alices), 2, "{listed_later:#?}");
    assert_eq!(listed_later.len(), listed.len(), "nothing more arrived");
    for other in [&daves, &erins] {
        assert_eq!(reminders_about(&listed_later, other), 0, "{listed_later:#?}");
    }
    assert!(
        !format!("{listed_later:?}").contains(&carols) && !format!("{listed_later:?}").contains("oops"),
        "the withdrawn invitation left no trace: {listed_later:#?}"
    );
    let text = metrics(&pair.invitation);
    assert_eq!(value(&text, "invitation_reminders_total"), Some(2.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_due_while_invitation_service_was_killed_fires_once_after_restart() {
    let mut pair = Pair::start(&[], &[("INVITATION_REMINDERS", OFFSETS.into())]);
    let mut bob = notifications(&pair.notification, "bob");
    immediate_topic(&mut bob, "invitation_reminder", npb::Detail::Full).await;
    let alices = send(&mut invitations(&pair.invitation, "alice"), "bob", "hello")
        .await
        .expect("send");

    // Killed before the first offset; down past both.
    pair.invitation.kill();
    tokio::time::sleep(PAST_BOTH).await;
    pair.invitation.restart();

    wait_for_reminders(&bob, &alices, 1).await;
    // A few sweeps later there is still one: the latest offset, once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let listed = inbox(&mut bob).await;
    assert_eq!(reminders_about(&listed, &alices), 1, "{listed:#?}");
}
