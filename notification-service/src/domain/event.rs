//! The invitation events notification-service receives, in domain terms, and
//! the item a notification carries about one invitation.

use super::{Detail, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Sent,
    Withdrawn {
        note: String,
    },
    Accepted,
    Ignored,
    Expired,
    /// Still pending at invitation-service's reminder offset `ordinal`
    /// (from 1).
    Reminded {
        ordinal: u32,
    },
}

impl EventKind {
    /// Whether [`decide`](super::decide) may notify the sender of this
    /// event, and so needs the sender's preferences: only an acceptance.
    #[must_use]
    pub fn may_notify_sender(&self) -> bool {
        matches!(self, Self::Accepted)
    }
}

/// One event from invitation-service's outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub sequence: u64,
    pub invitation_id: String,
    pub sender_id: String,
    pub sender_name: String,
    pub recipient_id: String,
    /// The invitation's personal note.
    pub message: String,
    pub kind: EventKind,
    pub occurred_at: Timestamp,
}

/// What a notification says about one invitation. Built only through
/// [`Item::new`], which drops the identity and the note for MINIMAL, so they
/// cannot reach anything rendered from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub invitation_id: String,
    pub detail: Detail,
    actor_id: String,
    actor_name: String,
    note: String,
}

impl Item {
    #[must_use]
    pub fn new(invitation_id: &str, detail: Detail, actor_id: &str, actor_name: &str, note: &str) -> Self {
        let keep = |s: &str| match detail {
            Detail::Full => s.to_owned(),
            Detail::Minimal => String::new(),
        };
        Self {
            invitation_id: invitation_id.to_owned(),
            detail,
            actor_id: keep(actor_id),
            actor_name: keep(actor_name),
            note: keep(note),
        }
    }

    #[must_use]
    pub fn actor_id(&self) -> &str {
        &self.actor_id
    }

    #[must_use]
    pub fn actor_name(&self) -> &str {
        &self.actor_name
    }

    #[must_use]
    pub fn note(&self) -> &str {
        &self.note
    }
}
