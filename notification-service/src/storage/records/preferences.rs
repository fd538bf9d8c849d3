//! The stored form of a user's preferences: unset topics read as the
//! product's defaults, unknown detail codes as MINIMAL.

use prost::Message;

use crate::{
    domain::{Channels, Delivery, EmailAddress, Preferences, TopicPreference},
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
        digest_interval,
        paused,
        email_address,
    } = p;
    encode(&PreferencesRecord {
        invitation_received: topic_record(*invitation_received),
        invitation_accepted: topic_record(*invitation_accepted),
        invitation_withdrawn: topic_record(*invitation_withdrawn),
        withdrawal_note: topic_record(*withdrawal_note),
        digest_interval_ms: digest_interval.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        paused: *paused,
        email_address: email_address
            .as_ref()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
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
        digest_interval: r.digest_interval_ms.map(std::time::Duration::from_millis),
        paused: r.paused,
        // Checked when it was set; one that no longer parses is not mailed to.
        email_address: (!r.email_address.is_empty())
            .then(|| EmailAddress::parse(&r.email_address).ok())
            .flatten(),
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
        assert_eq!(decode_preferences(&encode_preferences(&p)).unwrap(), p);
        assert_eq!(
            decode_preferences(&encode_preferences(&Preferences::default())).unwrap(),
            Preferences::default()
        );
    }
}
