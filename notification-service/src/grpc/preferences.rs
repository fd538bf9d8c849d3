//! Preferences between the contract and the domain, and `update_mask`.
//! The mask is applied to contract messages (current values overlaid with
//! the named fields of the update); the result is then validated whole, so
//! a partial update can never leave an unspecified enum behind.

use std::time::Duration;

use proto::notifications::v1 as pb;

use crate::{
    domain::{Delivery, Detail, MAX_DIGEST_INTERVAL, MIN_DIGEST_INTERVAL, Preferences, TopicPreference},
    error::Error,
};

const TOPICS: [&str; 4] = [
    "invitation_received",
    "invitation_accepted",
    "invitation_withdrawn",
    "withdrawal_note",
];

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        field,
        reason: reason.into(),
    }
}

fn topic_to_pb(p: TopicPreference) -> pb::TopicPreference {
    pb::TopicPreference {
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
        digest_interval,
        paused,
    } = p;
    pb::Preferences {
        invitation_received: Some(topic_to_pb(*invitation_received)),
        invitation_accepted: Some(topic_to_pb(*invitation_accepted)),
        invitation_withdrawn: Some(topic_to_pb(*invitation_withdrawn)),
        withdrawal_note: Some(topic_to_pb(*withdrawal_note)),
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
    }) = p
    else {
        return Ok(default);
    };
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
    })
}

/// Validates a whole contract message. A topic left out takes its default.
pub(crate) fn from_pb(p: pb::Preferences) -> Result<Preferences, Error> {
    let pb::Preferences {
        invitation_received,
        invitation_accepted,
        invitation_withdrawn,
        withdrawal_note,
        digest_interval,
        paused,
    } = p;
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
    Ok(Preferences {
        invitation_received: topic_from_pb("invitation_received", invitation_received, defaults.invitation_received)?,
        invitation_accepted: topic_from_pb("invitation_accepted", invitation_accepted, defaults.invitation_accepted)?,
        invitation_withdrawn: topic_from_pb(
            "invitation_withdrawn",
            invitation_withdrawn,
            defaults.invitation_withdrawn,
        )?,
        withdrawal_note: topic_from_pb("withdrawal_note", withdrawal_note, defaults.withdrawal_note)?,
        digest_interval,
        paused,
    })
}

fn topic_slot<'a>(p: &'a mut pb::Preferences, name: &str) -> Option<&'a mut Option<pb::TopicPreference>> {
    match name {
        "invitation_received" => Some(&mut p.invitation_received),
        "invitation_accepted" => Some(&mut p.invitation_accepted),
        "invitation_withdrawn" => Some(&mut p.invitation_withdrawn),
        "withdrawal_note" => Some(&mut p.withdrawal_note),
        _ => None,
    }
}

/// Overlays the fields of `update` named in `paths` onto `current`.
/// Paths: a topic (`invitation_received`), a topic's field
/// (`invitation_received.enabled`, `.delivery`, `.detail`),
/// `digest_interval`, `paused`.
pub(crate) fn apply_mask(
    current: &Preferences,
    update: &pb::Preferences,
    paths: &[String],
) -> Result<Preferences, Error> {
    let mut merged = to_pb(current);
    let mut update = *update;
    for path in paths {
        let unknown = || {
            invalid(
                "update_mask",
                format!(
                    "unknown path `{path}`; use one of {}, a topic's .enabled, .delivery or .detail, digest_interval, paused",
                    TOPICS.join(", ")
                ),
            )
        };
        match path.split_once('.') {
            None if path == "digest_interval" => merged.digest_interval = update.digest_interval,
            None if path == "paused" => merged.paused = update.paused,
            None => {
                let value = topic_slot(&mut update, path).ok_or_else(unknown)?.take();
                *topic_slot(&mut merged, path).ok_or_else(unknown)? = value;
            }
            Some((topic, field)) => {
                let from = (*topic_slot(&mut update, topic).ok_or_else(unknown)?).unwrap_or_default();
                let into = topic_slot(&mut merged, topic)
                    .ok_or_else(unknown)?
                    .get_or_insert_with(Default::default);
                match field {
                    "enabled" => into.enabled = from.enabled,
                    "delivery" => into.delivery = from.delivery,
                    "detail" => into.detail = from.detail,
                    _ => return Err(unknown()),
                }
            }
        }
    }
    from_pb(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(enabled: bool, delivery: pb::Delivery, detail: pb::Detail) -> Option<pb::TopicPreference> {
        Some(pb::TopicPreference {
            enabled,
            delivery: delivery.into(),
            detail: detail.into(),
        })
    }

    #[test]
    fn defaults_round_trip() {
        assert_eq!(from_pb(to_pb(&Preferences::default())).unwrap(), Preferences::default());
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
        let merged = apply_mask(&Preferences::default(), &update, &["invitation_withdrawn".to_owned()]).unwrap();
        assert!(merged.invitation_withdrawn.enabled);
        assert_eq!(merged.invitation_withdrawn.detail, Detail::Minimal);
        let bad = pb::Preferences {
            invitation_withdrawn: topic(true, pb::Delivery::Unspecified, pb::Detail::Full),
            ..Default::default()
        };
        assert!(apply_mask(&Preferences::default(), &bad, &["invitation_withdrawn".to_owned()]).is_err());
    }

    #[test]
    fn unknown_paths_and_intervals_out_of_range_are_refused() {
        let update = pb::Preferences::default();
        for path in ["nope", "invitation_received.colour", "paused.x"] {
            assert!(
                apply_mask(&Preferences::default(), &update, &[path.to_owned()]).is_err(),
                "{path}"
            );
        }
        for (seconds, nanos) in [(0, 2_000_000_000), (120, 1_000_000_000), (120, -1), (-120, 1)] {
            let update = pb::Preferences {
                digest_interval: Some(prost_types::Duration { seconds, nanos }),
                ..Default::default()
            };
            let refused = apply_mask(&Preferences::default(), &update, &["digest_interval".to_owned()]);
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
                apply_mask(&Preferences::default(), &update, &["digest_interval".to_owned()]).is_ok(),
                ok,
                "{secs}"
            );
        }
    }
}
