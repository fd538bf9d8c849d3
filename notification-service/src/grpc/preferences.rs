//! Preferences between the contract and the domain, and `update_mask`.
//! The mask is applied to contract messages (current values overlaid with
//! the named fields of the update); the result is then validated whole, so
//! a partial update can never leave an unspecified enum behind.

use std::time::Duration;

use proto::notifications::v1 as pb;

use crate::{
    convert,
    domain::{
        Channel, Channels, Delivery, Detail, EmailAddress, LocalTime, MAX_DIGEST_INTERVAL, MIN_DIGEST_INTERVAL,
        Preferences, QuietHours, Topic, TopicPreference, Zone,
    },
    error::Error,
};

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        field,
        reason: reason.into(),
    }
}

fn topic_to_pb(p: TopicPreference) -> pb::TopicPreference {
    pb::TopicPreference {
        channels: p.channels.iter().map(|c| convert::channel(c).into()).collect(),
        enabled: p.enabled,
        delivery: match p.delivery {
            Delivery::Immediate => pb::Delivery::Immediate,
            Delivery::Digest => pb::Delivery::Digest,
        }
        .into(),
        detail: match p.detail {
            Detail::Full => pb::Detail::Full,
            Detail::Minimal => pb::Detail::Minimal,
        }
        .into(),
    }
}

#[must_use]
pub(crate) fn to_pb(p: &Preferences) -> pb::Preferences {
    let Preferences {
        invitation_received,
        invitation_accepted,
        invitation_withdrawn,
        withdrawal_note,
        invitation_reminder,
        digest_interval,
        paused,
        email_address,
        time_zone,
        quiet_hours,
        digest_time,
    } = p;
    pb::Preferences {
        email_address: email_address
            .as_ref()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
        time_zone: time_zone.name().to_owned(),
        quiet_hours: quiet_hours.map(|q| pb::QuietHours {
            start: q.start.to_string(),
            end: q.end.to_string(),
        }),
        digest_time: digest_time.map(|t| t.to_string()).unwrap_or_default(),
        invitation_received: Some(topic_to_pb(*invitation_received)),
        invitation_accepted: Some(topic_to_pb(*invitation_accepted)),
        invitation_withdrawn: Some(topic_to_pb(*invitation_withdrawn)),
        withdrawal_note: Some(topic_to_pb(*withdrawal_note)),
        invitation_reminder: Some(topic_to_pb(*invitation_reminder)),
        digest_interval: digest_interval.and_then(|d| prost_types::Duration::try_from(d).ok()),
        paused: *paused,
    }
}

fn topic_from_pb(
    field: &'static str,
    p: Option<pb::TopicPreference>,
    default: TopicPreference,
) -> Result<TopicPreference, Error> {
    let Some(pb::TopicPreference {
        enabled,
        delivery,
        detail,
        channels,
    }) = p
    else {
        return Ok(default);
    };
    let mut set = Channels::NONE;
    for code in channels {
        let channel = match pb::Channel::try_from(code) {
            Ok(pb::Channel::InApp) => Channel::InApp,
            Ok(pb::Channel::Email) => Channel::Email,
            Ok(pb::Channel::Push) => Channel::Push,
            Ok(pb::Channel::Unspecified) | Err(_) => {
                return Err(invalid(
                    field,
                    "channels may hold CHANNEL_IN_APP, CHANNEL_EMAIL and CHANNEL_PUSH only",
                ));
            }
        };
        if set.contains(channel) {
            return Err(invalid(field, "channels names a channel twice"));
        }
        set = set.with(channel);
    }
    let delivery = match pb::Delivery::try_from(delivery) {
        Ok(pb::Delivery::Immediate) => Delivery::Immediate,
        Ok(pb::Delivery::Digest) => Delivery::Digest,
        Ok(pb::Delivery::Unspecified) | Err(_) => {
            return Err(invalid(field, "delivery must be DELIVERY_IMMEDIATE or DELIVERY_DIGEST"));
        }
    };
    let detail = match pb::Detail::try_from(detail) {
        Ok(pb::Detail::Full) => Detail::Full,
        Ok(pb::Detail::Minimal) => Detail::Minimal,
        Ok(pb::Detail::Unspecified) | Err(_) => {
            return Err(invalid(field, "detail must be DETAIL_FULL or DETAIL_MINIMAL"));
        }
    };
    Ok(TopicPreference {
        enabled,
        delivery,
        detail,
        channels: set,
    })
}

/// Every topic's name in the contract, with the topic.
const TOPIC_FIELDS: [(&str, Topic); 5] = [
    ("invitation_received", Topic::InvitationReceived),
    ("invitation_accepted", Topic::InvitationAccepted),
    ("invitation_withdrawn", Topic::InvitationWithdrawn),
    ("withdrawal_note", Topic::WithdrawalNote),
    ("invitation_reminder", Topic::InvitationReminder),
];

