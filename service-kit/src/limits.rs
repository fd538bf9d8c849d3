//! Limits per caller, so one user cannot starve their neighbours: a rate
//! for each class of call, per user, with a burst of two seconds' worth
//! (GCRA, from `governor`). What a refusal says (the class, its rate, and
//! when to retry) is the caller's to turn into a status.

use std::{fmt, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};

/// How often the limiters forget users who have been idle long enough to
/// be back at a full burst.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);

/// A class of calls with a rate of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Calls that only read: gets, lists, counts.
    Read,
    /// Calls that change something or open a stream.
    Write,
}

impl Class {
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Read => "reads",
            Self::Write => "writes",
        }
    }
}

/// Requests per second and user allowed in each class; 0 turns that
/// class's limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSettings {
    pub reads_per_second: u32,
    pub writes_per_second: u32,
}

impl RateSettings {
    /// No limit at all.
    pub const OFF: Self = Self {
        reads_per_second: 0,
        writes_per_second: 0,
    };
}

/// A call refused for going over its class's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub class: Class,
    pub per_second: u32,
    /// When the call would be allowed.
    pub retry_after: Duration,
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whole milliseconds, at least one: a client that waits exactly
        // this long must get through.
        let wait_ms = self.retry_after.as_micros().div_ceil(1000).max(1);
        write!(
            f,
            "too many {} from this user (at most {} a second): retry in {wait_ms} ms",
            self.class.name(),
            self.per_second
        )
    }
}

/// The status for a refused call: RESOURCE_EXHAUSTED with
/// `google.rpc.RetryInfo` (when to retry) and `google.rpc.ErrorInfo`
/// (reason `RATE_LIMITED`, the class and its rate), so clients can back off
/// without parsing the message. Each service's error mapping calls it with
/// its error domain.
#[must_use]
pub fn status(limited: &RateLimited, domain: &str) -> tonic::Status {
    let mut details = tonic_types::ErrorDetails::new();
    details.set_retry_info(Some(limited.retry_after));
    details.set_error_info(
        "RATE_LIMITED",
        domain,
        std::collections::HashMap::from([
            ("class".to_owned(), limited.class.name().to_owned()),
            ("per_second".to_owned(), limited.per_second.to_string()),
        ]),
    );
    <tonic::Status as tonic_types::StatusExt>::with_error_details(
        tonic::Code::ResourceExhausted,
        limited.to_string(),
        details,
    )
}

struct Limiter {
    per_second: u32,
    limiter: DefaultKeyedRateLimiter<String>,
}

impl Limiter {
    fn new(per_second: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
        Some(Self {
            per_second,
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        })
    }
}

/// The rate limits of one service, shared by its handlers.
#[derive(Clone, Default)]
pub struct RateLimits {
    reads: Option<Arc<Limiter>>,
    writes: Option<Arc<Limiter>>,
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimits")
            .field("reads_per_second", &self.reads.as_ref().map(|l| l.per_second))
            .field("writes_per_second", &self.writes.as_ref().map(|l| l.per_second))
            .finish()
    }
}

impl RateLimits {
    #[must_use]
    pub fn new(settings: RateSettings) -> Self {
        Self {
            reads: Limiter::new(settings.reads_per_second).map(Arc::new),
            writes: Limiter::new(settings.writes_per_second).map(Arc::new),
        }
    }

    /// Counts one call of `class` by `user`.
    ///
    /// # Errors
    ///
    /// [`RateLimited`] when the user has used up their rate for now.
    pub fn check(&self, user: &str, class: Class) -> Result<(), RateLimited> {
        let limiter = match class {
            Class::Read => &self.reads,
            Class::Write => &self.writes,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.limiter.check_key(&user.to_owned()).map_err(|not_until| {
            let now = limiter.limiter.clock().now();
            RateLimited {
                class,
                per_second: limiter.per_second,
                retry_after: not_until.wait_time_from(now),
            }
        })
    }

    /// Users the limiters remember now.
    #[must_use]
    pub fn users_remembered(&self) -> usize {
        [&self.reads, &self.writes]
            .into_iter()
            .flatten()
            .map(|l| l.limiter.len())
            .sum()
    }

    /// Forgets users who are back at a full burst, so the memory follows
    /// the users who are active now, not everyone who ever called.
    pub fn forget_idle(&self) {
        for limiter in [&self.reads, &self.writes].into_iter().flatten() {
            limiter.limiter.retain_recent();
            limiter.limiter.shrink_to_fit();
        }
    }

    /// Runs [`Self::forget_idle`] every [`HOUSEKEEPING_INTERVAL`] until the
    /// returned task is aborted or the runtime ends.
    #[must_use]
    pub fn spawn_housekeeping(&self) -> tokio::task::JoinHandle<()> {
        let limits = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                limits.forget_idle();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_a_burst_of_two_seconds_then_waits_and_others_are_unaffected() {
        let limits = RateLimits::new(RateSettings {
            reads_per_second: 5,
            writes_per_second: 0,
        });
        for i in 0..10 {
            assert!(limits.check("alice", Class::Read).is_ok(), "call {i} of the burst");
        }
        let refused = limits.check("alice", Class::Read).unwrap_err();
        assert_eq!((refused.class, refused.per_second), (Class::Read, 5));
        assert!(
            refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_millis(200),
            "{refused:?}"
        );
        assert!(
            refused
                .to_string()
                .starts_with("too many reads from this user (at most 5 a second): retry in ")
        );
        assert!(limits.check("bob", Class::Read).is_ok(), "per user");
        for _ in 0..1000 {
            assert!(limits.check("alice", Class::Write).is_ok(), "writes are off");
        }
        std::thread::sleep(refused.retry_after);
        assert!(limits.check("alice", Class::Read).is_ok(), "after the wait it says");
    }

    #[test]
    fn idle_users_are_forgotten() {
        let limits = RateLimits::new(RateSettings {
            reads_per_second: 1000,
            writes_per_second: 1000,
        });
        for i in 0..100 {
            limits.check(&format!("user-{i}"), Class::Read).unwrap();
        }
        assert_eq!(limits.users_remembered(), 100);
        // A thousand a second with a burst of two thousand: one call is
        // paid back within a millisecond.
        std::thread::sleep(Duration::from_millis(20));
        limits.forget_idle();
        assert_eq!(limits.users_remembered(), 0);
    }

    #[test]
    fn off_limits_nothing() {
        let limits = RateLimits::new(RateSettings::OFF);
        for _ in 0..10_000 {
            limits.check("alice", Class::Read).unwrap();
            limits.check("alice", Class::Write).unwrap();
        }
        assert_eq!(limits.users_remembered(), 0);
    }
}
