//! When a pending invitation is brought back to its recipient's attention:
//! offsets after the send (`INVITATION_REMINDERS`, e.g. `7d,14d`). An
//! invitation waits for one reminder at a time, the next being scheduled
//! when one fires; after downtime that spanned several offsets only the
//! latest fires, once.

use std::{fmt, str::FromStr, time::Duration};

use super::Timestamp;

/// Most offsets a server may be configured with.
pub const MAX_REMINDERS: usize = 10;

/// The reminder offsets, strictly increasing, each above zero. Empty: no
/// reminders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reminders(Vec<Duration>);

/// A reminder to emit: which offset (from 1), and the one to schedule next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firing {
    pub ordinal: u32,
    pub next: Option<(u32, Timestamp)>,
}

impl Reminders {
    /// # Errors
    ///
    /// A message naming the offset that is zero or not after the one
    /// before it, or saying there are too many.
    pub fn new(offsets: Vec<Duration>) -> Result<Self, String> {
        if offsets.len() > MAX_REMINDERS {
            return Err(format!(
                "{} reminder offsets given; at most {MAX_REMINDERS} are allowed",
                offsets.len()
            ));
        }
        let mut before = Duration::ZERO;
        for (i, &offset) in offsets.iter().enumerate() {
            if offset <= before {
                let what = if i == 0 {
                    "above zero"
                } else {
                    "after the one before it"
                };
                return Err(format!(
                    "reminder offset {} ({}) must be {what}",
                    i + 1,
                    humantime::format_duration(offset)
                ));
            }
            before = offset;
        }
        Ok(Self(offsets))
    }

    /// The product's default: a week, then two weeks, after the send.
    #[must_use]
    pub fn standard() -> Self {
        const DAY: u64 = 24 * 3600;
        Self(vec![Duration::from_secs(7 * DAY), Duration::from_secs(14 * DAY)])
    }

    #[must_use]
    pub fn offsets(&self) -> &[Duration] {
        &self.0
    }

    /// The reminder `ordinal` (from 1) of an invitation sent at `sent`.
    #[must_use]
    pub fn due(&self, ordinal: u32, sent: Timestamp) -> Option<Timestamp> {
        let index = usize::try_from(ordinal).ok()?.checked_sub(1)?;
        self.0.get(index).map(|&offset| sent.plus(offset))
    }

    /// The first reminder of an invitation sent at `sent`.
    #[must_use]
    pub fn first(&self, sent: Timestamp) -> Option<(u32, Timestamp)> {
        self.due(1, sent).map(|due| (1, due))
    }

    /// What becomes of the reminder `scheduled` of an invitation sent at
    /// `sent`, still pending at `now`: the latest offset that has passed
    /// fires (at least `scheduled`, so a reminder is never lost to a clock
    /// set back), and the next one is scheduled. `None` when the server no
    /// longer has that offset (reminders were turned off or shortened).
    #[must_use]
    pub fn fire(&self, scheduled: u32, sent: Timestamp, now: Timestamp) -> Option<Firing> {
        self.due(scheduled, sent)?;
        let mut ordinal = scheduled;
        while self.due(ordinal + 1, sent).is_some_and(|due| due <= now) {
            ordinal += 1;
        }
        Some(Firing {
            ordinal,
            next: self.due(ordinal + 1, sent).map(|due| (ordinal + 1, due)),
        })
    }
}

impl FromStr for Reminders {
    type Err = String;

    /// Comma-separated durations (`7d,14d`); empty (or blank) for none.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        let offsets = s
            .split(',')
            .map(service_kit::config::parse_duration)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(offsets)
    }
}

