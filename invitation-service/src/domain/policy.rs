//! The etiquette guards on sending: pair rules, the re-invite cool-down and
//! the rolling weekly limit, with the per-user activity they are counted on.

use std::time::Duration;

use super::{DomainError, Invitation, InvitationId, Note, Pair, Reminders, State, Timestamp, UserId};

/// The rolling window of the send limit.
pub const SEND_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// The window of the withdrawal figure in the stats.
pub const WITHDRAWAL_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// The configurable etiquette rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub max_note_chars: usize,
    pub reinvite_cooldown: Duration,
    pub weekly_limit: u32,
    pub pending_ttl: Duration,
    /// When a still-pending invitation is brought back to its recipient.
    pub reminders: Reminders,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_note_chars: 300,
            reinvite_cooldown: Duration::from_secs(21 * 24 * 3600),
            weekly_limit: 100,
            pending_ttl: Duration::from_secs(180 * 24 * 3600),
            reminders: Reminders::standard(),
        }
    }
}

/// A validated request to send an invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    pub sender: UserId,
    pub sender_name: String,
    pub recipient: UserId,
    pub message: Note,
}

/// One user's recent sending, as the limits need it: send times within the
/// last 7 days and withdrawal times within the last 30, oldest first, and
/// how many of their invitations are open.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Activity {
    pub sends: Vec<Timestamp>,
    pub withdrawals: Vec<Timestamp>,
    pub pending_sent: u32,
}

impl Activity {
    /// Forgets what has left both windows.
    pub fn prune(&mut self, now: Timestamp) {
        let send_floor = now.minus(SEND_WINDOW);
        self.sends.retain(|t| *t > send_floor);
        let withdrawal_floor = now.minus(WITHDRAWAL_WINDOW);
        self.withdrawals.retain(|t| *t > withdrawal_floor);
    }

    fn count_after(times: &[Timestamp], floor: Timestamp) -> u32 {
        u32::try_from(times.iter().filter(|t| **t > floor).count()).unwrap_or(u32::MAX)
    }

    #[must_use]
    pub fn sent_in_window(&self, now: Timestamp) -> u32 {
        Self::count_after(&self.sends, now.minus(SEND_WINDOW))
    }

    #[must_use]
    pub fn withdrawn_in_window(&self, now: Timestamp) -> u32 {
        Self::count_after(&self.withdrawals, now.minus(WITHDRAWAL_WINDOW))
    }

    /// When the user may send again, if the limit is reached now.
    #[must_use]
    pub fn next_send_at(&self, limit: u32, now: Timestamp) -> Option<Timestamp> {
        let floor = now.minus(SEND_WINDOW);
        let in_window: Vec<Timestamp> = self.sends.iter().copied().filter(|t| *t > floor).collect();
        let count = u32::try_from(in_window.len()).unwrap_or(u32::MAX);
        if count < limit {
            return None;
        }
        // Once the (count - limit + 1) oldest sends have left the window, the
        // user is one below the limit again.
        let index = usize::try_from(count - limit).unwrap_or(usize::MAX);
        in_window.get(index).map(|t| t.plus(SEND_WINDOW))
    }

    fn insert_sorted(times: &mut Vec<Timestamp>, t: Timestamp) {
        let at = times.partition_point(|x| *x <= t);
        times.insert(at, t);
    }

    pub fn record_send(&mut self, now: Timestamp) {
        Self::insert_sorted(&mut self.sends, now);
        self.pending_sent = self.pending_sent.saturating_add(1);
    }

    pub fn record_withdrawal(&mut self, now: Timestamp) {
        Self::insert_sorted(&mut self.withdrawals, now);
    }

    /// One of the user's open invitations closed.
    pub fn record_closed(&mut self) {
        self.pending_sent = self.pending_sent.saturating_sub(1);
    }
}

impl Policy {
    /// Checks every rule for sending `request` now, in the order a person
    /// would want to hear about them.
    ///
    /// # Errors
    ///
    /// The first rule the request breaks.
    pub fn check_send(
        &self,
        request: &SendRequest,
        pair: &Pair,
        activity: &Activity,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        if request.sender == request.recipient {
            return Err(DomainError::SelfInvite);
        }
        if pair.connected_at().is_some() {
            return Err(DomainError::AlreadyConnected);
        }
        if let Some((_, sender)) = pair.pending() {
            return Err(if *sender == request.sender {
                DomainError::AlreadyInvited
            } else {
                DomainError::AlreadyInvitedYou
            });
        }
        if let Some(until) = pair.cooldown_for(&request.sender).filter(|until| *until > now) {
            return Err(DomainError::CoolingDown { until });
        }
        if let Some(retry_at) = activity.next_send_at(self.weekly_limit, now) {
            return Err(DomainError::WeeklyLimit {
                limit: self.weekly_limit,
                retry_at,
            });
        }
        Ok(())
    }

