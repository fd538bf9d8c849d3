//! Preferences: the product's defaults, replacing all of them, changing the
//! fields an update mask names, refusals that change nothing, and
//! persistence.

use proto::notifications::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{Digest, Full, Immediate, Minimal, spawn_app, topic};

fn minutes(n: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: n * 60,
        nanos: 0,
    })
}

/// The product's defaults, as the API shows them.
fn defaults() -> pb::Preferences {
    pb::Preferences {
        invitation_received: Some(topic(true, Digest, Full)),
        invitation_accepted: Some(topic(true, Immediate, Full)),
        invitation_withdrawn: Some(topic(false, Immediate, Full)),
        withdrawal_note: Some(topic(true, Immediate, Full)),
        invitation_reminder: Some(topic(true, Digest, Full)),
        digest_interval: None,
        paused: false,
        email_address: String::new(),
        time_zone: "UTC".to_owned(),
        quiet_hours: None,
        digest_time: String::new(),
    }
}

/// Every field different from the defaults.
fn everything_changed() -> pb::Preferences {
    pb::Preferences {
        invitation_received: Some(topic(false, Immediate, Minimal)),
        invitation_accepted: Some(topic(false, Digest, Minimal)),
        invitation_withdrawn: Some(topic(true, Digest, Minimal)),
        withdrawal_note: Some(topic(false, Digest, Minimal)),
        invitation_reminder: Some(topic(false, Immediate, Minimal)),
        digest_interval: minutes(60),
        paused: true,
        email_address: String::new(),
        time_zone: "America/New_York".to_owned(),
        quiet_hours: Some(pb::QuietHours {
            start: "22:00".to_owned(),
            end: "07:00".to_owned(),
        }),
        digest_time: "09:00".to_owned(),
    }
}

#[tokio::test]
async fn a_new_user_has_the_products_defaults() {
    let app = spawn_app().await;
    assert_eq!(app.preferences("alice").await, defaults());
}

#[tokio::test]
async fn an_update_without_a_mask_replaces_everything() {
    let app = spawn_app().await;
    let all = app.update_preferences("alice", everything_changed(), &[]).await;
    assert_eq!(all, everything_changed());
    assert_eq!(app.preferences("alice").await, everything_changed());

    // Topics left out take their defaults, and so does everything else.
    let only_accepted = pb::Preferences {
        invitation_accepted: Some(topic(true, Digest, Minimal)),
        ..pb::Preferences::default()
    };
    let expected = pb::Preferences {
        invitation_accepted: Some(topic(true, Digest, Minimal)),
        ..defaults()
    };
    assert_eq!(app.update_preferences("alice", only_accepted, &[]).await, expected);
    assert_eq!(app.preferences("alice").await, expected);
    assert_eq!(app.preferences("bob").await, defaults(), "preferences are per user");
}

#[tokio::test]
async fn a_mask_changes_only_the_fields_it_names() {
    let app = spawn_app().await;
    let mut expected = defaults();

    let reply = app
        .update_preferences("alice", everything_changed(), &["invitation_received.delivery"])
        .await;
    expected.invitation_received = Some(topic(true, Immediate, Full));
    assert_eq!(reply, expected, "a topic's field");

    app.update_preferences("alice", everything_changed(), &["invitation_withdrawn"])
        .await;
    expected.invitation_withdrawn = Some(topic(true, Digest, Minimal));
    assert_eq!(app.preferences("alice").await, expected, "a whole topic");

    app.update_preferences("alice", everything_changed(), &["paused"]).await;
    expected.paused = true;
    assert_eq!(app.preferences("alice").await, expected, "paused");

    app.update_preferences("alice", everything_changed(), &["digest_interval"])
        .await;
    expected.digest_interval = minutes(60);
    assert_eq!(app.preferences("alice").await, expected, "digest_interval");

    app.update_preferences(
        "alice",
        everything_changed(),
        &["invitation_accepted.enabled", "withdrawal_note.detail"],
    )
    .await;
    expected.invitation_accepted = Some(topic(false, Immediate, Full));
    expected.withdrawal_note = Some(topic(true, Immediate, Minimal));
    assert_eq!(app.preferences("alice").await, expected, "several paths");

    // A masked digest_interval left unset goes back to the server default.
    app.update_preferences("alice", pb::Preferences::default(), &["digest_interval", "paused"])
        .await;
    expected.digest_interval = None;
    expected.paused = false;
    assert_eq!(app.preferences("alice").await, expected);
}

