//! The stored form of a user's preferences: unset topics read as the
//! product's defaults, unknown detail codes as MINIMAL.

use prost::Message;

use crate::{
    domain::{Channels, Delivery, EmailAddress, LocalTime, Preferences, QuietHours, TopicPreference, Zone},
    storage::StoreError,
};

use super::{decode, detail_code, detail_from_code, encode};

#[derive(Clone, PartialEq, Message)]
struct TopicRecord {
    #[prost(bool, tag = "1")]
    enabled: bool,
    #[prost(uint32, tag = "2")]
    delivery: u32,
    #[prost(uint32, tag = "3")]
    detail: u32,
    /// [`Channels::bits`]; 0 is IN_APP alone.
    #[prost(uint32, tag = "4")]
    channels: u32,
}

#[derive(Clone, PartialEq, Message)]
struct PreferencesRecord {
    #[prost(message, optional, tag = "1")]
    invitation_received: Option<TopicRecord>,
    #[prost(message, optional, tag = "2")]
    invitation_accepted: Option<TopicRecord>,
    #[prost(message, optional, tag = "3")]
    invitation_withdrawn: Option<TopicRecord>,
    #[prost(message, optional, tag = "4")]
    withdrawal_note: Option<TopicRecord>,
    #[prost(uint64, optional, tag = "5")]
    digest_interval_ms: Option<u64>,
    #[prost(bool, tag = "6")]
    paused: bool,
    /// Empty when none is set.
    #[prost(string, tag = "7")]
    email_address: String,
    /// Empty for UTC.
    #[prost(string, tag = "8")]
    time_zone: String,
    /// `HH:MM` each; both empty when none.
    #[prost(string, tag = "9")]
    quiet_start: String,
    #[prost(string, tag = "10")]
    quiet_end: String,
    #[prost(string, tag = "11")]
    digest_time: String,
    #[prost(message, optional, tag = "12")]
    invitation_reminder: Option<TopicRecord>,
}

fn topic_record(p: TopicPreference) -> Option<TopicRecord> {
    Some(TopicRecord {
        enabled: p.enabled,
        delivery: match p.delivery {
            Delivery::Immediate => 1,
            Delivery::Digest => 2,
        },
        detail: detail_code(p.detail),
        channels: u32::from(p.channels.bits()),
    })
}

fn topic_preference(r: Option<TopicRecord>, default: TopicPreference) -> TopicPreference {
    r.map_or(default, |r| TopicPreference {
        enabled: r.enabled,
        delivery: if r.delivery == 2 {
            Delivery::Digest
        } else {
            Delivery::Immediate
        },
        detail: detail_from_code(r.detail),
        channels: Channels::from_bits(u8::try_from(r.channels).unwrap_or(0)),
    })
}

pub(crate) fn encode_preferences(p: &Preferences) -> Vec<u8> {
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
    encode(&PreferencesRecord {
        invitation_received: topic_record(*invitation_received),
        invitation_accepted: topic_record(*invitation_accepted),
        invitation_withdrawn: topic_record(*invitation_withdrawn),
        withdrawal_note: topic_record(*withdrawal_note),
        invitation_reminder: topic_record(*invitation_reminder),
        digest_interval_ms: digest_interval.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        paused: *paused,
        email_address: email_address
            .as_ref()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
        time_zone: time_zone.name().to_owned(),
        quiet_start: quiet_hours.map(|q| q.start.to_string()).unwrap_or_default(),
        quiet_end: quiet_hours.map(|q| q.end.to_string()).unwrap_or_default(),
        digest_time: digest_time.map(|t| t.to_string()).unwrap_or_default(),
    })
}

pub(crate) fn decode_preferences(bytes: &[u8]) -> Result<Preferences, StoreError> {
    let r: PreferencesRecord = decode("preferences", bytes)?;
    let d = Preferences::default();
    Ok(Preferences {
        invitation_received: topic_preference(r.invitation_received, d.invitation_received),
        invitation_accepted: topic_preference(r.invitation_accepted, d.invitation_accepted),
        invitation_withdrawn: topic_preference(r.invitation_withdrawn, d.invitation_withdrawn),
        withdrawal_note: topic_preference(r.withdrawal_note, d.withdrawal_note),
        invitation_reminder: topic_preference(r.invitation_reminder, d.invitation_reminder),
        digest_interval: r.digest_interval_ms.map(std::time::Duration::from_millis),
        paused: r.paused,
        // Checked when it was set; one that no longer parses is not mailed to.
        email_address: (!r.email_address.is_empty())
            .then(|| EmailAddress::parse(&r.email_address).ok())
            .flatten(),
        // Each was checked when it was set; one the zone database no longer
        // knows reads as UTC.
        time_zone: match r.time_zone.as_str() {
            // Most users: no lookup in the zone database on every event.
            "" | "UTC" => Zone::utc(),
            name => Zone::parse(name).unwrap_or_else(|_| Zone::utc()),
        },
        quiet_hours: LocalTime::parse(&r.quiet_start)
            .and_then(|start| {
                Ok(QuietHours {
                    start,
                    end: LocalTime::parse(&r.quiet_end)?,
                })
            })
            .ok(),
        digest_time: LocalTime::parse(&r.digest_time).ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Detail;

    #[test]
    fn preferences_round_trip() {
        let mut p = Preferences::default();
        p.invitation_received.detail = Detail::Minimal;
        p.invitation_received.delivery = Delivery::Immediate;
        p.digest_interval = Some(std::time::Duration::from_secs(600));
        p.paused = true;
        p.invitation_accepted.channels = Channels::of([crate::domain::Channel::Push]);
        p.email_address = Some(EmailAddress::parse("a@example.com").unwrap());
        p.time_zone = Zone::parse("Australia/Lord_Howe").unwrap();
        p.quiet_hours = Some(QuietHours {
            start: LocalTime::parse("22:30").unwrap(),
            end: LocalTime::parse("06:45").unwrap(),
        });
        p.digest_time = Some(LocalTime::parse("09:00").unwrap());
        p.invitation_reminder.enabled = false;
        assert_eq!(decode_preferences(&encode_preferences(&p)).unwrap(), p);
        assert_eq!(
            decode_preferences(&encode_preferences(&Preferences::default())).unwrap(),
            Preferences::default()
        );
    }
}
