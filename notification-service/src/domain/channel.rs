//! The channels a notification reaches its owner on: the app (inbox and
//! live streams), e-mail and push, as a small set a preference holds.

/// One channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// The inbox and the live `Subscribe` streams.
    InApp,
    Email,
    Push,
}

impl Channel {
    pub const ALL: [Self; 3] = [Self::InApp, Self::Email, Self::Push];

    const fn bit(self) -> u8 {
        match self {
            Self::InApp => 1,
            Self::Email => 2,
            Self::Push => 4,
        }
    }

    /// The name operators see in logs and metrics.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::InApp => "in_app",
            Self::Email => "email",
            Self::Push => "push",
        }
    }
}

/// A set of channels. Empty reads as IN_APP alone wherever a preference is
/// read (see [`Channels::or_in_app`]); a delivered notification's set is
/// where it actually went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Channels(u8);

impl Channels {
    pub const NONE: Self = Self(0);
    pub const IN_APP: Self = Self(1);

    #[must_use]
    pub fn of(channels: impl IntoIterator<Item = Channel>) -> Self {
        channels.into_iter().fold(Self::NONE, |set, c| set.with(c))
    }

    #[must_use]
    pub const fn with(self, channel: Channel) -> Self {
        Self(self.0 | channel.bit())
    }

    #[must_use]
    pub const fn without(self, channel: Channel) -> Self {
        Self(self.0 & !channel.bit())
    }

    #[must_use]
    pub const fn contains(self, channel: Channel) -> bool {
        self.0 & channel.bit() != 0
    }

    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Only the channels also in `other`.
    #[must_use]
    pub const fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The set a preference means: empty is IN_APP alone.
    #[must_use]
    pub const fn or_in_app(self) -> Self {
        if self.is_empty() { Self::IN_APP } else { self }
    }

    /// Its channels in the order IN_APP, EMAIL, PUSH.
    pub fn iter(self) -> impl Iterator<Item = Channel> {
        Channel::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// The stored form: one bit per channel.
    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// From [`Channels::bits`]; unknown bits are dropped.
    #[must_use]
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits & 7)
    }
}

/// An e-mail address, checked when it is set: `local@domain` as RFC 5321
/// accepts it for delivery (lettre's parser), at most 254 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

/// Why a string is not an [`EmailAddress`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotAnAddress(pub &'static str);

/// The longest address SMTP carries (RFC 5321's path limit less the brackets).
pub const MAX_EMAIL_BYTES: usize = 254;

impl EmailAddress {
    /// # Errors
    ///
    /// When `s` is not one address (no display name, no brackets).
    pub fn parse(s: &str) -> Result<Self, NotAnAddress> {
        if s.len() > MAX_EMAIL_BYTES {
            return Err(NotAnAddress("is longer than 254 bytes"));
        }
        if s.trim() != s || s.chars().any(char::is_control) {
            return Err(NotAnAddress("has spaces or control characters around or in it"));
        }
        s.parse::<lettre::Address>()
            .map_err(|_| NotAnAddress("is not an e-mail address (expected name@example.com)"))?;
        Ok(Self(s.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_in_app_and_sets_keep_their_channels() {
        assert_eq!(Channels::NONE.or_in_app(), Channels::IN_APP);
        let set = Channels::of([Channel::Push, Channel::Email]);
        assert_eq!(set.or_in_app(), set);
        assert_eq!(set.iter().collect::<Vec<_>>(), [Channel::Email, Channel::Push]);
        assert!(!set.contains(Channel::InApp));
        assert_eq!(set.without(Channel::Push), Channels::of([Channel::Email]));
        assert_eq!(Channels::from_bits(set.bits() | 0x80), set);
    }

    #[test]
    fn addresses_are_checked() {
        for good in ["carol@example.com", "a.b+tag@sub.example.org", "x@localhost"] {
            assert_eq!(EmailAddress::parse(good).unwrap().as_str(), good);
        }
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "carol",
            "@example.com",
            "carol@",
            "Carol <carol@example.com>",
            " carol@example.com",
            "a@b\r\nBcc: x@y",
            long.as_str(),
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }
}
