//! Invitation ids, which invitation-service issues and both services read
//! from requests: 16 bytes, the creation time in milliseconds followed by
//! random bits, so ids sort by creation time. Shown as 32 hex digits.

use std::fmt;

use crate::time::Timestamp;

/// An invitation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InvitationId([u8; 16]);

/// Why a text is not an invitation id; the same reason in both services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInvitationId {
    #[error("is required")]
    Empty,
    #[error("must be an invitation id (32 hex digits)")]
    Malformed,
}

impl InvitationId {
    #[must_use]
    pub fn new(created: Timestamp, random: u64) -> Self {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&created.as_millis().to_be_bytes());
        bytes[8..].copy_from_slice(&random.to_be_bytes());
        Self(bytes)
    }

    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Reads 32 hex digits, in either case.
    ///
    /// # Errors
    ///
    /// When `raw` is empty or not 32 hex digits.
    pub fn parse(raw: &str) -> Result<Self, InvalidInvitationId> {
        if raw.is_empty() {
            return Err(InvalidInvitationId::Empty);
        }
        let digits = raw.as_bytes();
        if digits.len() != 32 {
            return Err(InvalidInvitationId::Malformed);
        }
        let mut bytes = [0; 16];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let (Some(high), Some(low)) = (hex_value(pair[0]), hex_value(pair[1])) else {
                return Err(InvalidInvitationId::Malformed);
            };
            *byte = (high << 4) | low;
        }
        Ok(Self(bytes))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for InvitationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let early = InvitationId::new(Timestamp::from_millis(1_000), u64::MAX);
        let late = InvitationId::new(Timestamp::from_millis(1_001), 0);
        assert!(early < late);
        let text = early.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(InvitationId::parse(&text), Ok(early));
        assert_eq!(InvitationId::parse(&text.to_uppercase()), Ok(early));
    }

    #[test]
    fn malformed_ids_are_refused_with_a_reason() {
        assert_eq!(InvitationId::parse(""), Err(InvalidInvitationId::Empty));
        for raw in [
            "xyz",
            "not-an-id",
            &"g".repeat(32),
            &"0".repeat(31),
            &"0".repeat(33),
            &"é".repeat(16),
        ] {
            assert_eq!(InvitationId::parse(raw), Err(InvalidInvitationId::Malformed), "{raw:?}");
        }
        assert_eq!(
            InvalidInvitationId::Malformed.to_string(),
            "must be an invitation id (32 hex digits)"
        );
    }

    proptest! {
        #[test]
        fn any_id_reads_back_from_its_text(bytes in any::<[u8; 16]>()) {
            let id = InvitationId::from_bytes(bytes);
            prop_assert_eq!(InvitationId::parse(&id.to_string()), Ok(id));
        }
    }
}
