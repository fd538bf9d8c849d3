//! A notification's life: held (or an open digest) until it is due, then
//! delivered under a public number, revised or retracted when withdrawals
//! take its invitations out; and the updates its owner's streams receive.

use super::{Channels, Detail, Item, Timestamp, Topic};

/// One user's notification about one or more invitations. Its title and
/// body are rendered from the items whenever it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    number: u64,
    topic: Topic,
    items: Vec<Item>,
    state: State,
    cursor: u64,
    /// Where it went, once delivered.
    channels: Channels,
}

/// Where a notification is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Held for the undo window (or until due), or an undelivered digest
    /// that more items may join.
    Pending { due: Timestamp, digest: bool },
    /// In its owner's inbox.
    Delivered { at: Timestamp, read: bool },
    /// Delivered, then emptied by withdrawals: gone from its owner's inbox.
    Retracted,
}

/// What taking an invitation out of a notification did to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Pending, and still about other invitations.
    StillPending,
    /// Pending, and about nothing now: it is never sent and leaves no trace.
    Dropped,
    /// Delivered, and still about other invitations: its owner sees it
    /// revised.
    Revised,
    /// Delivered, and about nothing now: retracted.
    Retracted,
}

impl Notification {
    /// A new pending notification, about nothing yet.
    #[must_use]
    pub fn pending(number: u64, topic: Topic, due: Timestamp, digest: bool) -> Self {
        Self {
            number,
            topic,
            items: Vec::new(),
            state: State::Pending { due, digest },
            cursor: 0,
            channels: Channels::NONE,
        }
    }

    /// A notification as it was stored.
    #[must_use]
    pub fn from_parts(
        number: u64,
        topic: Topic,
        items: Vec<Item>,
        state: State,
        cursor: u64,
        channels: Channels,
    ) -> Self {
        Self {
            number,
            topic,
            items,
            state,
            cursor,
            channels,
        }
    }

    /// The channels it went out on (none while pending).
    #[must_use]
    pub fn channels(&self) -> Channels {
        self.channels
    }

    /// An internal number while pending; the public one once delivered, so
    /// a notification that never goes out leaves no gap in what its owner
    /// sees.
    #[must_use]
    pub fn number(&self) -> u64 {
        self.number
    }

    #[must_use]
    pub fn topic(&self) -> Topic {
        self.topic
    }

    #[must_use]
    pub fn state(&self) -> State {
        self.state
    }

    /// The cursor of the latest update about it (0 before its delivery).
    #[must_use]
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Records that the update at `cursor` is about it.
    pub fn set_cursor(&mut self, cursor: u64) {
        self.cursor = cursor;
    }

    #[must_use]
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn invitation_ids(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|i| i.invitation_id.as_str())
    }

    /// When a pending notification is due.
    #[must_use]
    pub fn due(&self) -> Option<Timestamp> {
        match self.state {
            State::Pending { due, .. } => Some(due),
            State::Delivered { .. } | State::Retracted => None,
        }
    }

    /// Whether it is pending and its time has come at `now`.
    #[must_use]
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.due().is_some_and(|due| due <= now)
    }

    #[must_use]
    pub fn is_delivered(&self) -> bool {
        matches!(self.state, State::Delivered { .. })
    }

    /// When it was delivered, unless it is pending or retracted.
    #[must_use]
    pub fn delivered_at(&self) -> Option<Timestamp> {
        match self.state {
            State::Delivered { at, .. } => Some(at),
            State::Pending { .. } | State::Retracted => None,
        }
    }

    #[must_use]
    pub fn is_read(&self) -> bool {
        matches!(self.state, State::Delivered { read: true, .. })
    }

    /// Adds `item`, once per invitation.
    pub fn push(&mut self, item: Item) {
        if !self.invitation_ids().any(|id| id == item.invitation_id) {
            self.items.push(item);
        }
    }

    /// Takes the invitation out: a pending notification left empty is
    /// dropped, a delivered one retracted. `None` for a retracted one,
    /// which nothing changes.
    pub fn remove(&mut self, invitation_id: &str) -> Option<Removal> {
        self.items.retain(|i| i.invitation_id != invitation_id);
        let empty = self.items.is_empty();
        Some(match self.state {
            State::Pending { .. } if empty => Removal::Dropped,
            State::Pending { .. } => Removal::StillPending,
            State::Delivered { .. } if empty => {
                self.state = State::Retracted;
                Removal::Retracted
            }
            State::Delivered { .. } => Removal::Revised,
            State::Retracted => return None,
        })
    }

    /// Delivers it at `at` under the public `number`, with `detail`, on
    /// `channels`: MINIMAL strips every identity and note it holds.
    pub fn deliver(&mut self, number: u64, at: Timestamp, detail: Detail, channels: Channels) {
        if detail == Detail::Minimal {
            self.strip_to_minimal();
        }
        self.number = number;
        self.state = State::Delivered { at, read: false };
        self.channels = channels;
    }

    /// Drops identities and notes from every item.
    pub fn strip_to_minimal(&mut self) {
        for item in &mut self.items {
            *item = Item::new(&item.invitation_id, Detail::Minimal, "", "", "");
        }
    }

    /// Marks a delivered notification read.
    pub fn mark_read(&mut self) {
        if let State::Delivered { read, .. } = &mut self.state {
            *read = true;
        }
    }
}

