//! Stored value encodings: versioned records (see
//! [`service_kit::storage::record`]), a version byte, then a prost message.
//! New fields get new tags; a change that old code could misread gets a new
//! version.

use prost::Message;
use service_kit::storage::record::{decode, encode};

use crate::domain::{Activity, Invitation, InvitationId, Note, Pair, State, Timestamp, UserId};

use super::StoreError;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("invalid {what}"))
}

#[derive(Clone, PartialEq, Message)]
struct InvitationRecord {
    #[prost(bytes = "vec", tag = "1")]
    id: Vec<u8>,
    #[prost(string, tag = "2")]
    sender: String,
    #[prost(string, tag = "3")]
    sender_name: String,
    #[prost(string, tag = "4")]
    recipient: String,
    #[prost(string, tag = "5")]
    message: String,
    #[prost(uint32, tag = "6")]
    state: u32,
    #[prost(uint64, tag = "7")]
    created_ms: u64,
    #[prost(uint64, tag = "8")]
    updated_ms: u64,
    #[prost(uint64, tag = "9")]
    expires_ms: u64,
}

fn state_code(state: State) -> u32 {
    match state {
        State::Pending => 1,
        State::Accepted => 2,
        State::Ignored => 3,
        State::Withdrawn => 4,
        State::Expired => 5,
    }
}

fn state_from_code(code: u32) -> Result<State, StoreError> {
    Ok(match code {
        1 => State::Pending,
        2 => State::Accepted,
        3 => State::Ignored,
        4 => State::Withdrawn,
        5 => State::Expired,
        _ => return Err(corrupt("invitation state")),
    })
}

pub(crate) fn encode_invitation(inv: &Invitation) -> Vec<u8> {
    let Invitation {
        id,
        sender,
        sender_name,
        recipient,
        message,
        state,
        created_at,
        updated_at,
        expires_at,
    } = inv;
    encode(&InvitationRecord {
        id: id.as_bytes().to_vec(),
        sender: sender.as_str().to_owned(),
        sender_name: sender_name.clone(),
        recipient: recipient.as_str().to_owned(),
        message: message.as_str().to_owned(),
        state: state_code(*state),
        created_ms: created_at.as_millis(),
        updated_ms: updated_at.as_millis(),
        expires_ms: expires_at.as_millis(),
    })
}

pub(crate) fn decode_invitation(bytes: &[u8]) -> Result<Invitation, StoreError> {
    let r: InvitationRecord = decode("invitation", bytes)?;
    let id: [u8; 16] = r.id.as_slice().try_into().map_err(|_| corrupt("invitation id"))?;
    Ok(Invitation {
        id: InvitationId::from_bytes(id),
        sender: UserId::parse("sender", &r.sender).map_err(|_| corrupt("sender"))?,
        sender_name: r.sender_name,
        recipient: UserId::parse("recipient", &r.recipient).map_err(|_| corrupt("recipient"))?,
        // Stored notes were checked when written; a lower limit set later
        // must not make old invitations unreadable.
        message: Note::parse("message", &r.message, usize::MAX).map_err(|_| corrupt("message"))?,
        state: state_from_code(r.state)?,
        created_at: Timestamp::from_millis(r.created_ms),
        updated_at: Timestamp::from_millis(r.updated_ms),
        expires_at: Timestamp::from_millis(r.expires_ms),
    })
}

#[derive(Clone, PartialEq, Message)]
struct PairRecord {
    #[prost(bytes = "vec", optional, tag = "1")]
    pending_id: Option<Vec<u8>>,
    #[prost(string, optional, tag = "2")]
    pending_sender: Option<String>,
    #[prost(uint64, optional, tag = "3")]
    connected_ms: Option<u64>,
    #[prost(uint64, optional, tag = "4")]
    cooldown_low_to_high_ms: Option<u64>,
    #[prost(uint64, optional, tag = "5")]
    cooldown_high_to_low_ms: Option<u64>,
}

pub(crate) fn encode_pair(pair: &Pair) -> Vec<u8> {
    let (low, high) = pair.users();
    encode(&PairRecord {
        pending_id: pair.pending().map(|(id, _)| id.as_bytes().to_vec()),
        pending_sender: pair.pending().map(|(_, s)| s.as_str().to_owned()),
        connected_ms: pair.connected_at().map(Timestamp::as_millis),
        cooldown_low_to_high_ms: pair.cooldown_for(low).map(Timestamp::as_millis),
        cooldown_high_to_low_ms: pair.cooldown_for(high).map(Timestamp::as_millis),
    })
}

/// Decodes a pair record for `a` and `b` (in either order).
pub(crate) fn decode_pair(a: &UserId, b: &UserId, bytes: &[u8]) -> Result<Pair, StoreError> {
    let r: PairRecord = decode("pair", bytes)?;
    let pending = match (r.pending_id, r.pending_sender) {
        (Some(id), Some(sender)) => {
            let id: [u8; 16] = id.as_slice().try_into().map_err(|_| corrupt("pending id"))?;
            Some((
                InvitationId::from_bytes(id),
                UserId::parse("sender", &sender).map_err(|_| corrupt("sender"))?,
            ))
        }
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => return Err(corrupt("pending invitation")),
    };
    Ok(Pair::restore(
        a.clone(),
        b.clone(),
        pending,
        r.connected_ms.map(Timestamp::from_millis),
        r.cooldown_low_to_high_ms.map(Timestamp::from_millis),
        r.cooldown_high_to_low_ms.map(Timestamp::from_millis),
    ))
}

