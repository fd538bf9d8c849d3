//! The invitation and its state machine: who may do what, in which state,
//! and what each party is allowed to see.

use std::fmt;

use super::{DomainError, InvitationId, Note, Timestamp, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Pending,
    Accepted,
    Ignored,
    Withdrawn,
    Expired,
}

impl State {
    /// Pending to the sender: an ignored invitation still waits for them.
    #[must_use]
    pub const fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Ignored)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Ignored => "ignored",
            Self::Withdrawn => "withdrawn",
            Self::Expired => "expired",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: InvitationId,
    pub sender: UserId,
    pub sender_name: String,
    pub recipient: UserId,
    pub message: Note,
    pub state: State,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When an open invitation expires.
    pub expires_at: Timestamp,
}

/// Who is looking at an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewerRole {
    Sender,
    Recipient,
}

/// What a party asks to do with an invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Withdraw { note: Note },
    Accept,
    Ignore,
}

/// What happened, as the outbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Sent,
    Withdrawn {
        note: Note,
    },
    Accepted,
    Ignored,
    Expired,
    /// Still pending at the reminder offset `ordinal` (from 1).
    Reminded {
        ordinal: u32,
    },
}

/// The result of a permitted action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The invitation moved to the state its action names (withdrawn,
    /// accepted or ignored: no action leads anywhere else); the event
    /// records it.
    Changed { invitation: Invitation, event: EventKind },
    /// A repeat of an action already done (a client retry): nothing changes
    /// and no event is written.
    Unchanged,
}

impl Invitation {
    /// The caller's role, or `None` when the caller must not see the
    /// invitation at all: a third party, or the recipient of a withdrawn
    /// invitation (to whom it must look as if it never existed).
    #[must_use]
    pub fn role_of(&self, viewer: &UserId) -> Option<ViewerRole> {
        if *viewer == self.sender {
            Some(ViewerRole::Sender)
        } else if *viewer == self.recipient && self.state != State::Withdrawn {
            Some(ViewerRole::Recipient)
        } else {
            None
        }
    }

    /// The state as `role` may see it: an ignored invitation is pending to
    /// its sender.
    #[must_use]
    pub fn state_seen_by(&self, role: ViewerRole) -> State {
        match (role, self.state) {
            (ViewerRole::Sender, State::Ignored) => State::Pending,
            (ViewerRole::Sender | ViewerRole::Recipient, state) => state,
        }
    }

    /// Applies `action` by `actor` at `now`.
    ///
    /// # Errors
    ///
    /// NotFound for anyone who may not see the invitation; WrongParty when
    /// the other party tries an action that is not theirs; NotPending when
    /// the invitation has moved on.
    pub fn apply(&self, actor: &UserId, action: &Action, now: Timestamp) -> Result<Transition, DomainError> {
        let role = self.role_of(actor).ok_or(DomainError::InvitationNotFound)?;
        let (target, event, verb, allowed_role) = match action {
            Action::Withdraw { note } => (
                State::Withdrawn,
                EventKind::Withdrawn { note: note.clone() },
                "withdrawn",
                ViewerRole::Sender,
            ),
            Action::Accept => (State::Accepted, EventKind::Accepted, "accepted", ViewerRole::Recipient),
            Action::Ignore => (State::Ignored, EventKind::Ignored, "ignored", ViewerRole::Recipient),
        };
        if role != allowed_role {
            let (role_name, verb) = match allowed_role {
                ViewerRole::Sender => ("sender", "withdraw"),
                ViewerRole::Recipient => ("recipient", if target == State::Accepted { "accept" } else { "ignore" }),
            };
            return Err(DomainError::WrongParty {
                role: role_name,
                action: verb,
            });
        }
        if self.state == target {
            return Ok(Transition::Unchanged);
        }
        let permitted = match target {
            State::Withdrawn | State::Accepted => self.state.is_open(),
            State::Ignored => self.state == State::Pending,
            State::Pending | State::Expired => false,
        };
        if !permitted {
            return Err(DomainError::NotPending {
                state: self.state_seen_by(role),
                action: verb,
            });
        }
        let mut invitation = self.clone();
        invitation.state = target;
        // An ignore is not reported to the sender: not even a new update
        // time may show that the recipient did something.
        if target != State::Ignored {
            invitation.updated_at = now;
        }
        Ok(Transition::Changed { invitation, event })
    }