/// Refuses channels the server lacks (FAILED_PRECONDITION: the operator
/// can change that, the request cannot) and EMAIL with no address.
fn check_channels(p: &Preferences, available: Channels) -> Result<(), Error> {
    for (field, topic) in TOPIC_FIELDS {
        let chosen = p.topic(topic).channels;
        for (channel, variable) in [
            (Channel::Email, "NOTIFICATION_SMTP_URL"),
            (Channel::Push, "NOTIFICATION_WEBHOOK_URL"),
        ] {
            if chosen.contains(channel) && !available.contains(channel) {
                return Err(Error::ChannelUnavailable {
                    field,
                    channel: channel.name(),
                    variable,
                });
            }
        }
        if chosen.contains(Channel::Email) && p.email_address.is_none() {
            return Err(invalid(
                "email_address",
                format!("is required: {field} chooses CHANNEL_EMAIL"),
            ));
        }
    }
    Ok(())
}

/// Validates a whole contract message, against the channels the server
/// has. A topic left out takes its default.
pub(crate) fn from_pb(p: pb::Preferences, available: Channels) -> Result<Preferences, Error> {
    let pb::Preferences {
        invitation_received,
        invitation_accepted,
        invitation_withdrawn,
        withdrawal_note,
        invitation_reminder,
        digest_interval,
        paused,
        email_address,
        time_zone,
        quiet_hours,
        digest_time,
    } = p;
    let time_zone = match time_zone.as_str() {
        "" => Zone::utc(),
        name => Zone::parse(name).map_err(|reason| invalid("time_zone", reason))?,
    };
    let quiet_hours = match quiet_hours {
        None => None,
        Some(pb::QuietHours { start, end }) => Some(QuietHours {
            start: LocalTime::parse(&start).map_err(|reason| invalid("quiet_hours.start", reason))?,
            end: LocalTime::parse(&end).map_err(|reason| invalid("quiet_hours.end", reason))?,
        }),
    };
    let digest_time = match digest_time.as_str() {
        "" => None,
        at => Some(LocalTime::parse(at).map_err(|reason| invalid("digest_time", reason))?),
    };
    let email_address = match email_address.as_str() {
        "" => None,
        address => Some(EmailAddress::parse(address).map_err(|e| invalid("email_address", e.0))?),
    };
    let defaults = Preferences::default();
    let digest_interval = match digest_interval {
        None => None,
        Some(d) => {
            // prost would fold stray nanos into seconds; the contract says a
            // Duration's nanos lie within ±999,999,999 with the sign of seconds.
            if d.nanos.unsigned_abs() > 999_999_999 || (d.seconds > 0 && d.nanos < 0) || (d.seconds < 0 && d.nanos > 0)
            {
                return Err(invalid(
                    "digest_interval",
                    "is not a valid Duration: nanos must be within ±999,999,999 and have the sign of seconds",
                ));
            }
            let d = Duration::try_from(d).map_err(|_| invalid("digest_interval", "must not be negative"))?;
            if d < MIN_DIGEST_INTERVAL || d > MAX_DIGEST_INTERVAL {
                return Err(invalid(
                    "digest_interval",
                    format!(
                        "must be between {} and {}",
                        humantime::format_duration(MIN_DIGEST_INTERVAL),
                        humantime::format_duration(MAX_DIGEST_INTERVAL)
                    ),
                ));
            }
            Some(d)
        }
    };
    let preferences = Preferences {
        invitation_received: topic_from_pb("invitation_received", invitation_received, defaults.invitation_received)?,
        invitation_accepted: topic_from_pb("invitation_accepted", invitation_accepted, defaults.invitation_accepted)?,
        invitation_withdrawn: topic_from_pb(
            "invitation_withdrawn",
            invitation_withdrawn,
            defaults.invitation_withdrawn,
        )?,
        withdrawal_note: topic_from_pb("withdrawal_note", withdrawal_note, defaults.withdrawal_note)?,
        invitation_reminder: topic_from_pb("invitation_reminder", invitation_reminder, defaults.invitation_reminder)?,
        digest_interval,
        paused,
        email_address,
        time_zone,
        quiet_hours,
        digest_time,
    };
    check_channels(&preferences, available)?;
    Ok(preferences)
}

fn topic_slot<'a>(p: &'a mut pb::Preferences, name: &str) -> Option<&'a mut Option<pb::TopicPreference>> {
    match name {
        "invitation_received" => Some(&mut p.invitation_received),
        "invitation_accepted" => Some(&mut p.invitation_accepted),
        "invitation_withdrawn" => Some(&mut p.invitation_withdrawn),
        "withdrawal_note" => Some(&mut p.withdrawal_note),
        "invitation_reminder" => Some(&mut p.invitation_reminder),
        _ => None,
    }
}

