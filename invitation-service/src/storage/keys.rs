//! Key encodings. Every key is a fixed-width big-endian number or a
//! length-prefixed user id followed by such numbers, so a prefix scan finds
//! one user's entries and the order within it is time (or sequence) order.

use crate::domain::{InvitationId, Timestamp, UserId};

/// `[len: u8][user id bytes]`: the prefix of every per-user key. A length
/// prefix (user ids are at most 128 bytes) keeps "ab" from matching "abc".
#[must_use]
pub(crate) fn user_prefix(user: &UserId) -> Vec<u8> {
    let bytes = user.as_str().as_bytes();
    let mut key = Vec::with_capacity(1 + bytes.len() + 24);
    key.push(u8::try_from(bytes.len()).expect("user ids are at most 128 bytes"));
    key.extend_from_slice(bytes);
    key
}

/// `user prefix ++ invitation id`: the per-user invitation indexes.
#[must_use]
pub(crate) fn user_invitation(user: &UserId, id: &InvitationId) -> Vec<u8> {
    let mut key = user_prefix(user);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The invitation id at the end of a [`user_invitation`] key.
#[must_use]
pub(crate) fn invitation_id_suffix(key: &[u8]) -> Option<InvitationId> {
    let start = key.len().checked_sub(16)?;
    let bytes: [u8; 16] = key[start..].try_into().ok()?;
    Some(InvitationId::from_bytes(bytes))
}

/// The two users of a pair, lower id first, each length-prefixed.
#[must_use]
pub(crate) fn pair(low: &UserId, high: &UserId) -> Vec<u8> {
    let mut key = user_prefix(low);
    key.extend_from_slice(&user_prefix(high));
    key
}

/// `user prefix ++ connected_at ms ++ other user`: connections, oldest first.
#[must_use]
pub(crate) fn connection(user: &UserId, connected_at: Timestamp, other: &UserId) -> Vec<u8> {
    let mut key = user_prefix(user);
    key.extend_from_slice(&connected_at.as_millis().to_be_bytes());
    key.extend_from_slice(other.as_str().as_bytes());
    key
}

/// Splits the part of a [`connection`] key after the user prefix.
#[must_use]
pub(crate) fn connection_suffix(suffix: &[u8]) -> Option<(Timestamp, &str)> {
    let (ms, other) = suffix.split_at_checked(8)?;
    let ms = u64::from_be_bytes(ms.try_into().ok()?);
    Some((Timestamp::from_millis(ms), std::str::from_utf8(other).ok()?))
}

/// `due ms ++ invitation id`: the expiry and reminder indexes, in due order.
#[must_use]
pub(crate) fn due(due: Timestamp, id: &InvitationId) -> [u8; 24] {
    let mut key = [0; 24];
    key[..8].copy_from_slice(&due.as_millis().to_be_bytes());
    key[8..].copy_from_slice(id.as_bytes());
    key
}

/// `user prefix ++ key bytes`: an idempotency record.
#[must_use]
pub(crate) fn idempotency(sender: &UserId, key: &str) -> Vec<u8> {
    let mut out = user_prefix(sender);
    out.extend_from_slice(key.as_bytes());
    out
}

/// `created ms ++ idempotency key`: idempotency records in age order, so old
/// ones can be pruned without a scan.
#[must_use]
pub(crate) fn idempotency_by_age(created: Timestamp, record_key: &[u8]) -> Vec<u8> {
    let mut out = created.as_millis().to_be_bytes().to_vec();
    out.extend_from_slice(record_key);
    out
}

/// The due time at the start of a [`due`] key.
#[must_use]
pub(crate) fn due_time(key: &[u8]) -> Option<Timestamp> {
    leading_u64(key).map(Timestamp::from_millis)
}

/// A big-endian u64 key (outbox sequence).
#[must_use]
pub(crate) fn sequence(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Reads a leading big-endian u64.
#[must_use]
pub(crate) fn leading_u64(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user_id() -> impl Strategy<Value = UserId> {
        "[a-zA-Z0-9@._é-]{1,40}".prop_map(|s| UserId::parse("u", &s).unwrap())
    }

    proptest! {
        #[test]
        fn user_invitation_keys_round_trip_and_stay_inside_their_prefix(
            user in user_id(), other in user_id(), ms in any::<u64>(), rand in any::<u64>()
        ) {
            let id = InvitationId::new(Timestamp::from_millis(ms), rand);
            let key = user_invitation(&user, &id);
            prop_assert_eq!(invitation_id_suffix(&key), Some(id));
            prop_assert!(key.starts_with(&user_prefix(&user)));
            if user != other {
                prop_assert!(!key.starts_with(&user_prefix(&other)));
            }
        }

        #[test]
        fn invitation_keys_sort_by_creation_time(
            user in user_id(), a in any::<u64>(), b in any::<u64>(), ra in any::<u64>(), rb in any::<u64>()
        ) {
            prop_assume!(a != b);
            let ka = user_invitation(&user, &InvitationId::new(Timestamp::from_millis(a), ra));
            let kb = user_invitation(&user, &InvitationId::new(Timestamp::from_millis(b), rb));
            prop_assert_eq!(a < b, ka < kb);
        }

        #[test]
        fn connection_keys_round_trip_and_sort_by_time(
            user in user_id(), other in user_id(), a in any::<u64>(), b in any::<u64>()
        ) {
            let prefix_len = user_prefix(&user).len();
            let key = connection(&user, Timestamp::from_millis(a), &other);
            prop_assert_eq!(connection_suffix(&key[prefix_len..]), Some((Timestamp::from_millis(a), other.as_str())));
            let later = connection(&user, Timestamp::from_millis(b), &other);
            prop_assert_eq!(a.cmp(&b), key.cmp(&later));
        }

        #[test]
        fn due_and_sequence_keys_sort_numerically(a in any::<u64>(), b in any::<u64>()) {
            let id = InvitationId::new(Timestamp::from_millis(0), 0);
            prop_assert_eq!(a.cmp(&b), due(Timestamp::from_millis(a), &id).cmp(&due(Timestamp::from_millis(b), &id)));
            prop_assert_eq!(a.cmp(&b), sequence(a).cmp(&sequence(b)));
            prop_assert_eq!(leading_u64(&sequence(a)), Some(a));
        }

        #[test]
        fn pair_keys_are_distinct_for_distinct_pairs(a in user_id(), b in user_id(), c in user_id(), d in user_id()) {
            prop_assume!((a.clone(), b.clone()) != (c.clone(), d.clone()));
            prop_assert_ne!(pair(&a, &b), pair(&c, &d));
        }
    }
}
