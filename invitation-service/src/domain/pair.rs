//! What two users share: a pending invitation, a connection, and the
//! cool-downs that bind a sender after a withdrawal. One record per
//! unordered pair, so every pair rule is checked in one place.

use super::{InvitationId, Timestamp, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    low: UserId,
    high: UserId,
    /// The open invitation between the two, and who sent it.
    pub pending: Option<(InvitationId, UserId)>,
    pub connected_at: Option<Timestamp>,
    /// Until when `low` may not invite `high` again.
    pub cooldown_low_to_high: Option<Timestamp>,
    /// Until when `high` may not invite `low` again.
    pub cooldown_high_to_low: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationshipState {
    None,
    PendingSent,
    PendingReceived,
    Connected,
}

/// The relationship as one of the two users sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    pub state: RelationshipState,
    pub invitation_id: Option<InvitationId>,
    pub can_invite: bool,
    pub invite_available_at: Option<Timestamp>,
    pub connected_at: Option<Timestamp>,
}

impl Pair {
    /// An empty record for two users, in either order.
    #[must_use]
    pub fn new(a: UserId, b: UserId) -> Self {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        Self {
            low,
            high,
            pending: None,
            connected_at: None,
            cooldown_low_to_high: None,
            cooldown_high_to_low: None,
        }
    }

    /// The two users, lower id first: the order of the storage key.
    #[must_use]
    pub fn users(&self) -> (&UserId, &UserId) {
        (&self.low, &self.high)
    }

    /// Until when `sender` may not invite the other user, if a cool-down
    /// binds them.
    #[must_use]
    pub fn cooldown_for(&self, sender: &UserId) -> Option<Timestamp> {
        if *sender == self.low {
            self.cooldown_low_to_high
        } else {
            self.cooldown_high_to_low
        }
    }

    /// Binds `sender` (only) until `until`.
    pub fn start_cooldown(&mut self, sender: &UserId, until: Timestamp) {
        if *sender == self.low {
            self.cooldown_low_to_high = Some(until);
        } else {
            self.cooldown_high_to_low = Some(until);
        }
    }

    /// The relationship as `viewer`, one of the two, sees it at `now`. The
    /// other user's cool-down is never visible here.
    #[must_use]
    pub fn relationship_for(&self, viewer: &UserId, now: Timestamp) -> Relationship {
        if let Some(connected_at) = self.connected_at {
            return Relationship {
                state: RelationshipState::Connected,
                invitation_id: None,
                can_invite: false,
                invite_available_at: None,
                connected_at: Some(connected_at),
            };
        }
        if let Some((id, sender)) = &self.pending {
            let state = if sender == viewer {
                RelationshipState::PendingSent
            } else {
                RelationshipState::PendingReceived
            };
            return Relationship {
                state,
                invitation_id: Some(*id),
                can_invite: false,
                invite_available_at: None,
                connected_at: None,
            };
        }
        let cooldown = self.cooldown_for(viewer).filter(|until| *until > now);
        Relationship {
            state: RelationshipState::None,
            invitation_id: None,
            can_invite: cooldown.is_none(),
            invite_available_at: cooldown,
            connected_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserId {
        UserId::parse("user", id).unwrap()
    }

    #[test]
    fn the_cooldown_binds_only_the_sender() {
        let mut pair = Pair::new(user("zoe"), user("adam"));
        assert_eq!(pair.users().0, &user("adam"));
        pair.start_cooldown(&user("zoe"), Timestamp::from_millis(100));
        let zoe = pair.relationship_for(&user("zoe"), Timestamp::from_millis(50));
        assert_eq!(zoe.state, RelationshipState::None);
        assert!(!zoe.can_invite);
        assert_eq!(zoe.invite_available_at, Some(Timestamp::from_millis(100)));
        let adam = pair.relationship_for(&user("adam"), Timestamp::from_millis(50));
        assert!(adam.can_invite);
        assert_eq!(adam.invite_available_at, None);
        let later = pair.relationship_for(&user("zoe"), Timestamp::from_millis(100));
        assert!(later.can_invite, "the cool-down ends at its deadline");
    }

    #[test]
    fn pending_and_connected_are_seen_from_each_side() {
        let mut pair = Pair::new(user("a"), user("b"));
        let id = InvitationId::new(Timestamp::from_millis(1), 7);
        pair.pending = Some((id, user("a")));
        let now = Timestamp::from_millis(2);
        assert_eq!(
            pair.relationship_for(&user("a"), now).state,
            RelationshipState::PendingSent
        );
        let b = pair.relationship_for(&user("b"), now);
        assert_eq!(
            (b.state, b.invitation_id, b.can_invite),
            (RelationshipState::PendingReceived, Some(id), false)
        );
        pair.pending = None;
        pair.connected_at = Some(now);
        let a = pair.relationship_for(&user("a"), now);
        assert_eq!((a.state, a.connected_at), (RelationshipState::Connected, Some(now)));
    }
}
