//! Exponential backoff with jitter between reconnection attempts, so that
//! many publishers cut off at once do not come back in step.

use std::time::Duration;

const INITIAL: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(5);

/// Delays of 100 ms, doubling to at most 5 s, each drawn from the upper half
/// of its step.
#[derive(Debug, Clone)]
pub(super) struct Backoff {
    step: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { step: INITIAL }
    }
}

impl Backoff {
    /// The delay before the next attempt.
    pub(super) fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(MAX);
        let half = step / 2;
        let jitter_ms = rand::random_range(0..=u64::try_from(half.as_millis()).unwrap_or(u64::MAX));
        half + Duration::from_millis(jitter_ms)
    }

    /// Starts again from the shortest delay, after a healthy connection.
    pub(super) fn reset(&mut self) {
        self.step = INITIAL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_reset() {
        let mut backoff = Backoff::default();
        let mut step = INITIAL;
        for _ in 0..12 {
            let delay = backoff.next_delay();
            assert!(delay >= step / 2 && delay <= step, "{delay:?} outside {step:?}");
            step = (step * 2).min(MAX);
        }
        assert!(backoff.next_delay() >= MAX / 2);
        backoff.reset();
        assert!(backoff.next_delay() <= INITIAL);
    }
}