/// One entry of a user's update log: what their live streams receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub cursor: u64,
    pub kind: UpdateKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateKind {
    /// A notification delivered, as it was then.
    Delivered(Notification),
    /// A delivered notification with new content, same number.
    Revised(Notification),
    /// Notifications gone from the inbox, by public number.
    Retracted(Vec<u64>),
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUE: Timestamp = Timestamp::from_millis(1_000);
    const NOW: Timestamp = Timestamp::from_millis(2_000);

    fn full(id: &str) -> Item {
        Item::new(id, Detail::Full, "alice", "Alice", "Hello")
    }

    fn pending_with(ids: &[&str]) -> Notification {
        let mut n = Notification::pending(1 << 32, Topic::InvitationReceived, DUE, true);
        for id in ids {
            n.push(full(id));
        }
        n
    }

    #[test]
    fn an_item_is_pushed_once_per_invitation() {
        let mut n = pending_with(&["inv-1", "inv-2"]);
        n.push(Item::new("inv-1", Detail::Minimal, "", "", ""));
        assert_eq!(n.invitation_ids().collect::<Vec<_>>(), ["inv-1", "inv-2"]);
        assert_eq!(n.items()[0], full("inv-1"), "the first item stays");
    }

    #[test]
    fn a_pending_notification_left_empty_is_dropped() {
        let mut n = pending_with(&["inv-1", "inv-2"]);
        assert_eq!(n.remove("inv-1"), Some(Removal::StillPending));
        assert_eq!(n.remove("inv-2"), Some(Removal::Dropped));
        assert!(n.items().is_empty());
        assert_eq!(n.due(), Some(DUE), "still pending: storage forgets it");
    }

    #[test]
    fn a_delivered_notification_is_revised_then_retracted_when_empty() {
        let mut n = pending_with(&["inv-1", "inv-2"]);
        n.deliver(7, NOW, Detail::Full, Channels::IN_APP);
        assert_eq!(n.remove("inv-1"), Some(Removal::Revised));
        assert!(n.is_delivered());
        assert_eq!(n.remove("inv-2"), Some(Removal::Retracted));
        assert_eq!(n.state(), State::Retracted);
        assert_eq!(n.remove("inv-2"), None, "nothing changes a retracted one");
        assert_eq!(n.state(), State::Retracted);
    }

    #[test]
    fn delivery_gives_the_public_number_and_minimal_strips_every_identity() {
        let mut n = pending_with(&["inv-1", "inv-2"]);
        assert!(n.is_due(DUE) && n.is_due(NOW));
        assert!(!n.is_due(Timestamp::from_millis(999)));
        n.deliver(7, NOW, Detail::Minimal, Channels::IN_APP);
        assert_eq!((n.number(), n.delivered_at(), n.is_read()), (7, Some(NOW), false));
        assert!(!n.is_due(NOW), "a delivered notification is never due again");
        for item in n.items() {
            assert_eq!(item.detail, Detail::Minimal);
            assert_eq!((item.actor_id(), item.actor_name(), item.note()), ("", "", ""));
        }
        assert_eq!(n.invitation_ids().collect::<Vec<_>>(), ["inv-1", "inv-2"]);
        n.mark_read();
        assert!(n.is_read());
    }

    #[test]
    fn full_delivery_keeps_the_items_as_they_are() {
        let mut n = pending_with(&["inv-1"]);
        n.deliver(1, NOW, Detail::Full, Channels::IN_APP);
        assert_eq!(n.items(), [full("inv-1")]);
    }

    #[test]
    fn only_a_delivered_notification_is_marked_read() {
        let mut n = pending_with(&["inv-1"]);
        n.mark_read();
        assert!(!n.is_read());
        assert_eq!(n.delivered_at(), None);
    }
}
