//! When, on a user's own clock: the next instant a local time of day comes
//! round in their IANA time zone, and when quiet hours end. Daylight-saving
//! changes are handled the way the contract says: a local time skipped that
//! day (spring forward) means the first instant after the gap, a repeated
//! one (fall back) comes once, at its first occurrence. Pure: the zone rules
//! are jiff's bundled copy of the IANA database, the same on every machine.

use jiff::tz::{AmbiguousOffset, TimeZone};

use super::Timestamp;

/// A local time of day, `HH:MM` (24-hour clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime {
    hour: u8,
    minute: u8,
}

impl LocalTime {
    /// # Errors
    ///
    /// Anything but `HH:MM` from `00:00` to `23:59`.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let invalid = "must be a local time HH:MM, from 00:00 to 23:59";
        let (h, m) = text.split_once(':').ok_or(invalid)?;
        if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(invalid);
        }
        let (hour, minute) = (
            h.parse::<u8>().map_err(|_| invalid)?,
            m.parse::<u8>().map_err(|_| invalid)?,
        );
        Self::new(hour, minute).ok_or(invalid)
    }

    #[must_use]
    pub fn new(hour: u8, minute: u8) -> Option<Self> {
        (hour < 24 && minute < 60).then_some(Self { hour, minute })
    }

    fn minute_of_day(self) -> u16 {
        u16::from(self.hour) * 60 + u16::from(self.minute)
    }
}

impl std::fmt::Display for LocalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// A window of local time in which e-mail and push wait; it may wrap
/// midnight (`22:00`–`07:00`). Equal ends make an empty window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: LocalTime,
    pub end: LocalTime,
}

impl QuietHours {
    fn contains(self, t: LocalTime) -> bool {
        let (s, e, m) = (self.start.minute_of_day(), self.end.minute_of_day(), t.minute_of_day());
        if s <= e { (s..e).contains(&m) } else { m >= s || m < e }
    }
}

