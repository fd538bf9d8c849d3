//! What two users share: a pending invitation, a connection, and the
//! cool-downs that bind a sender after a withdrawal. One record per
//! unordered pair, so every pair rule is checked in one place.

use super::{DomainError, InvitationId, Timestamp, UserId};

/// The fields change only through the rules below: storage reads and
/// writes a pair whole, and never decides what an event does to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    low: UserId,
    high: UserId,
    /// The open invitation between the two, and who sent it.
    pending: Option<(InvitationId, UserId)>,
    connected_at: Option<Timestamp>,
    /// Until when `low` may not invite `high` again.
    cooldown_low_to_high: Option<Timestamp>,
    /// Until when `high` may not invite `low` again.
    cooldown_high_to_low: Option<Timestamp>,
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

    /// A pair as storage kept it, for `a` and `b` in either order; `low`
    /// and `high` name them in id order, as [`Self::users`] does. No rule
    /// is applied: this only rebuilds what the rules below produced.
    #[must_use]
    pub fn restore(
        a: UserId,
        b: UserId,
        pending: Option<(InvitationId, UserId)>,
        connected_at: Option<Timestamp>,
        cooldown_low_to_high: Option<Timestamp>,
        cooldown_high_to_low: Option<Timestamp>,
    ) -> Self {
        Self {
            pending,
            connected_at,
            cooldown_low_to_high,
            cooldown_high_to_low,
            ..Self::new(a, b)
        }
    }

    /// The two users, lower id first: the order of the storage key.
    #[must_use]
    pub fn users(&self) -> (&UserId, &UserId) {
        (&self.low, &self.high)
    }

    /// The open invitation between the two, and who sent it.
    #[must_use]
    pub fn pending(&self) -> Option<&(InvitationId, UserId)> {
        self.pending.as_ref()
    }

    /// Since when the two are connected, if they are.
    #[must_use]
    pub fn connected_at(&self) -> Option<Timestamp> {
        self.connected_at
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

    /// `sender` invited the other user with `id`: it is the pair's pending
    /// invitation until it closes. The policy has checked that nothing was
    /// pending and that they are not connected.
    pub fn invited(&mut self, id: InvitationId, sender: UserId) {
        self.pending = Some((id, sender));
    }

    /// The invitation `id` closed (it expired, or see [`Self::withdrawn`]
    /// and [`Self::accepted`]): the pair has nothing pending any more. Any
    /// other invitation the pair names as pending stays so.
    pub fn closed(&mut self, id: &InvitationId) {
        if self.pending.as_ref().is_some_and(|(pending, _)| pending == id) {
            self.pending = None;
        }
    }

    /// `sender` withdrew the invitation `id`: it closes, and `sender`, and
    /// only `sender`, may not invite the other user again before `until`.
    /// The other user's own ability to invite is untouched, since anything
    /// else would reveal the withdrawal.
    pub fn withdrawn(&mut self, id: &InvitationId, sender: &UserId, until: Timestamp) {
        self.closed(id);
        if *sender == self.low {
            self.cooldown_low_to_high = Some(until);
        } else {
            self.cooldown_high_to_low = Some(until);
        }
    }

    /// The invitation `id` was accepted at `now`: it closes and the two are
    /// connected. Connecting settles any earlier withdrawal between them,
    /// so both cool-downs end: after a later removal, either may invite
    /// afresh.
    pub fn accepted(&mut self, id: &InvitationId, now: Timestamp) {
        self.closed(id);
        self.connected_at = Some(now);
        self.cooldown_low_to_high = None;
        self.cooldown_high_to_low = None;
    }

    /// Ends the connection; returns since when the two were connected.
    ///
    /// # Errors
    ///
    /// NotConnected when they are not, and then nothing changes.
    pub fn disconnect(&mut self) -> Result<Timestamp, DomainError> {
        self.connected_at.take().ok_or(DomainError::NotConnected)
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

    fn id(n: u64) -> InvitationId {
        InvitationId::new(Timestamp::from_millis(1), n)
    }

    const NOW: Timestamp = Timestamp::from_millis(50);
    const UNTIL: Timestamp = Timestamp::from_millis(100);

    #[test]
    fn the_cooldown_binds_only_the_sender() {
        let mut pair = Pair::new(user("zoe"), user("adam"));
        assert_eq!(pair.users().0, &user("adam"));
        pair.invited(id(1), user("zoe"));
        pair.withdrawn(&id(1), &user("zoe"), UNTIL);
        let zoe = pair.relationship_for(&user("zoe"), NOW);
        assert_eq!(zoe.state, RelationshipState::None);
        assert!(!zoe.can_invite);
        assert_eq!(zoe.invite_available_at, Some(UNTIL));
        let adam = pair.relationship_for(&user("adam"), NOW);
        assert!(adam.can_invite);
        assert_eq!(adam.invite_available_at, None);
        let later = pair.relationship_for(&user("zoe"), UNTIL);
        assert!(later.can_invite, "the cool-down ends at its deadline");
    }

    #[test]
    fn a_withdrawal_closes_the_invitation_and_binds_the_withdrawing_sender_alone() {
        // Both orders: the sender may be the lower id or the higher one.
        for (sender, other) in [("ann", "bob"), ("bob", "ann")] {
            let mut pair = Pair::new(user(sender), user(other));
            pair.invited(id(1), user(sender));
            pair.withdrawn(&id(1), &user(sender), UNTIL);
            assert_eq!(pair.pending(), None, "{sender}");
            assert_eq!(pair.cooldown_for(&user(sender)), Some(UNTIL), "{sender}");
            assert_eq!(pair.cooldown_for(&user(other)), None, "{sender}");
            assert_eq!(pair.connected_at(), None);
        }
    }

    #[test]
    fn accepting_connects_and_clears_pending_and_both_cooldowns() {
        let mut pair = Pair::new(user("ann"), user("bob"));
        pair.invited(id(1), user("ann"));
        pair.withdrawn(&id(1), &user("ann"), UNTIL);
        pair.invited(id(2), user("bob"));
        pair.withdrawn(&id(2), &user("bob"), UNTIL);
        pair.invited(id(3), user("bob"));

        pair.accepted(&id(3), NOW);

        assert_eq!(pair.pending(), None);
        assert_eq!(pair.connected_at(), Some(NOW));
        assert_eq!(pair.cooldown_for(&user("ann")), None);
        assert_eq!(pair.cooldown_for(&user("bob")), None);
    }

    #[test]
    fn closing_another_invitation_leaves_the_pending_one_alone() {
        let mut pair = Pair::new(user("ann"), user("bob"));
        pair.invited(id(2), user("ann"));
        let before = pair.clone();

        pair.closed(&id(1));
        assert_eq!(pair, before, "an expiry of another invitation");
        pair.withdrawn(&id(1), &user("bob"), UNTIL);
        assert_eq!(pair.pending(), Some(&(id(2), user("ann"))), "a withdrawal of another");
        pair.accepted(&id(1), NOW);
        assert_eq!(pair.pending(), Some(&(id(2), user("ann"))), "an acceptance of another");

        pair.closed(&id(2));
        assert_eq!(pair.pending(), None, "its own expiry closes it");
    }

    #[test]
    fn disconnecting_ends_a_connection_and_is_refused_without_one() {
        let mut pair = Pair::new(user("ann"), user("bob"));
        pair.invited(id(1), user("ann"));
        let before = pair.clone();
        assert_eq!(pair.disconnect(), Err(DomainError::NotConnected));
        assert_eq!(pair, before, "a refused disconnect changes nothing");

        pair.accepted(&id(1), NOW);
        assert_eq!(pair.disconnect(), Ok(NOW));
        assert_eq!(pair.connected_at(), None);
        assert_eq!(pair.relationship_for(&user("bob"), NOW).state, RelationshipState::None);
        assert!(
            pair.relationship_for(&user("ann"), NOW).can_invite,
            "either may invite afresh"
        );
        assert_eq!(pair.disconnect(), Err(DomainError::NotConnected), "not twice");
    }

    #[test]
    fn a_restored_pair_is_the_one_the_rules_made() {
        let mut made = Pair::new(user("bob"), user("ann"));
        made.invited(id(1), user("bob"));
        made.withdrawn(&id(1), &user("bob"), UNTIL);
        made.invited(id(2), user("ann"));
        let restored = Pair::restore(
            user("ann"),
            user("bob"),
            Some((id(2), user("ann"))),
            None,
            None,
            Some(UNTIL),
        );
        assert_eq!(restored, made);
    }

    #[test]
    fn pending_and_connected_are_seen_from_each_side() {
        let mut pair = Pair::new(user("a"), user("b"));
        pair.invited(id(7), user("a"));
        assert_eq!(
            pair.relationship_for(&user("a"), NOW).state,
            RelationshipState::PendingSent
        );
        let b = pair.relationship_for(&user("b"), NOW);
        assert_eq!(
            (b.state, b.invitation_id, b.can_invite),
            (RelationshipState::PendingReceived, Some(id(7)), false)
        );
        pair.accepted(&id(7), NOW);
        let a = pair.relationship_for(&user("a"), NOW);
        assert_eq!((a.state, a.connected_at), (RelationshipState::Connected, Some(NOW)));
    }
}
