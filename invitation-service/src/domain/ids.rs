//! Validated identifiers and texts: each is parsed once at the edge, so the
//! rest of the core can trust it. The rules are service-kit's [`text`]
//! rules, which notification-service and the token check apply too.

use std::fmt;

use service_kit::text;
pub use service_kit::text::MAX_USER_ID_BYTES;

use super::DomainError;

/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;

/// A user id in NFC, 1 to 128 bytes, without whitespace or invisible
/// characters (see [`text::user_id`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(String);

impl UserId {
    /// # Errors
    ///
    /// INVALID_ARGUMENT naming `field` when `raw` breaks the rule.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, DomainError> {
        text::user_id(raw)
            .map(Self)
            .map_err(|reason| DomainError::invalid(field, reason))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A personal note or apology, normalised (line ends as LF, trimmed, NFC):
/// at most the policy's number of Unicode characters (not bytes), without
/// control characters other than line feed and tab or bidi controls (see
/// [`text::note`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Note(String);

impl Note {
    /// # Errors
    ///
    /// INVALID_ARGUMENT naming `field` when the normalised note is longer
    /// than `max_chars` characters or holds a refused character.
    pub fn parse(field: &'static str, raw: &str, max_chars: usize) -> Result<Self, DomainError> {
        text::note(raw, max_chars)
            .map(Self)
            .map_err(|reason| DomainError::invalid(field, reason))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A client's idempotency key: 1 to 128 bytes without any character of
/// general category C* (see [`text::opaque_key`]), kept byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `None` for an empty key (no idempotency asked for).
    ///
    /// # Errors
    ///
    /// INVALID_ARGUMENT when the key is too long or holds a control, format,
    /// private-use or unassigned character.
    pub fn parse(raw: &str) -> Result<Option<Self>, DomainError> {
        if raw.is_empty() {
            return Ok(None);
        }
        text::opaque_key(raw, MAX_IDEMPOTENCY_KEY_BYTES)
            .map(|key| Some(Self(key.to_owned())))
            .map_err(|reason| DomainError::invalid("idempotency_key", reason))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_at_the_boundaries() {
        assert!(UserId::parse("f", &"u".repeat(MAX_USER_ID_BYTES)).is_ok());
        assert!(UserId::parse("f", &"u".repeat(MAX_USER_ID_BYTES + 1)).is_err());
        assert!(UserId::parse("f", "").is_err());
        assert!(UserId::parse("f", "a b").is_err());
        assert!(UserId::parse("f", "a\u{0}").is_err());
        assert!(UserId::parse("f", "émilie@example.com").is_ok());
    }

    #[test]
    fn user_ids_are_kept_in_nfc_and_refusals_name_the_field_and_code_point() {
        assert_eq!(UserId::parse("f", "e\u{301}milie").unwrap().as_str(), "\u{e9}milie");
        assert_eq!(
            UserId::parse("recipient_id", "bo\u{200b}b"),
            Err(DomainError::InvalidArgument {
                field: "recipient_id",
                reason: "must not contain control or invisible formatting characters (found U+200B)".into()
            })
        );
    }

    #[test]
    fn notes_count_characters_not_bytes() {
        let accented = "é".repeat(300);
        assert_eq!(accented.len(), 600);
        assert!(Note::parse("message", &accented, 300).is_ok());
        let err = Note::parse("message", &"é".repeat(301), 300).unwrap_err();
        assert_eq!(
            err,
            DomainError::InvalidArgument {
                field: "message",
                reason: "must be at most 300 characters (this one has 301)".into()
            }
        );
        assert_eq!(Note::parse("message", "  hi  ", 300).unwrap().as_str(), "hi");
        assert_eq!(
            Note::parse("note", "a\u{0}", 300),
            Err(DomainError::InvalidArgument {
                field: "note",
                reason: "must not contain control characters other than line feed and tab (found U+0000)".into()
            })
        );
    }

    #[test]
    fn idempotency_keys() {
        assert_eq!(IdempotencyKey::parse("").unwrap(), None);
        assert!(
            IdempotencyKey::parse(&"k".repeat(MAX_IDEMPOTENCY_KEY_BYTES))
                .unwrap()
                .is_some()
        );
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_IDEMPOTENCY_KEY_BYTES + 1)).is_err());
        assert_eq!(IdempotencyKey::parse("retry 1").unwrap().unwrap().as_str(), "retry 1");
        for key in ["k\u{0}", "k\u{200b}", "k\u{202e}", "k\u{e000}"] {
            assert!(
                matches!(
                    IdempotencyKey::parse(key),
                    Err(DomainError::InvalidArgument {
                        field: "idempotency_key",
                        ..
                    })
                ),
                "{key:?}"
            );
        }
    }
}