/// A user's time zone: an IANA name the bundled database knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// # Errors
    ///
    /// A name the IANA database does not have (fixed offsets such as
    /// `+02:00` are not zones: they know nothing of daylight saving).
    pub fn parse(name: &str) -> Result<Self, &'static str> {
        let unknown = "must be an IANA time zone name such as Europe/Berlin or America/New_York";
        if name.is_empty() || name.len() > 64 || name.starts_with(['+', '-']) {
            return Err(unknown);
        }
        let tz = TimeZone::get(name).map_err(|_| unknown)?;
        Ok(Self {
            name: name.to_owned(),
            tz,
        })
    }

    #[must_use]
    pub fn utc() -> Self {
        Self {
            name: "UTC".to_owned(),
            tz: TimeZone::UTC,
        }
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local time of day at `t` (to the minute).
    #[must_use]
    pub fn local_time(&self, t: Timestamp) -> LocalTime {
        let dt = self.tz.to_datetime(instant(t));
        LocalTime {
            hour: u8::try_from(dt.hour()).unwrap_or(0),
            minute: u8::try_from(dt.minute()).unwrap_or(0),
        }
    }

    /// The first instant strictly after `after` when the local clock reads
    /// `at`. A local time skipped that day means the first instant after
    /// the gap; a repeated one, its first occurrence only.
    #[must_use]
    pub fn next(&self, at: LocalTime, after: Timestamp) -> Timestamp {
        let after_instant = instant(after);
        let mut date = self.tz.to_datetime(after_instant).date();
        // Two days always suffice; a few more cover zones that skipped a
        // whole day (Pacific/Apia in 2011).
        for _ in 0..4 {
            let local = date.at(
                i8::try_from(at.hour).unwrap_or(0),
                i8::try_from(at.minute).unwrap_or(0),
                0,
                0,
            );
            let candidate = self.resolve(local);
            if candidate > after_instant {
                return ours(candidate);
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        after
    }

    /// When quiet hours that hold at `at` end; `None` when they do not hold.
    #[must_use]
    pub fn quiet_until(&self, quiet: QuietHours, at: Timestamp) -> Option<Timestamp> {
        quiet.contains(self.local_time(at)).then(|| self.next(quiet.end, at))
    }

    fn resolve(&self, local: jiff::civil::DateTime) -> jiff::Timestamp {
        let ambiguous = self.tz.to_ambiguous_timestamp(local);
        match ambiguous.offset() {
            AmbiguousOffset::Gap { after, .. } => {
                // Read with the later offset, the skipped time is an instant
                // before the change; the change itself is the first instant
                // whose local time is past the gap.
                let before_change = after.to_timestamp(local).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                self.tz
                    .following(before_change)
                    .next()
                    .map_or(before_change, |transition| transition.timestamp())
            }
            AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => {
                ambiguous.earlier().unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            }
        }
    }
}

fn instant(t: Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(i64::try_from(t.as_millis()).unwrap_or(i64::MAX)).unwrap_or(jiff::Timestamp::MAX)
}

fn ours(t: jiff::Timestamp) -> Timestamp {
    Timestamp::from_millis(u64::try_from(t.as_millisecond()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn utc(text: &str) -> Timestamp {
        ours(text.parse::<jiff::Timestamp>().unwrap())
    }

    fn hm(text: &str) -> LocalTime {
        LocalTime::parse(text).unwrap()
    }

    fn zone(name: &str) -> Zone {
        Zone::parse(name).unwrap()
    }

    #[test]
    fn local_times_and_zones_are_checked() {
        assert_eq!(hm("09:00").to_string(), "09:00");
        assert_eq!(hm("23:59"), LocalTime::new(23, 59).unwrap());
        for bad in ["24:00", "9:00", "09:60", "0900", "09:00:00", "+9:00", "", "ab:cd"] {
            assert!(LocalTime::parse(bad).is_err(), "{bad}");
        }
        for good in [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "Pacific/Kiritimati",
        ] {
            assert_eq!(zone(good).name(), good);
        }
        for bad in ["", "Mars/Olympus", "+02:00", "-05", "Europe/Berlin/x"] {
            assert!(Zone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_ordinary_day() {
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            berlin.next(hm("09:00"), utc("2026-06-01T06:00:00Z")),
            utc("2026-06-01T07:00:00Z")
        );
        assert_eq!(
            berlin.next(hm("09:00"), utc("2026-06-01T07:00:00Z")),
            utc("2026-06-02T07:00:00Z"),
            "strictly after"
        );
        let kiritimati = zone("Pacific/Kiritimati");
        assert_eq!(
            kiritimati.next(hm("09:00"), utc("2026-06-01T00:00:00Z")),
            utc("2026-06-01T19:00:00Z"),
            "+14:00"
        );
    }

    #[test]
    fn a_skipped_local_time_means_the_first_instant_after_the_gap() {
        // Berlin springs forward on 29 March 2026: 02:00 becomes 03:00 (01:00Z).
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            berlin.next(hm("02:30"), utc("2026-03-28T12:00:00Z")),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(berlin.local_time(utc("2026-03-29T01:00:00Z")), hm("03:00"));
        // New York: 8 March 2026, 02:00 EST becomes 03:00 EDT (07:00Z).
        let new_york = zone("America/New_York");
        assert_eq!(
            new_york.next(hm("02:15"), utc("2026-03-08T00:00:00Z")),
            utc("2026-03-08T07:00:00Z")
        );
        // Lord Howe moves half an hour: 4 October 2026, 02:00 becomes 02:30 (15:30Z the day before).
        let lord_howe = zone("Australia/Lord_Howe");
        assert_eq!(
            lord_howe.next(hm("02:10"), utc("2026-10-03T10:00:00Z")),
            utc("2026-10-03T15:30:00Z")
        );
        assert_eq!(lord_howe.local_time(utc("2026-10-03T15:30:00Z")), hm("02:30"));
    }

    #[test]
    fn a_repeated_local_time_comes_once() {
        // Berlin falls back on 25 October 2026: 02:30 happens at 00:30Z and 01:30Z.
        let berlin = zone("Europe/Berlin");
        let first = berlin.next(hm("02:30"), utc("2026-10-24T12:00:00Z"));
        assert_eq!(first, utc("2026-10-25T00:30:00Z"));
        assert_eq!(
            berlin.next(hm("02:30"), first),
            utc("2026-10-26T01:30:00Z"),
            "not again at 01:30Z"
        );
        // Lord Howe falls back half an hour on 5 April 2026 (02:00 +11:00 becomes
        // 01:30 +10:30): 01:45 happens at 14:45Z and at 15:15Z on the 4th.
        let lord_howe = zone("Australia/Lord_Howe");
        let first = lord_howe.next(hm("01:45"), utc("2026-04-04T10:00:00Z"));
        assert_eq!(first, utc("2026-04-04T14:45:00Z"));
        assert!(lord_howe.next(hm("01:45"), first) > utc("2026-04-05T12:00:00Z"));
    }

    #[test]
    fn quiet_hours_may_wrap_midnight() {
        let berlin = zone("Europe/Berlin");
        let night = QuietHours {
            start: hm("22:00"),
            end: hm("07:00"),
        };
        assert_eq!(
            berlin.quiet_until(night, utc("2026-06-01T21:30:00Z")),
            Some(utc("2026-06-02T05:00:00Z"))
        );
        assert_eq!(
            berlin.quiet_until(night, utc("2026-06-02T04:59:00Z")),
            Some(utc("2026-06-02T05:00:00Z"))
        );
        assert_eq!(
            berlin.quiet_until(night, utc("2026-06-02T05:00:00Z")),
            None,
            "the end is not quiet"
        );
        assert_eq!(berlin.quiet_until(night, utc("2026-06-01T12:00:00Z")), None);
        let lunch = QuietHours {
            start: hm("12:00"),
            end: hm("13:00"),
        };
        assert_eq!(
            berlin.quiet_until(lunch, utc("2026-06-01T10:30:00Z")),
            Some(utc("2026-06-01T11:00:00Z"))
        );
        let empty = QuietHours {
            start: hm("08:00"),
            end: hm("08:00"),
        };
        assert_eq!(berlin.quiet_until(empty, utc("2026-06-01T06:00:00Z")), None);
    }

    const ZONES: [&str; 7] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Pacific/Kiritimati",
        "Asia/Kolkata",
        "America/St_Johns",
    ];

    fn arb_instant() -> impl Strategy<Value = Timestamp> {
        // 2020 to 2035, so that every zone's changes of those years count.
        (1_577_836_800_000_u64..2_051_222_400_000).prop_map(Timestamp::from_millis)
    }

    fn arb_local() -> impl Strategy<Value = LocalTime> {
        (0u8..24, 0u8..60).prop_map(|(h, m)| LocalTime::new(h, m).unwrap())
    }

    proptest! {
        /// Across zones and their daylight-saving changes: the next time
        /// comes strictly later, within a day and an hour; it reads as the
        /// wanted time, or else is the end of a gap that skipped it; and
        /// from any instant before it, the next time is the same one.
        #[test]
        fn the_next_local_time_is_the_first_one_that_exists(
            zone_name in prop::sample::select(&ZONES[..]),
            after in arb_instant(),
            at in arb_local(),
            fraction in 0.0f64..1.0,
        ) {
            let zone = zone(zone_name);
            let next = zone.next(at, after);
            prop_assert!(next > after);
            prop_assert!(next.as_millis() - after.as_millis() <= 25 * 3_600_000, "{zone_name} {at} after {after:?}: {next:?}");
            let shown = zone.local_time(next);
            if shown != at {
                // Skipped: the instant a minute before shows an earlier time of
                // day than the one wanted, and the next shows a later one.
                let before = zone.local_time(Timestamp::from_millis(next.as_millis() - 60_000));
                prop_assert!(before < at && at < shown, "{zone_name} {at}: {before} then {shown}");
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
            let between = Timestamp::from_millis(after.as_millis() + ((next.as_millis() - after.as_millis()) as f64 * fraction) as u64);
            if between < next {
                prop_assert_eq!(zone.next(at, between), next);
            }
        }

        #[test]
        fn quiet_hours_end_at_their_end(
            zone_name in prop::sample::select(&ZONES[..]),
            at in arb_instant(),
            start in arb_local(),
            end in arb_local(),
        ) {
            let zone = zone(zone_name);
            let quiet = QuietHours { start, end };
            match zone.quiet_until(quiet, at) {
                Some(until) => {
                    prop_assert!(until > at);
                    prop_assert!(!quiet.contains(zone.local_time(until)) || zone.local_time(until) == end);
                    prop_assert_eq!(until, zone.next(end, at));
                }
                None => prop_assert!(!quiet.contains(zone.local_time(at))),
            }
        }
    }
}