#[tokio::test]
async fn invalid_updates_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let baseline = pb::Preferences {
        invitation_received: Some(topic(true, Immediate, Minimal)),
        digest_interval: minutes(30),
        ..defaults()
    };
    app.update_preferences("alice", baseline.clone(), &[]).await;

    let unspecified_delivery = pb::Preferences {
        invitation_received: Some(pb::TopicPreference {
            enabled: true,
            delivery: pb::Delivery::Unspecified.into(),
            detail: Full.into(),
            channels: Vec::new(),
        }),
        ..defaults()
    };
    let unspecified_detail = pb::Preferences {
        withdrawal_note: Some(pb::TopicPreference {
            enabled: true,
            delivery: Immediate.into(),
            detail: pb::Detail::Unspecified.into(),
            channels: Vec::new(),
        }),
        ..defaults()
    };
    let unknown_enum = pb::Preferences {
        invitation_accepted: Some(pb::TopicPreference {
            enabled: true,
            delivery: 7,
            detail: Full.into(),
            channels: Vec::new(),
        }),
        ..defaults()
    };
    let interval = |seconds| pb::Preferences {
        digest_interval: Some(prost_types::Duration { seconds, nanos: 0 }),
        ..defaults()
    };
    let cases: Vec<(&str, pb::Preferences, &[&str])> = vec![
        ("unknown path", everything_changed(), &["nope"]),
        (
            "unknown field of a topic",
            everything_changed(),
            &["invitation_received.colour"],
        ),
        ("camel case path", everything_changed(), &["invitationReceived"]),
        ("field of a non-topic", everything_changed(), &["paused.enabled"]),
        (
            "one bad path among good ones",
            everything_changed(),
            &["paused", "nope"],
        ),
        ("unspecified delivery, no mask", unspecified_delivery.clone(), &[]),
        (
            "unspecified delivery, topic masked",
            unspecified_delivery,
            &["invitation_received"],
        ),
        (
            "unspecified detail, field masked",
            unspecified_detail,
            &["withdrawal_note.detail"],
        ),
        ("unknown enum value", unknown_enum, &[]),
        (
            "a field of a topic left out",
            pb::Preferences::default(),
            &["invitation_accepted.delivery"],
        ),
        ("interval under a minute", interval(59), &[]),
        ("interval under a minute, masked", interval(59), &["digest_interval"]),
        (
            "interval over 7 days",
            interval(7 * 24 * 3600 + 1),
            &["digest_interval"],
        ),
        ("negative interval", interval(-60), &[]),
    ];
    for (what, update, mask) in cases {
        let refused = app.try_update_preferences("alice", update, mask).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
        assert_eq!(app.preferences("alice").await, baseline, "{what} changed nothing");
    }

    let missing = app
        .client("alice")
        .update_preferences(pb::UpdatePreferencesRequest {
            preferences: None,
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument, "{missing:?}");

    // The refusal names the field, in a bad-request detail.
    let refused = app
        .try_update_preferences("alice", interval(30), &["digest_interval"])
        .await
        .unwrap_err();
    let violations = refused
        .get_details_bad_request()
        .expect("bad-request details")
        .field_violations;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, "digest_interval");

    // The bounds themselves are allowed.
    for seconds in [60, 7 * 24 * 3600] {
        app.update_preferences("alice", interval(seconds), &["digest_interval"])
            .await;
    }
}