/// Overlays the fields of `update` named in `paths` onto `current`.
/// Paths: a topic (`invitation_received`), a topic's field
/// (`invitation_received.enabled`, `.delivery`, `.detail`, `.channels`),
/// `digest_interval`, `paused`, `email_address`, `time_zone`, `quiet_hours`,
/// `digest_time`.
pub(crate) fn apply_mask(
    current: &Preferences,
    update: &pb::Preferences,
    paths: &[String],
    available: Channels,
) -> Result<Preferences, Error> {
    let mut merged = to_pb(current);
    let mut update = update.clone();
    for path in paths {
        let unknown = || {
            invalid(
                "update_mask",
                format!(
                    "unknown path `{path}`; use one of {}, a topic's .enabled, .delivery, .detail or .channels, \
                     digest_interval, paused, email_address, time_zone, quiet_hours, digest_time",
                    TOPIC_FIELDS.map(|(name, _)| name).join(", ")
                ),
            )
        };
        match path.split_once('.') {
            None if path == "digest_interval" => merged.digest_interval = update.digest_interval,
            None if path == "paused" => merged.paused = update.paused,
            None if path == "email_address" => merged.email_address.clone_from(&update.email_address),
            None if path == "time_zone" => merged.time_zone.clone_from(&update.time_zone),
            None if path == "quiet_hours" => merged.quiet_hours.clone_from(&update.quiet_hours),
            None if path == "digest_time" => merged.digest_time.clone_from(&update.digest_time),
            None => {
                let value = topic_slot(&mut update, path).ok_or_else(unknown)?.take();
                *topic_slot(&mut merged, path).ok_or_else(unknown)? = value;
            }
            Some((topic, field)) => {
                let from = topic_slot(&mut update, topic)
                    .ok_or_else(unknown)?
                    .clone()
                    .unwrap_or_default();
                let into = topic_slot(&mut merged, topic)
                    .ok_or_else(unknown)?
                    .get_or_insert_with(Default::default);
                match field {
                    "enabled" => into.enabled = from.enabled,
                    "delivery" => into.delivery = from.delivery,
                    "detail" => into.detail = from.detail,
                    "channels" => into.channels = from.channels,
                    _ => return Err(unknown()),
                }
            }
        }
    }
    from_pb(merged, available)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Channels = Channels::IN_APP.with(Channel::Email).with(Channel::Push);

    fn topic(enabled: bool, delivery: pb::Delivery, detail: pb::Detail) -> Option<pb::TopicPreference> {
        Some(pb::TopicPreference {
            enabled,
            delivery: delivery.into(),
            detail: detail.into(),
            channels: Vec::new(),
        })
    }

    #[test]
    fn defaults_round_trip() {
        assert_eq!(
            from_pb(to_pb(&Preferences::default()), ALL).unwrap(),
            Preferences::default()
        );
    }

    #[test]
    fn a_field_path_changes_only_that_field() {
        let update = pb::Preferences {
            invitation_received: topic(false, pb::Delivery::Immediate, pb::Detail::Unspecified),
            paused: true,
            ..Default::default()
        };
        let merged = apply_mask(
            &Preferences::default(),
            &update,
            &["invitation_received.delivery".to_owned()],
            ALL,
        )
        .unwrap();
        let mut expected = Preferences::default();
        expected.invitation_received.delivery = Delivery::Immediate;
        assert_eq!(merged, expected);
    }

    #[test]
    fn a_topic_path_replaces_the_topic_and_validates_it() {
        let update = pb::Preferences {
            invitation_withdrawn: topic(true, pb::Delivery::Immediate, pb::Detail::Minimal),
            ..Default::default()
        };
        let merged = apply_mask(
            &Preferences::default(),
            &update,
            &["invitation_withdrawn".to_owned()],
            ALL,
        )
        .unwrap();
        assert!(merged.invitation_withdrawn.enabled);
        assert_eq!(merged.invitation_withdrawn.detail, Detail::Minimal);
        let bad = pb::Preferences {
            invitation_withdrawn: topic(true, pb::Delivery::Unspecified, pb::Detail::Full),
            ..Default::default()
        };
        assert!(apply_mask(&Preferences::default(), &bad, &["invitation_withdrawn".to_owned()], ALL).is_err());
    }

    #[test]
    fn unknown_paths_and_intervals_out_of_range_are_refused() {
        let update = pb::Preferences::default();
        for path in ["nope", "invitation_received.colour", "paused.x"] {
            assert!(
                apply_mask(&Preferences::default(), &update, &[path.to_owned()], ALL).is_err(),
                "{path}"
            );
        }
        for (seconds, nanos) in [(0, 2_000_000_000), (120, 1_000_000_000), (120, -1), (-120, 1)] {
            let update = pb::Preferences {
                digest_interval: Some(prost_types::Duration { seconds, nanos }),
                ..Default::default()
            };
            let refused = apply_mask(&Preferences::default(), &update, &["digest_interval".to_owned()], ALL);
            assert!(
                matches!(&refused, Err(Error::InvalidArgument { reason, .. }) if reason.contains("nanos")),
                "{seconds}s {nanos}ns: {refused:?}"
            );
        }
        for (secs, ok) in [
            (59, false),
            (60, true),
            (7 * 24 * 3600, true),
            (7 * 24 * 3600 + 1, false),
        ] {
            let update = pb::Preferences {
                digest_interval: Some(prost_types::Duration {
                    seconds: secs,
                    nanos: 0,
                }),
                ..Default::default()
            };
            assert_eq!(
                apply_mask(&Preferences::default(), &update, &["digest_interval".to_owned()], ALL).is_ok(),
                ok,
                "{secs}"
            );
        }
    }

    fn with_channels(channels: &[pb::Channel], email: &str) -> pb::Preferences {
        pb::Preferences {
            invitation_received: Some(pb::TopicPreference {
                enabled: true,
                delivery: pb::Delivery::Digest.into(),
                detail: pb::Detail::Full.into(),
                channels: channels.iter().map(|&c| c.into()).collect(),
            }),
            email_address: email.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn channels_and_the_address_round_trip_and_are_checked() {
        let chosen = with_channels(&[pb::Channel::Email, pb::Channel::Push], "bob@example.com");
        let prefs = from_pb(chosen.clone(), ALL).unwrap();
        assert_eq!(
            prefs.invitation_received.channels,
            Channels::of([Channel::Email, Channel::Push])
        );
        assert_eq!(to_pb(&prefs).invitation_received, chosen.invitation_received);
        assert_eq!(to_pb(&prefs).email_address, "bob@example.com");

        let refused = |p: pb::Preferences, available| from_pb(p, available).unwrap_err();
        assert!(matches!(
            refused(with_channels(&[pb::Channel::Email], "not an address"), ALL),
            Error::InvalidArgument {
                field: "email_address",
                ..
            }
        ));
        assert!(matches!(
            refused(with_channels(&[pb::Channel::Email], ""), ALL),
            Error::InvalidArgument {
                field: "email_address",
                ..
            }
        ));
        assert!(matches!(
            refused(with_channels(&[pb::Channel::Push, pb::Channel::Push], ""), ALL),
            Error::InvalidArgument {
                field: "invitation_received",
                ..
            }
        ));
        assert!(matches!(
            refused(with_channels(&[pb::Channel::Unspecified], ""), ALL),
            Error::InvalidArgument {
                field: "invitation_received",
                ..
            }
        ));
        assert!(matches!(
            refused(
                with_channels(&[pb::Channel::Email], "bob@example.com"),
                Channels::IN_APP
            ),
            Error::ChannelUnavailable {
                channel: "email",
                variable: "NOTIFICATION_SMTP_URL",
                ..
            }
        ));
        assert!(matches!(
            refused(
                with_channels(&[pb::Channel::Push], ""),
                Channels::IN_APP.with(Channel::Email)
            ),
            Error::ChannelUnavailable {
                channel: "push",
                variable: "NOTIFICATION_WEBHOOK_URL",
                ..
            }
        ));
        // The app is always there.
        assert!(from_pb(with_channels(&[pb::Channel::InApp], ""), Channels::IN_APP).is_ok());
    }

    #[test]
    fn masks_reach_channels_and_the_address() {
        let update = with_channels(&[pb::Channel::Push], "bob@example.com");
        let merged = apply_mask(
            &Preferences::default(),
            &update,
            &["invitation_received.channels".to_owned()],
            ALL,
        )
        .unwrap();
        assert_eq!(merged.invitation_received.channels, Channels::of([Channel::Push]));
        assert_eq!(merged.email_address, None, "not named in the mask");
        let merged = apply_mask(&merged, &update, &["email_address".to_owned()], ALL).unwrap();
        assert_eq!(
            merged.email_address.as_ref().map(EmailAddress::as_str),
            Some("bob@example.com")
        );
        // Choosing EMAIL and giving the address in one update.
        let email = with_channels(&[pb::Channel::Email], "bob@example.com");
        let both = ["invitation_received.channels".to_owned(), "email_address".to_owned()];
        assert!(apply_mask(&Preferences::default(), &email, &both, ALL).is_ok());
        assert!(
            apply_mask(&Preferences::default(), &email, &both[..1], ALL).is_err(),
            "no address yet"
        );
    }
}
