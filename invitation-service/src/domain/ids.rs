//! Validated identifiers and texts: each is parsed once at the edge, so the
//! rest of the core can trust it.

use std::fmt;

use super::DomainError;

/// Longest user id, in bytes.
pub const MAX_USER_ID_BYTES: usize = 128;
/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;

/// A user id: 1 to 128 bytes, without whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(String);

impl UserId {
    /// # Errors
    ///
    /// INVALID_ARGUMENT naming `field` when `raw` breaks the rule.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, DomainError> {
        let reason = if raw.is_empty() {
            "is required".to_owned()
        } else if raw.len() > MAX_USER_ID_BYTES {
            format!("must be at most {MAX_USER_ID_BYTES} bytes")
        } else if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            "must not contain spaces or control characters".to_owned()
        } else {
            return Ok(Self(raw.to_owned()));
        };
        Err(DomainError::InvalidArgument { field, reason })
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

/// A personal note or apology: at most the policy's number of Unicode
/// characters (not bytes). Leading and trailing whitespace is trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Note(String);

impl Note {
    /// # Errors
    ///
    /// INVALID_ARGUMENT naming `field` when the note is longer than
    /// `max_chars` characters.
    pub fn parse(field: &'static str, raw: &str, max_chars: usize) -> Result<Self, DomainError> {
        let text = raw.trim();
        let chars = text.chars().count();
        if chars > max_chars {
            return Err(DomainError::InvalidArgument {
                field,
                reason: format!("must be at most {max_chars} characters (this one has {chars})"),
            });
        }
        Ok(Self(text.to_owned()))
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

/// A client's idempotency key: 1 to 128 bytes of printable text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `None` for an empty key (no idempotency asked for).
    ///
    /// # Errors
    ///
    /// INVALID_ARGUMENT when the key is too long or has control characters.
    pub fn parse(raw: &str) -> Result<Option<Self>, DomainError> {
        if raw.is_empty() {
            return Ok(None);
        }
        let reason = if raw.len() > MAX_IDEMPOTENCY_KEY_BYTES {
            format!("must be at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes")
        } else if raw.chars().any(char::is_control) {
            "must not contain control characters".to_owned()
        } else {
            return Ok(Some(Self(raw.to_owned())));
        };
        Err(DomainError::InvalidArgument {
            field: "idempotency_key",
            reason,
        })
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
    }
}