#[tokio::test]
async fn preferences_survive_a_restart() {
    let app = spawn_app().await;
    app.update_preferences("alice", everything_changed(), &[]).await;
    app.update_preferences("bob", everything_changed(), &["withdrawal_note"])
        .await;
    let app = app.restart().await;
    assert_eq!(app.preferences("alice").await, everything_changed());
    assert_eq!(
        app.preferences("bob").await,
        pb::Preferences {
            withdrawal_note: Some(topic(false, Digest, Minimal)),
            ..defaults()
        }
    );
}

/// One field of the preferences that one concurrent client owns.
#[derive(Debug, Clone, Copy)]
enum Field {
    Topic(&'static str, &'static str),
    Paused,
    Interval,
}

impl Field {
    fn path(self) -> String {
        match self {
            Self::Topic(topic, part) => format!("{topic}.{part}"),
            Self::Paused => "paused".to_owned(),
            Self::Interval => "digest_interval".to_owned(),
        }
    }

    fn topic<'a>(p: &'a mut pb::Preferences, name: &str) -> &'a mut pb::TopicPreference {
        let slot = match name {
            "invitation_received" => &mut p.invitation_received,
            "invitation_accepted" => &mut p.invitation_accepted,
            "invitation_withdrawn" => &mut p.invitation_withdrawn,
            "withdrawal_note" => &mut p.withdrawal_note,
            other => panic!("no topic {other}"),
        };
        slot.get_or_insert_with(|| topic(true, Digest, Full))
    }

    /// Sets this field to its value for round `round`.
    fn set(self, p: &mut pb::Preferences, round: u32) {
        let flip = round % 2 == 1;
        match self {
            Self::Topic(name, "enabled") => Self::topic(p, name).enabled = flip,
            Self::Topic(name, "delivery") => {
                Self::topic(p, name).delivery = if flip { Immediate } else { Digest }.into();
            }
            Self::Topic(name, _) => Self::topic(p, name).detail = if flip { Minimal } else { Full }.into(),
            Self::Paused => p.paused = flip,
            Self::Interval => p.digest_interval = minutes(2 + i64::from(round)),
        }
    }

    fn read(self, mut p: pb::Preferences) -> String {
        match self {
            Self::Topic(name, part) => {
                let t = Self::topic(&mut p, name).clone();
                match part {
                    "enabled" => t.enabled.to_string(),
                    "delivery" => t.delivery.to_string(),
                    _ => t.detail.to_string(),
                }
            }
            Self::Paused => p.paused.to_string(),
            Self::Interval => format!("{:?}", p.digest_interval),
        }
    }
}

/// Fourteen clients change fourteen different fields of one user's
/// preferences at the same moment, over and over: every acknowledged change
/// must be kept, so each client always reads back what it last wrote.
/// (Before the read, the mask and the write were one atomic step, about a
/// third of such updates were silently lost.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_different_fields_are_all_kept() {
    const ROUNDS: u32 = 40;
    let app = spawn_app().await;
    let mut fields = vec![Field::Paused, Field::Interval];
    for topic in [
        "invitation_received",
        "invitation_accepted",
        "invitation_withdrawn",
        "withdrawal_note",
    ] {
        for part in ["enabled", "delivery", "detail"] {
            fields.push(Field::Topic(topic, part));
        }
    }
    assert_eq!(fields.len(), 14);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(fields.len()));
    let mut clients = tokio::task::JoinSet::new();
    for field in fields.iter().copied() {
        let mut client = app.client("alice");
        let barrier = std::sync::Arc::clone(&barrier);
        clients.spawn(async move {
            barrier.wait().await;
            let mut lost = 0;
            for round in 1..=ROUNDS {
                let mut update = pb::Preferences::default();
                field.set(&mut update, round);
                let wanted = field.read(update.clone());
                client
                    .update_preferences(pb::UpdatePreferencesRequest {
                        preferences: Some(update),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec![field.path()],
                        }),
                    })
                    .await
                    .unwrap();
                let now = client
                    .get_preferences(pb::GetPreferencesRequest {})
                    .await
                    .unwrap()
                    .into_inner();
                if field.read(now) != wanted {
                    lost += 1;
                }
            }
            (field, lost)
        });
    }
    let mut lost = Vec::new();
    while let Some(result) = clients.join_next().await {
        let (field, n) = result.unwrap();
        if n > 0 {
            lost.push((field.path(), n));
        }
    }
    assert!(lost.is_empty(), "acknowledged changes lost: {lost:?}");

    // And at the end every field holds its client's last value.
    let last = app.preferences("alice").await;
    for field in fields {
        let mut expected = pb::Preferences::default();
        field.set(&mut expected, ROUNDS);
        assert_eq!(field.read(last.clone()), field.read(expected), "{}", field.path());
    }
}

