//! Key encodings: a length-prefixed user id (or invitation id) followed by
//! big-endian fixed-width numbers, so a prefix scan finds one user's entries
//! in number (time, cursor) order.

/// `[len: u8][bytes]`: ids are at most 128 bytes, and the length keeps "ab"
/// from matching "abc".
#[must_use]
pub(crate) fn prefix(id: &str) -> Vec<u8> {
    let bytes = id.as_bytes();
    let mut key = Vec::with_capacity(1 + bytes.len() + 24);
    key.push(u8::try_from(bytes.len()).expect("ids are at most 128 bytes"));
    key.extend_from_slice(bytes);
    key
}

/// `prefix(user) ++ n`: a user's notifications, inbox and unread entries
/// (n = notification number) and update log (n = cursor).
#[must_use]
pub(crate) fn user_number(user: &str, n: u64) -> Vec<u8> {
    let mut key = prefix(user);
    key.extend_from_slice(&n.to_be_bytes());
    key
}

/// The number at the end of a [`user_number`] key.
#[must_use]
pub(crate) fn trailing_number(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    Some(u64::from_be_bytes(key[start..].try_into().ok()?))
}

/// `prefix(user) ++ topic`: the user's open digest for a topic.
#[must_use]
pub(crate) fn user_topic(user: &str, topic: u8) -> Vec<u8> {
    let mut key = prefix(user);
    key.push(topic);
    key
}

/// `due ms ++ prefix(user) ++ notification number`: the due-time index.
#[must_use]
pub(crate) fn due(due_ms: u64, user: &str, number: u64) -> Vec<u8> {
    let mut key = due_ms.to_be_bytes().to_vec();
    key.extend_from_slice(&user_number(user, number));
    key
}

/// `due ms ++ number`: an open digest's value, enough to find its record.
#[must_use]
pub(crate) fn due_number(due_ms: u64, number: u64) -> [u8; 16] {
    let mut value = [0; 16];
    value[..8].copy_from_slice(&due_ms.to_be_bytes());
    value[8..].copy_from_slice(&number.to_be_bytes());
    value
}

/// The parts of a [`due_number`] value.
#[must_use]
pub(crate) fn due_and_number(value: &[u8]) -> Option<(u64, u64)> {
    let value: &[u8; 16] = value.try_into().ok()?;
    let (due, number) = value.split_at(8);
    Some((
        u64::from_be_bytes(due.try_into().ok()?),
        u64::from_be_bytes(number.try_into().ok()?),
    ))
}

/// Splits a [`due`] key into (due ms, user, notification number).
#[must_use]
pub(crate) fn split_due(key: &[u8]) -> Option<(u64, String, u64)> {
    let due = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    let len = usize::from(*key.get(8)?);
    let user = std::str::from_utf8(key.get(9..9 + len)?).ok()?.to_owned();
    let number = u64::from_be_bytes(key.get(9 + len..9 + len + 8)?.try_into().ok()?);
    Some((due, user, number))
}

/// `channel ++ prefix(user) ++ seq`: a message in a user's outbound queue.
#[must_use]
pub(crate) fn job(channel: u8, user: &str, seq: u64) -> Vec<u8> {
    let mut key = vec![channel];
    key.extend_from_slice(&user_number(user, seq));
    key
}

/// `channel ++ next ms ++ prefix(user) ++ seq`: the head of a user's queue
/// by when it is due next.
#[must_use]
pub(crate) fn job_due(channel: u8, next_ms: u64, user: &str, seq: u64) -> Vec<u8> {
    let mut key = vec![channel];
    key.extend_from_slice(&due(next_ms, user, seq));
    key
}

/// Splits a [`job_due`] key into (channel, next ms, user, seq).
#[must_use]
pub(crate) fn split_job_due(key: &[u8]) -> Option<(u8, u64, String, u64)> {
    let (&channel, rest) = key.split_first()?;
    let (next_ms, user, seq) = split_due(rest)?;
    Some((channel, next_ms, user, seq))
}

/// Kinds of key in the outbound bookkeeping tree.
const QUEUE: u8 = b'q';
const REFERENCE: u8 = b'r';
const COUNT: u8 = b'c';

/// A user's queue bounds on a channel.
#[must_use]
pub(crate) fn queue(channel: u8, user: &str) -> Vec<u8> {
    let mut key = vec![QUEUE, channel];
    key.extend_from_slice(&prefix(user));
    key
}

/// The message that announced notification `number` on a channel.
#[must_use]
pub(crate) fn announced(channel: u8, user: &str, number: u64) -> Vec<u8> {
    let mut key = vec![REFERENCE, channel];
    key.extend_from_slice(&user_number(user, number));
    key
}

/// How many messages a channel's queues hold.
#[must_use]
pub(crate) fn queued_count(channel: u8) -> [u8; 2] {
    [COUNT, channel]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn due_keys_round_trip_and_sort_by_time(a in any::<u64>(), b in any::<u64>(), user in "[a-z0-9@.]{1,40}", n in any::<u64>()) {
            let key = due(a, &user, n);
            prop_assert_eq!(split_due(&key), Some((a, user.clone(), n)));
            prop_assert_eq!(a.cmp(&b), key.cmp(&due(b, &user, n)));
        }

        #[test]
        fn job_due_keys_round_trip_and_sort_by_time_within_a_channel(c in 1u8..4, a in any::<u64>(), b in any::<u64>(), user in "[a-z0-9@.]{1,40}", n in any::<u64>()) {
            let key = job_due(c, a, &user, n);
            prop_assert_eq!(split_job_due(&key), Some((c, a, user.clone(), n)));
            prop_assert_eq!(a.cmp(&b), key.cmp(&job_due(c, b, &user, n)));
        }

        #[test]
        fn user_numbers_sort_within_their_prefix(user in "[a-z]{1,10}", other in "[a-z]{1,10}", a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(a.cmp(&b), user_number(&user, a).cmp(&user_number(&user, b)));
            prop_assert_eq!(trailing_number(&user_number(&user, a)), Some(a));
            if user != other {
                prop_assert!(!user_number(&user, a).starts_with(&prefix(&other)));
            }
        }
    }
}
