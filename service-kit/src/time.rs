//! Wall-clock time as milliseconds since the Unix epoch, and the clock that
//! supplies it (injected, so tests can move time). Both services' domain
//! cores use it; it depends on nothing but std and humantime.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A point in time, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    #[must_use]
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    }

    #[must_use]
    pub fn minus(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    }

    #[must_use]
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }
}

/// RFC 3339 to the second, rounded up: messages say "from <time>", and a
/// caller who waits until the printed second must not be refused.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.div_ceil(1000);
        let time = UNIX_EPOCH + Duration::from_secs(seconds);
        write!(f, "{}", humantime::format_rfc3339_seconds(time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_round_trip_to_the_millisecond() {
        let t = Timestamp::from_millis(1_767_225_600_123);
        assert_eq!(
            to_proto(t),
            prost_types::Timestamp {
                seconds: 1_767_225_600,
                nanos: 123_000_000
            }
        );
        assert_eq!(from_proto(&to_proto(t)), t);
        assert_eq!(
            from_proto(&prost_types::Timestamp { seconds: -5, nanos: 0 }),
            Timestamp::from_millis(0)
        );
    }

    #[test]
    fn display_rounds_up_to_the_second() {
        assert_eq!(Timestamp::from_millis(1_000).to_string(), "1970-01-01T00:00:01Z");
        assert_eq!(Timestamp::from_millis(1_001).to_string(), "1970-01-01T00:00:02Z");
        assert_eq!(Timestamp::from_millis(1_999).to_string(), "1970-01-01T00:00:02Z");
    }
}

/// The contract's form of a time.
#[must_use]
pub fn to_proto(t: Timestamp) -> prost_types::Timestamp {
    let ms = t.as_millis();
    prost_types::Timestamp {
        seconds: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    }
}

/// A contract time, to the millisecond (times before the epoch become 0).
#[must_use]
pub fn from_proto(t: &prost_types::Timestamp) -> Timestamp {
    let seconds = u64::try_from(t.seconds).unwrap_or(0);
    let millis = u64::try_from(t.nanos / 1_000_000).unwrap_or(0);
    Timestamp::from_millis(seconds.saturating_mul(1000).saturating_add(millis))
}

/// Where the service reads the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to; for tests.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    #[must_use]
    pub fn starting_at(t: Timestamp) -> Self {
        Self(Arc::new(AtomicU64::new(t.0)))
    }

    pub fn advance(&self, d: Duration) {
        self.0
            .fetch_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}