    /// The invitation a permitted request creates.
    #[must_use]
    pub fn new_invitation(&self, request: SendRequest, id: InvitationId, now: Timestamp) -> Invitation {
        Invitation {
            id,
            sender: request.sender,
            sender_name: request.sender_name,
            recipient: request.recipient,
            message: request.message,
            state: State::Pending,
            created_at: now,
            updated_at: now,
            expires_at: now.plus(self.pending_ttl),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserId {
        UserId::parse("user", id).unwrap()
    }

    fn request(from: &str, to: &str) -> SendRequest {
        SendRequest {
            sender: user(from),
            sender_name: String::new(),
            recipient: user(to),
            message: Note::default(),
        }
    }

    const DAY: u64 = 24 * 3600 * 1000;

    #[test]
    fn pair_rules_in_order() {
        let policy = Policy::default();
        let now = Timestamp::from_millis(100 * DAY);
        let activity = Activity::default();
        let mut pair = Pair::new(user("a"), user("b"));
        assert_eq!(
            policy.check_send(&request("a", "a"), &Pair::new(user("a"), user("a")), &activity, now),
            Err(DomainError::SelfInvite)
        );
        assert_eq!(policy.check_send(&request("a", "b"), &pair, &activity, now), Ok(()));
        let id = InvitationId::new(now, 1);
        pair.invited(id, user("a"));
        assert_eq!(
            policy.check_send(&request("a", "b"), &pair, &activity, now),
            Err(DomainError::AlreadyInvited)
        );
        assert_eq!(
            policy.check_send(&request("b", "a"), &pair, &activity, now),
            Err(DomainError::AlreadyInvitedYou)
        );
        pair.accepted(&id, now);
        assert_eq!(
            policy.check_send(&request("b", "a"), &pair, &activity, now),
            Err(DomainError::AlreadyConnected)
        );
    }

    #[test]
    fn cooldown_refuses_until_its_deadline_and_binds_the_sender_only() {
        let policy = Policy::default();
        let now = Timestamp::from_millis(100 * DAY);
        let until = now.plus(policy.reinvite_cooldown);
        let mut pair = Pair::new(user("a"), user("b"));
        let id = InvitationId::new(now, 1);
        pair.invited(id, user("a"));
        pair.withdrawn(&id, &user("a"), until);
        let activity = Activity::default();
        assert_eq!(
            policy.check_send(
                &request("a", "b"),
                &pair,
                &activity,
                Timestamp::from_millis(until.as_millis() - 1)
            ),
            Err(DomainError::CoolingDown { until })
        );
        assert_eq!(policy.check_send(&request("a", "b"), &pair, &activity, until), Ok(()));
        assert_eq!(policy.check_send(&request("b", "a"), &pair, &activity, now), Ok(()));
    }

    #[test]
    fn weekly_limit_at_its_boundary_with_the_retry_time() {
        let policy = Policy {
            weekly_limit: 3,
            ..Policy::default()
        };
        let pair = Pair::new(user("a"), user("b"));
        let start = Timestamp::from_millis(100 * DAY);
        let mut activity = Activity::default();
        for i in 0..2 {
            activity.record_send(start.plus(std::time::Duration::from_secs(i * 60)));
        }
        let now = start.plus(std::time::Duration::from_secs(3600));
        assert_eq!(
            policy.check_send(&request("a", "b"), &pair, &activity, now),
            Ok(()),
            "2 of 3 used"
        );
        activity.record_send(now);
        let retry_at = start.plus(SEND_WINDOW);
        assert_eq!(
            policy.check_send(&request("a", "b"), &pair, &activity, now),
            Err(DomainError::WeeklyLimit { limit: 3, retry_at })
        );
        let just_before = Timestamp::from_millis(retry_at.as_millis() - 1);
        assert!(
            policy
                .check_send(&request("a", "b"), &pair, &activity, just_before)
                .is_err()
        );
        assert_eq!(
            policy.check_send(&request("a", "b"), &pair, &activity, retry_at),
            Ok(())
        );
    }

    #[test]
    fn withdrawals_do_not_refund_the_limit_and_windows_prune() {
        let now = Timestamp::from_millis(100 * DAY);
        let mut activity = Activity::default();
        activity.record_send(now);
        activity.record_withdrawal(now);
        activity.record_closed();
        assert_eq!(activity.sent_in_window(now), 1);
        assert_eq!(activity.withdrawn_in_window(now), 1);
        assert_eq!(activity.pending_sent, 0);
        let later = now.plus(SEND_WINDOW);
        assert_eq!(activity.sent_in_window(later), 0);
        assert_eq!(activity.withdrawn_in_window(later), 1);
        activity.prune(now.plus(WITHDRAWAL_WINDOW));
        assert_eq!(activity, Activity::default());
    }

    #[test]
    fn new_invitations_expire_after_the_ttl() {
        let policy = Policy::default();
        let now = Timestamp::from_millis(5);
        let inv = policy.new_invitation(request("a", "b"), InvitationId::new(now, 1), now);
        assert_eq!(inv.state, State::Pending);
        assert_eq!(inv.expires_at, now.plus(policy.pending_ttl));
    }
}