#[derive(Clone, PartialEq, Message)]
struct ActivityRecord {
    #[prost(uint64, repeated, tag = "1")]
    sends_ms: Vec<u64>,
    #[prost(uint64, repeated, tag = "2")]
    withdrawals_ms: Vec<u64>,
    #[prost(uint32, tag = "3")]
    pending_sent: u32,
}

pub(crate) fn encode_activity(activity: &Activity) -> Vec<u8> {
    let Activity {
        sends,
        withdrawals,
        pending_sent,
    } = activity;
    encode(&ActivityRecord {
        sends_ms: sends.iter().map(|t| t.as_millis()).collect(),
        withdrawals_ms: withdrawals.iter().map(|t| t.as_millis()).collect(),
        pending_sent: *pending_sent,
    })
}

pub(crate) fn decode_activity(bytes: &[u8]) -> Result<Activity, StoreError> {
    let r: ActivityRecord = decode("activity", bytes)?;
    Ok(Activity {
        sends: r.sends_ms.into_iter().map(Timestamp::from_millis).collect(),
        withdrawals: r.withdrawals_ms.into_iter().map(Timestamp::from_millis).collect(),
        pending_sent: r.pending_sent,
    })
}

/// What an idempotency key stands for: the request it first came with and
/// the invitation that request created.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct IdempotencyRecord {
    #[prost(string, tag = "1")]
    pub(crate) recipient: String,
    #[prost(string, tag = "2")]
    pub(crate) message: String,
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) invitation_id: Vec<u8>,
    #[prost(uint64, tag = "4")]
    pub(crate) created_ms: u64,
}

pub(crate) fn encode_idempotency(record: &IdempotencyRecord) -> Vec<u8> {
    encode(record)
}

pub(crate) fn decode_idempotency(bytes: &[u8]) -> Result<IdempotencyRecord, StoreError> {
    Ok(decode("idempotency record", bytes)?)
}

/// Outbox entries are the published `InvitationEvent` bytes themselves,
/// behind the version byte.
pub(crate) fn encode_event(event: &proto::invitations::v1::InvitationEvent) -> Vec<u8> {
    encode(event)
}

/// # Errors
///
/// [`StoreError::Corrupt`] when the entry does not decode.
pub fn decode_event(bytes: &[u8]) -> Result<proto::invitations::v1::InvitationEvent, StoreError> {
    Ok(decode("outbox event", bytes)?)
}

#[cfg(test)]
mod tests {
    use service_kit::storage::record::VERSION;

    use super::*;

    fn user(id: &str) -> UserId {
        UserId::parse("u", id).unwrap()
    }

    #[test]
    fn records_round_trip() {
        let inv = Invitation {
            id: InvitationId::new(Timestamp::from_millis(42), 9),
            sender: user("alice"),
            sender_name: "Alice".into(),
            recipient: user("bob"),
            message: Note::parse("m", "héllo", 300).unwrap(),
            state: State::Ignored,
            created_at: Timestamp::from_millis(42),
            updated_at: Timestamp::from_millis(43),
            expires_at: Timestamp::from_millis(44),
        };
        assert_eq!(decode_invitation(&encode_invitation(&inv)).unwrap(), inv);

        let mut pair = Pair::new(user("b"), user("a"));
        pair.invited(inv.id, user("b"));
        pair.withdrawn(&inv.id, &user("b"), Timestamp::from_millis(7));
        pair.invited(inv.id, user("a"));
        assert_eq!(decode_pair(&user("a"), &user("b"), &encode_pair(&pair)).unwrap(), pair);

        let activity = Activity {
            sends: vec![Timestamp::from_millis(1), Timestamp::from_millis(2)],
            withdrawals: vec![Timestamp::from_millis(3)],
            pending_sent: 1,
        };
        assert_eq!(decode_activity(&encode_activity(&activity)).unwrap(), activity);
    }

    /// The bytes a folder holds: a change here is a change of the stored
    /// layout, which needs a new version.
    #[test]
    fn the_stored_layout_is_pinned() {
        let inv = Invitation {
            id: InvitationId::new(Timestamp::from_millis(42), 9),
            sender: user("alice"),
            sender_name: "Al".into(),
            recipient: user("bob"),
            message: Note::parse("m", "hi", 300).unwrap(),
            state: State::Withdrawn,
            created_at: Timestamp::from_millis(42),
            updated_at: Timestamp::from_millis(300),
            expires_at: Timestamp::from_millis(70_000),
        };
        let mut pair = Pair::new(user("bob"), user("alice"));
        pair.invited(inv.id, user("alice"));
        pair.withdrawn(&inv.id, &user("alice"), Timestamp::from_millis(500));
        pair.invited(inv.id, user("bob"));
        let activity = Activity {
            sends: vec![Timestamp::from_millis(1), Timestamp::from_millis(200)],
            withdrawals: vec![Timestamp::from_millis(3)],
            pending_sent: 2,
        };
        assert_eq!(
            hex::encode(encode_invitation(&inv)),
            "010a10000000000000002a00000000000000091205616c6963651a02416c2203626f622a0268693004382a40ac0248f0a204"
        );
        assert_eq!(
            hex::encode(encode_pair(&pair)),
            "010a10000000000000002a00000000000000091203626f6220f403"
        );
        assert_eq!(hex::encode(encode_activity(&activity)), "010a0301c8011201031802");
    }

    #[test]
    fn unknown_versions_and_garbage_are_reported_as_corrupt() {
        let mut bytes = encode_activity(&Activity::default());
        bytes[0] = 9;
        assert!(matches!(decode_activity(&bytes), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_invitation(&[]), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            decode_invitation(&[VERSION, 0xff, 0xff]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
