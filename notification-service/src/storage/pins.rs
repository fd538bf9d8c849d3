//! Resume points the update log must keep for a while: a `Subscribe` stream
//! cut off for falling behind is told `resume_after=N`, and its client may
//! read that only after it has worked through what the transport still
//! holds, while new updates keep coming. A pin keeps the log from trimming
//! past `N` for [`RESUME_GRACE`], up to [`MAX_UPDATES_KEPT`] updates.
//!
//! Pins live in memory only: they outlast a cut stream, not a restart (a
//! restart ends every stream anyway, and the log then keeps its usual
//! [`super::UPDATES_KEPT`]).

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// How long a resume point given to a cut-off stream stays resumable.
pub const RESUME_GRACE: Duration = Duration::from_secs(10 * 60);

/// The most updates the log keeps for one user while a resume point is
/// pinned; past that the oldest go even so, and resuming from before them
/// answers OUT_OF_RANGE.
pub const MAX_UPDATES_KEPT: u64 = 10_000;

#[derive(Debug, Clone, Copy)]
struct Pin {
    /// Updates after this cursor are kept.
    after: u64,
    until: Instant,
}

/// Pinned resume points, per user.
#[derive(Debug, Default)]
pub struct ResumePins {
    pins: Mutex<HashMap<String, Pin>>,
}

impl ResumePins {
    /// Keeps `user`'s updates after `after` until `until`. Pins of the same
    /// user merge: the earliest cursor, the latest time.
    pub fn pin(&self, user: &str, after: u64, until: Instant) {
        let mut pins = self.pins.lock().unwrap_or_else(PoisonError::into_inner);
        pins.entry(user.to_owned())
            .and_modify(|pin| {
                pin.after = pin.after.min(after);
                pin.until = pin.until.max(until);
            })
            .or_insert(Pin { after, until });
    }

    /// The cursor after which `user`'s updates must be kept at `now`, if
    /// any; forgets pins that have run out.
    pub fn keep_after(&self, user: &str, now: Instant) -> Option<u64> {
        let mut pins = self.pins.lock().unwrap_or_else(PoisonError::into_inner);
        if pins.is_empty() {
            return None;
        }
        match pins.get(user) {
            Some(pin) if pin.until > now => Some(pin.after),
            Some(_) => {
                pins.remove(user);
                None
            }
            None => None,
        }
    }

    /// Pinned users (including pins that ran out but were not looked at).
    #[must_use]
    pub fn len(&self) -> usize {
        self.pins.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The first cursor `user`'s log must still hold once `last` is logged:
/// the last [`super::UPDATES_KEPT`], or from a pinned resume point on, but
/// never more than [`MAX_UPDATES_KEPT`].
#[must_use]
pub fn keep_from(last: u64, pinned_after: Option<u64>) -> u64 {
    let usual = (last + 1).saturating_sub(super::UPDATES_KEPT).max(1);
    let most = (last + 1).saturating_sub(MAX_UPDATES_KEPT).max(1);
    match pinned_after {
        Some(after) => usual.min(after.saturating_add(1)).max(most),
        None => usual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_keeps_what_follows_it_until_it_runs_out() {
        let pins = ResumePins::default();
        let now = Instant::now();
        assert_eq!(pins.keep_after("bob", now), None);
        pins.pin("bob", 232, now + RESUME_GRACE);
        pins.pin("bob", 400, now + RESUME_GRACE * 2);
        assert_eq!(pins.keep_after("bob", now), Some(232), "the earliest cursor");
        assert_eq!(pins.keep_after("carol", now), None, "pins are per user");
        assert_eq!(
            pins.keep_after("bob", now + RESUME_GRACE + Duration::from_secs(1)),
            Some(232),
            "the latest time"
        );
        assert_eq!(pins.keep_after("bob", now + RESUME_GRACE * 2), None);
        assert!(pins.is_empty(), "a pin that ran out is forgotten");
    }

    #[test]
    fn the_log_keeps_the_usual_updates_or_from_the_pin_within_the_cap() {
        use super::super::UPDATES_KEPT;
        assert_eq!(keep_from(1, None), 1);
        assert_eq!(keep_from(UPDATES_KEPT, None), 1);
        assert_eq!(keep_from(UPDATES_KEPT + 1, None), 2);
        assert_eq!(keep_from(2_500, None), 1_501);
        assert_eq!(keep_from(2_500, Some(232)), 233);
        assert_eq!(keep_from(2_500, Some(2_000)), 1_501, "a recent pin keeps the usual");
        assert_eq!(
            keep_from(MAX_UPDATES_KEPT + 500, Some(232)),
            501,
            "never more than the cap"
        );
    }
}
