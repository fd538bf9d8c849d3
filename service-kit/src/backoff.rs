//! Exponential backoff with jitter: each delay is drawn from the upper half
//! of its step, so that many clients cut off at once do not come back in
//! step (the Standard Webhooks and AWS advice alike).

use std::time::Duration;

/// Delays from `initial`, doubling to at most `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    #[must_use]
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            step: initial,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(self.max);
        jittered(step)
    }

    /// Starts again from the shortest delay, after a success.
    pub fn reset(&mut self) {
        self.step = self.initial;
    }

    /// The delay before retry number `retry` (1 for the first retry) of
    /// something whose attempts are counted elsewhere (in storage).
    #[must_use]
    pub fn delay_for(initial: Duration, max: Duration, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        jittered(initial.saturating_mul(1 << doublings).min(max))
    }
}

fn jittered(step: Duration) -> Duration {
    let half = step / 2;
    let jitter_ms = rand::random_range(0..=u64::try_from(half.as_millis()).unwrap_or(u64::MAX));
    half + Duration::from_millis(jitter_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_reset() {
        let mut backoff = Backoff::new(INITIAL, MAX);
        let mut step = INITIAL;
        for retry in 1..=12 {
            let delay = backoff.next_delay();
            assert!(delay >= step / 2 && delay <= step, "{delay:?} outside {step:?}");
            let counted = Backoff::delay_for(INITIAL, MAX, retry);
            assert!(counted >= step / 2 && counted <= step, "{counted:?} outside {step:?}");
            step = (step * 2).min(MAX);
        }
        assert!(backoff.next_delay() >= MAX / 2);
        backoff.reset();
        assert!(backoff.next_delay() <= INITIAL);
        assert!(Backoff::delay_for(INITIAL, MAX, u32::MAX) <= MAX, "no overflow");
    }
}