/// A Duration whose nanos are out of range is not a Duration: prost would
/// quietly read 60 s and 2,000,000,000 ns as 62 s, the contract says refuse.
#[tokio::test]
async fn a_digest_interval_with_nanos_out_of_range_is_refused() {
    let app = spawn_app().await;
    for (seconds, nanos) in [(60, 2_000_000_000), (600, 1_000_000_000), (600, -5)] {
        let update = pb::Preferences {
            digest_interval: Some(prost_types::Duration { seconds, nanos }),
            ..defaults()
        };
        let refused = app
            .try_update_preferences("alice", update.clone(), &["digest_interval"])
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{seconds}s {nanos}ns: {refused:?}"
        );
        assert!(refused.message().contains("nanos"), "{}", refused.message());
        let refused = app.try_update_preferences("alice", update, &[]).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "without a mask too");
    }
    assert_eq!(app.preferences("alice").await, defaults(), "nothing changed");
}

/// On a server without a mail server or a webhook, choosing EMAIL or PUSH
/// is FAILED_PRECONDITION (the operator can change that, the request
/// cannot), an address that is not one is INVALID_ARGUMENT, and a refusal
/// changes nothing; IN_APP alone is always fine.
#[tokio::test]
async fn channels_the_server_lacks_and_bad_addresses_are_refused() {
    let app = spawn_app().await;
    let with = |channels: &[pb::Channel], email: &str| pb::Preferences {
        invitation_received: Some(pb::TopicPreference {
            channels: channels.iter().map(|&c| c.into()).collect(),
            ..topic(true, Digest, Full)
        }),
        email_address: email.to_owned(),
        ..defaults()
    };
    for (channel, variable) in [
        (pb::Channel::Email, "NOTIFICATION_SMTP_URL"),
        (pb::Channel::Push, "NOTIFICATION_WEBHOOK_URL"),
    ] {
        let refused = app
            .try_update_preferences("alice", with(&[channel], "alice@example.com"), &[])
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        assert!(refused.message().contains(variable), "{}", refused.message());
    }
    for (what, update) in [
        ("not an address", with(&[], "alice at example")),
        ("a display name", with(&[], "Alice <alice@example.com>")),
        ("too long", with(&[], &address_of_length(255))),
        ("a channel twice", with(&[pb::Channel::InApp, pb::Channel::InApp], "")),
    ] {
        let refused = app.try_update_preferences("alice", update, &[]).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
    }
    assert_eq!(app.preferences("alice").await, defaults(), "nothing changed");

    // The longest address that fits, and IN_APP named outright.
    let longest = address_of_length(254);
    let kept = app
        .try_update_preferences("alice", with(&[pb::Channel::InApp], &longest), &[])
        .await
        .unwrap();
    assert_eq!(kept.email_address, longest);
    assert_eq!(app.preferences("alice").await.email_address, longest);
}

/// `a@` and a domain of 63-character labels, `len` bytes in all.
fn address_of_length(len: usize) -> String {
    let mut domain = format!("{0}.{0}.{0}.", "x".repeat(63));
    domain.push_str(&"y".repeat(len - 2 - domain.len()));
    let address = format!("a@{domain}");
    assert_eq!(address.len(), len);
    address
}