impl fmt::Display for Reminders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|d| humantime::format_duration(*d).to_string())
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);
    const SENT: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn days(n: u32) -> Duration {
        DAY * n
    }

    #[test]
    fn parses_the_default_form_and_empty_as_none() {
        assert_eq!("7d,14d".parse::<Reminders>(), Ok(Reminders::standard()));
        assert_eq!(" 7d , 14d ".parse::<Reminders>(), Ok(Reminders::standard()));
        assert_eq!("".parse::<Reminders>(), Ok(Reminders::default()));
        assert_eq!("  ".parse::<Reminders>(), Ok(Reminders::default()));
        assert_eq!(Reminders::standard().to_string(), "7days,14days");
    }

    #[test]
    fn refuses_zero_unordered_repeated_and_too_many_offsets() {
        let err = "0s".parse::<Reminders>().unwrap_err();
        assert!(err.contains("offset 1 (0s) must be above zero"), "{err}");
        let err = "14d,7d".parse::<Reminders>().unwrap_err();
        assert!(
            err.contains("offset 2 (7days) must be after the one before it"),
            "{err}"
        );
        let err = "7d,7d".parse::<Reminders>().unwrap_err();
        assert!(err.contains("offset 2"), "{err}");
        let err = "7d,soon".parse::<Reminders>().unwrap_err();
        assert!(err.contains("`soon` is not a duration"), "{err}");
        let ten: Vec<String> = (1..=10).map(|d| format!("{d}d")).collect();
        assert_eq!(ten.join(",").parse::<Reminders>().unwrap().offsets().len(), 10);
        let err = format!("{},11d", ten.join(",")).parse::<Reminders>().unwrap_err();
        assert!(err.contains("11 reminder offsets given; at most 10"), "{err}");
    }

    #[test]
    fn each_offset_fires_in_turn_and_schedules_the_next() {
        let r = Reminders::standard();
        assert_eq!(r.first(SENT), Some((1, SENT.plus(days(7)))));
        assert_eq!(
            r.fire(1, SENT, SENT.plus(days(7))),
            Some(Firing {
                ordinal: 1,
                next: Some((2, SENT.plus(days(14))))
            })
        );
        assert_eq!(
            r.fire(2, SENT, SENT.plus(days(14))),
            Some(Firing { ordinal: 2, next: None })
        );
        assert_eq!(Reminders::default().first(SENT), None);
    }

    #[test]
    fn after_downtime_past_several_offsets_only_the_latest_fires() {
        let r = "1d,2d,3d".parse::<Reminders>().unwrap();
        assert_eq!(
            r.fire(1, SENT, SENT.plus(days(2) + Duration::from_secs(1))),
            Some(Firing {
                ordinal: 2,
                next: Some((3, SENT.plus(days(3))))
            })
        );
        assert_eq!(
            r.fire(1, SENT, SENT.plus(days(30))),
            Some(Firing { ordinal: 3, next: None })
        );
    }

    #[test]
    fn an_offset_the_server_no_longer_has_fires_nothing() {
        assert_eq!(Reminders::default().fire(1, SENT, SENT.plus(days(7))), None);
        assert_eq!(
            "7d".parse::<Reminders>().unwrap().fire(2, SENT, SENT.plus(days(14))),
            None
        );
        assert_eq!(Reminders::standard().fire(0, SENT, SENT.plus(days(14))), None);
    }

    proptest! {
        /// Firing whenever the sweep happens to run, every reminder
        /// fires at most once, in order, never before its offset, and the
        /// last one has fired once time passes them all.
        #[test]
        fn reminders_fire_once_each_in_order_whenever_the_sweep_runs(
            gaps in prop::collection::vec(1u64..=5, 1..=5),
            sweeps in prop::collection::vec(0u64..40 * 24, 1..30),
        ) {
            let mut offsets = Vec::new();
            let mut total = 0;
            for gap in gaps {
                total += gap;
                offsets.push(days(u32::try_from(total).unwrap()));
            }
            let r = Reminders::new(offsets).unwrap();
            let mut sweeps: Vec<Timestamp> = sweeps.into_iter().map(|h| SENT.plus(Duration::from_secs(h * 3600))).collect();
            sweeps.sort();
            sweeps.push(SENT.plus(days(60)));
            let mut scheduled = r.first(SENT);
            let mut fired = Vec::new();
            for now in sweeps {
                if let Some((ordinal, due)) = scheduled.filter(|(_, due)| *due <= now) {
                    let firing = r.fire(ordinal, SENT, now).unwrap();
                    prop_assert!(r.due(firing.ordinal, SENT).unwrap() <= now);
                    prop_assert!(firing.ordinal >= ordinal && due <= now);
                    fired.push(firing.ordinal);
                    scheduled = firing.next;
                }
            }
            prop_assert!(fired.windows(2).all(|w| w[0] < w[1]), "{:?}", fired);
            prop_assert_eq!(fired.last().copied(), Some(u32::try_from(r.offsets().len()).unwrap()));
        }
    }
}