    /// Expires an open invitation whose time has come; `None` otherwise.
    #[must_use]
    pub fn expire(&self, now: Timestamp) -> Option<Invitation> {
        (self.state.is_open() && now >= self.expires_at).then(|| {
            let mut invitation = self.clone();
            invitation.state = State::Expired;
            invitation.updated_at = now;
            invitation
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserId {
        UserId::parse("user", id).unwrap()
    }

    fn pending() -> Invitation {
        Invitation {
            id: InvitationId::new(Timestamp::from_millis(10), 1),
            sender: user("alice"),
            sender_name: "Alice".into(),
            recipient: user("bob"),
            message: Note::default(),
            state: State::Pending,
            created_at: Timestamp::from_millis(10),
            updated_at: Timestamp::from_millis(10),
            expires_at: Timestamp::from_millis(1_000),
        }
    }

    fn changed(t: Result<Transition, DomainError>) -> Invitation {
        match t {
            Ok(Transition::Changed { invitation, .. }) => invitation,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    const NOW: Timestamp = Timestamp::from_millis(20);

    #[test]
    fn the_sender_withdraws_and_the_recipient_then_cannot_see_it() {
        let inv = pending();
        let withdraw = Action::Withdraw { note: Note::default() };
        let withdrawn = changed(inv.apply(&user("alice"), &withdraw, NOW));
        assert_eq!(withdrawn.state, State::Withdrawn);
        assert_eq!(withdrawn.updated_at, NOW);
        assert_eq!(withdrawn.role_of(&user("bob")), None);
        assert_eq!(
            withdrawn.apply(&user("bob"), &Action::Accept, NOW),
            Err(DomainError::InvitationNotFound)
        );
        assert_eq!(
            withdrawn.apply(&user("alice"), &withdraw, NOW),
            Ok(Transition::Unchanged)
        );
    }

    #[test]
    fn only_the_right_party_may_act() {
        let inv = pending();
        assert!(matches!(
            inv.apply(&user("bob"), &Action::Withdraw { note: Note::default() }, NOW),
            Err(DomainError::WrongParty { role: "sender", .. })
        ));
        assert!(matches!(
            inv.apply(&user("alice"), &Action::Accept, NOW),
            Err(DomainError::WrongParty {
                role: "recipient",
                action: "accept"
            })
        ));
        assert!(matches!(
            inv.apply(&user("alice"), &Action::Ignore, NOW),
            Err(DomainError::WrongParty {
                role: "recipient",
                action: "ignore"
            })
        ));
        assert_eq!(
            inv.apply(&user("carol"), &Action::Accept, NOW),
            Err(DomainError::InvitationNotFound)
        );
    }

    #[test]
    fn an_ignored_invitation_is_pending_to_its_sender_and_still_acceptable() {
        let ignored = changed(pending().apply(&user("bob"), &Action::Ignore, NOW));
        assert_eq!(ignored.state, State::Ignored);
        assert_eq!(
            ignored.updated_at,
            pending().updated_at,
            "an ignore leaves no trace for the sender"
        );
        assert_eq!(ignored.state_seen_by(ViewerRole::Sender), State::Pending);
        assert_eq!(ignored.state_seen_by(ViewerRole::Recipient), State::Ignored);
        assert_eq!(
            ignored.apply(&user("bob"), &Action::Ignore, NOW),
            Ok(Transition::Unchanged)
        );
        assert_eq!(
            changed(ignored.apply(&user("bob"), &Action::Accept, NOW)).state,
            State::Accepted
        );
        let withdrawn = changed(ignored.apply(&user("alice"), &Action::Withdraw { note: Note::default() }, NOW));
        assert_eq!(withdrawn.state, State::Withdrawn);
    }

    #[test]
    fn closed_invitations_refuse_further_actions() {
        let accepted = changed(pending().apply(&user("bob"), &Action::Accept, NOW));
        assert_eq!(
            accepted.apply(&user("bob"), &Action::Accept, NOW),
            Ok(Transition::Unchanged)
        );
        assert!(matches!(
            accepted.apply(&user("alice"), &Action::Withdraw { note: Note::default() }, NOW),
            Err(DomainError::NotPending {
                state: State::Accepted,
                ..
            })
        ));
        assert!(matches!(
            accepted.apply(&user("bob"), &Action::Ignore, NOW),
            Err(DomainError::NotPending {
                state: State::Accepted,
                ..
            })
        ));
        let expired = pending().expire(Timestamp::from_millis(1_000)).unwrap();
        assert!(matches!(
            expired.apply(&user("bob"), &Action::Accept, NOW),
            Err(DomainError::NotPending {
                state: State::Expired,
                ..
            })
        ));
    }

    #[test]
    fn expiry_happens_at_the_deadline_and_only_for_open_invitations() {
        let inv = pending();
        assert_eq!(inv.expire(Timestamp::from_millis(999)), None);
        let expired = inv.expire(Timestamp::from_millis(1_000)).unwrap();
        assert_eq!(expired.state, State::Expired);
        assert_eq!(expired.expire(Timestamp::from_millis(5_000)), None);
        let ignored = changed(inv.apply(&user("bob"), &Action::Ignore, NOW));
        assert!(ignored.expire(Timestamp::from_millis(1_000)).is_some());
    }
}
