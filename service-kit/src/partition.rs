//! Which partition a user belongs to, and which partitions an instance
//! owns (`PARTITION_COUNT`, `NOTIFICATION_PARTITIONS`; see SCALING.md).
//!
//! A user's partition is the 64-bit FNV-1a hash of their user id's UTF-8
//! bytes (the id as the services keep it: NFC-normalised, see
//! [`crate::text`]) modulo the partition count. FNV-1a is specified in a
//! few lines (draft-eastlake-fnv, with published test vectors), so any
//! client, proxy script or tool can compute the same answer; it is not a
//! defence against users choosing ids to crowd one partition, which the
//! server does not need (ids come from the identity provider).

use std::{fmt, str::FromStr};

/// Most partitions a deployment may have.
pub const MAX_PARTITIONS: u32 = 1024;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The 64-bit FNV-1a hash of `bytes`.
#[must_use]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The partition of `user_id` among `count` (at least 1).
#[must_use]
pub fn partition_of(user_id: &str, count: u32) -> u32 {
    let count = count.max(1);
    u32::try_from(fnv1a64(user_id.as_bytes()) % u64::from(count)).expect("below a u32 count")
}

/// A set of partitions, as `0-7`, `0,2,5-6` or `all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitions {
    All,
    /// Inclusive ranges, sorted and disjoint.
    Ranges(Vec<(u32, u32)>),
}

impl Partitions {
    #[must_use]
    pub fn contains(&self, partition: u32) -> bool {
        match self {
            Self::All => true,
            Self::Ranges(ranges) => ranges.iter().any(|&(low, high)| (low..=high).contains(&partition)),
        }
    }

    /// Every partition of the set below `count`, in order.
    #[must_use]
    pub fn members(&self, count: u32) -> Vec<u32> {
        (0..count).filter(|p| self.contains(*p)).collect()
    }

    /// Checks the set against the deployment's partition count.
    ///
    /// # Errors
    ///
    /// A message naming a partition at or past `count`.
    pub fn check(&self, count: u32) -> Result<(), String> {
        match self {
            Self::All => Ok(()),
            Self::Ranges(ranges) => match ranges.last() {
                Some(&(_, high)) if high >= count => Err(format!(
                    "partition {high} does not exist: PARTITION_COUNT is {count}, so partitions are 0 to {}",
                    count - 1
                )),
                _ => Ok(()),
            },
        }
    }
}

impl FromStr for Partitions {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        let number = |text: &str| {
            let n: u32 = text
                .trim()
                .parse()
                .map_err(|_| format!("`{text}` is not a partition number; use forms like 0-7 or 0,2,5-6"))?;
            if n >= MAX_PARTITIONS {
                return Err(format!(
                    "partition {n} is past the most a deployment may have ({MAX_PARTITIONS})"
                ));
            }
            Ok(n)
        };
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let (low, high) = match part.split_once('-') {
                Some((low, high)) => (number(low)?, number(high)?),
                None => {
                    let n = number(part)?;
                    (n, n)
                }
            };
            if low > high {
                return Err(format!("`{}` is a range from high to low", part.trim()));
            }
            ranges.push((low, high));
        }
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            if pair[1].0 <= pair[0].1 {
                return Err(format!("partition {} is named twice", pair[1].0));
            }
        }
        Ok(Self::Ranges(ranges))
    }
}

impl fmt::Display for Partitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Ranges(ranges) => {
                let parts: Vec<String> = ranges
                    .iter()
                    .map(|&(low, high)| {
                        if low == high {
                            low.to_string()
                        } else {
                            format!("{low}-{high}")
                        }
                    })
                    .collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_users_partition_is_stable_and_documented() {
        // Pinned (computed apart, with Python): a change here moves every
        // user to another partition, and so every deployment's data.
        assert_eq!(fnv1a64(b"alice"), 0x508b_2abb_65a0_3907);
        assert_eq!(partition_of("alice", 8), 7);
        assert_eq!(partition_of("bob", 8), 4);
        assert_eq!(partition_of("carol", 3), 1);
        assert_eq!(partition_of("dora", 16), 9);
        assert_eq!(partition_of("a", 1), 0);
        assert_eq!(partition_of("a", 0), 0, "no partitions reads as one");
    }

    #[test]
    fn partition_sets_parse_and_print() {
        assert_eq!("".parse::<Partitions>(), Ok(Partitions::All));
        assert_eq!("all".parse::<Partitions>(), Ok(Partitions::All));
        let set: Partitions = "5-6, 0,2".parse().unwrap();
        assert_eq!(set, Partitions::Ranges(vec![(0, 0), (2, 2), (5, 6)]));
        assert_eq!(set.to_string(), "0,2,5-6");
        assert_eq!(set.members(8), [0, 2, 5, 6]);
        assert!(set.contains(6) && !set.contains(7));
        assert_eq!(Partitions::All.members(3), [0, 1, 2]);
    }

    #[test]
    fn bad_partition_sets_are_refused_with_the_reason() {
        let err = |s: &str| s.parse::<Partitions>().unwrap_err();
        assert!(err("7-0").contains("from high to low"), "{}", err("7-0"));
        assert!(err("0-3,3").contains("partition 3 is named twice"), "{}", err("0-3,3"));
        assert!(err("x").contains("`x` is not a partition number"), "{}", err("x"));
        assert!(err("1024").contains("past the most"), "{}", err("1024"));
        assert_eq!("1023".parse::<Partitions>().map(|p| p.contains(1023)), Ok(true));
        let set: Partitions = "0-8".parse().unwrap();
        assert_eq!(
            set.check(8),
            Err("partition 8 does not exist: PARTITION_COUNT is 8, so partitions are 0 to 7".to_owned())
        );
        assert_eq!(set.check(9), Ok(()));
    }

    proptest! {
        #[test]
        fn partitions_are_in_range_and_spread_evenly(count in 1u32..=64) {
            let mut seen = vec![0u32; count as usize];
            for i in 0..(count * 200) {
                let p = partition_of(&format!("user-{i}"), count);
                prop_assert!(p < count);
                seen[p as usize] += 1;
            }
            // 200 expected per partition; FNV-1a keeps every one within half of it.
            prop_assert!(seen.iter().all(|&n| (100..=300).contains(&n)), "{:?}", seen);
        }
    }
}
