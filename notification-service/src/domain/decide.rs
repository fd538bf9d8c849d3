//! The decision core: `(event, preferences, now) -> actions`, and what a
//! pending notification's owner still wants when it falls due.

use std::{cell::Cell, time::Duration};

use super::{Channels, Delivery, Detail, EmailAddress, Event, EventKind, Item, Preferences, Timestamp, Topic};

/// Server-wide settings the decisions depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long an IMMEDIATE new-invitation notification is held, so that a
    /// withdrawal right after a mistaken send leaves no trace.
    pub undo_window: Duration,
    /// The digest interval for users who chose none.
    pub default_digest_interval: Duration,
    /// The channels this server delivers on: IN_APP always, EMAIL with a
    /// mail server, PUSH with a webhook.
    pub channels: Channels,
    /// IMMEDIATE notifications a user gets in a rolling hour; past it, the
    /// rest go to their next digest. 0: no limit.
    pub max_immediate_per_hour: u32,
}

/// How many IMMEDIATE notifications the event's recipient and sender have
/// had in the last hour (see [`Settings::max_immediate_per_hour`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recent {
    pub recipient: u32,
    pub sender: u32,
}

/// What to do about one event, for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Deliver a notification about `item` alone, at `due` (now, or the end
    /// of the undo window).
    Hold {
        user: String,
        topic: Topic,
        item: Item,
        due: Timestamp,
    },
    /// Add `item` to the user's open digest for `topic`; open one due at
    /// `due` (their next digest time) when none is open.
    Digest {
        user: String,
        topic: Topic,
        item: Item,
        due: Timestamp,
    },
    /// Take the invitation out of the user's notifications about it being
    /// there to answer (INVITATION_RECEIVED and INVITATION_REMINDER): out of
    /// held ones and undelivered digests (a digest left empty is never
    /// sent); and, when `retract_delivered`, retract a delivered
    /// notification about it alone or revise a delivered digest that
    /// mentioned others too.
    Remove {
        user: String,
        invitation_id: String,
        retract_delivered: bool,
    },
}

/// Decides what `event` means for the users it concerns. `recipient` and
/// `sender` are the preferences of the invitation's recipient and sender;
/// neither is near the hourly limit of IMMEDIATE notifications.
#[must_use]
pub fn decide(
    event: &Event,
    recipient: &Preferences,
    sender: &Preferences,
    now: Timestamp,
    settings: &Settings,
) -> Vec<Action> {
    decide_with(event, recipient, sender, Recent::default(), now, settings)
}

/// [`decide`], for a recipient and a sender who have had `recent`
/// IMMEDIATE notifications in the last hour: past the limit, what would be
/// IMMEDIATE joins their next digest instead.
#[must_use]
pub fn decide_with(
    event: &Event,
    recipient: &Preferences,
    sender: &Preferences,
    recent: Recent,
    now: Timestamp,
    settings: &Settings,
) -> Vec<Action> {
    let to_recipient = Audience {
        user: &event.recipient_id,
        prefs: recipient,
        settings,
        now,
        immediate: Cell::new(recent.recipient),
    };
    let remove = |retract_delivered| Action::Remove {
        user: event.recipient_id.clone(),
        invitation_id: event.invitation_id.clone(),
        retract_delivered,
    };

    match &event.kind {
        // Only a new invitation waits out the undo window: everything else
        // is final when it happens.
        EventKind::Sent => to_recipient
            .notify(
                Topic::InvitationReceived,
                now.plus(settings.undo_window),
                from_sender(event, &event.message),
            )
            .into_iter()
            .collect(),
        EventKind::Withdrawn { note } => {
            // First, whatever the preferences: a withdrawal leaves no trace
            // of the invitation itself.
            let mut actions = vec![remove(true)];
            // The note has a topic of its own, so the notice never carries it.
            actions.extend(to_recipient.notify(Topic::InvitationWithdrawn, now, from_sender(event, "")));
            let note = note.trim();
            if !note.is_empty() {
                actions.extend(to_recipient.notify(Topic::WithdrawalNote, now, from_sender(event, note)));
            }
            actions
        }
        EventKind::Accepted => {
            // The recipient acted on it, so a pending notification is moot;
            // one already delivered stays true and stays.
            let mut actions = vec![remove(false)];
            let to_sender = Audience {
                user: &event.sender_id,
                prefs: sender,
                settings,
                now,
                immediate: Cell::new(recent.sender),
            };
            // The event carries no display name for the recipient.
            let by_recipient = |detail| Item::new(&event.invitation_id, detail, &event.recipient_id, "", "");
            actions.extend(to_sender.notify(Topic::InvitationAccepted, now, by_recipient));
            actions
        }
        // Still pending: the recipient hears of it again, under a topic of
        // its own. Not held: a reminder is nobody's mistake to undo.
        EventKind::Reminded { .. } => to_recipient
            .notify(Topic::InvitationReminder, now, from_sender(event, &event.message))
            .into_iter()
            .collect(),
        // Neither is reported to the sender, and the recipient needs no
        // notice of what they did or let lapse.
        EventKind::Ignored | EventKind::Expired => vec![remove(true)],
    }
}

/// What becomes of a pending notification when its time comes, under its
/// owner's preferences then: they may have changed since it was held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtDelivery {
    /// The topic was turned off (or notifications paused) since: the
    /// notification is dropped, and its invitations' delivery forgotten.
    Drop,
    /// Delivered with `detail`: MINIMAL chosen since strips identities and
    /// notes, while FULL chosen since cannot bring back what was never kept.
    /// On `channels` (never empty), e-mailed to `email` when they include
    /// EMAIL.
    Deliver {
        detail: Detail,
        channels: Channels,
        email: Option<EmailAddress>,
    },
}

/// Decides the delivery of a pending notification about `topic`, on the
/// channels the server has.
#[must_use]
pub fn at_delivery(topic: Topic, preferences: &Preferences, available: Channels) -> AtDelivery {
    match preferences.active(topic) {
        Some(preference) => {
            let channels = preferences.channels(topic, available);
            AtDelivery::Deliver {
                detail: preference.detail,
                channels,
                email: channels
                    .contains(super::Channel::Email)
                    .then(|| preferences.email_address.clone())
                    .flatten(),
            }
        }
        None => AtDelivery::Drop,
    }
}

/// The item about `event`'s invitation whose actor is its sender: the actor
/// of everything the recipient hears about.
fn from_sender<'a>(event: &'a Event, note: &'a str) -> impl FnOnce(Detail) -> Item + 'a {
    move |detail| Item::new(&event.invitation_id, detail, &event.sender_id, &event.sender_name, note)
}

/// A user about to be told something, with what decides how.
struct Audience<'a> {
    user: &'a str,
    prefs: &'a Preferences,
    settings: &'a Settings,
    now: Timestamp,
    /// IMMEDIATE notifications in the last hour, these ones included.
    immediate: Cell<u32>,
}

impl Audience<'_> {
    /// The notification about `topic` the user's preferences call for, if
    /// any: held until `due`, or added to a digest. The item is built for the
    /// topic's detail, so MINIMAL drops the identity before it exists.
    fn notify(&self, topic: Topic, due: Timestamp, item: impl FnOnce(Detail) -> Item) -> Option<Action> {
        let preference = self.prefs.active(topic)?;
        let user = self.user.to_owned();
        let item = item(preference.detail);
        let max = self.settings.max_immediate_per_hour;
        let throttled = max > 0 && self.immediate.get() >= max;
        Some(match preference.delivery {
            Delivery::Immediate if !throttled => {
                self.immediate.set(self.immediate.get() + 1);
                Action::Hold { user, topic, item, due }
            }
            // Past the hourly limit: nothing dropped, it waits for a digest.
            Delivery::Immediate | Delivery::Digest => Action::Digest {
                user,
                topic,
                item,
                due: self.prefs.digest_due(self.now, self.settings.default_digest_interval),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{Channel, LocalTime, Notification, TopicPreference, Zone, email, render};

    const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);
    const UNDO: Duration = Duration::from_secs(10);
    const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);
    const SETTINGS: Settings = Settings {
        undo_window: UNDO,
        default_digest_interval: DEFAULT_INTERVAL,
        channels: Channels::IN_APP,
        max_immediate_per_hour: 20,
    };
    const DELIVERIES: [Delivery; 2] = [Delivery::Immediate, Delivery::Digest];
    const DETAILS: [Detail; 2] = [Detail::Full, Detail::Minimal];
    const TOPICS: [Topic; 5] = [
        Topic::InvitationReceived,
        Topic::InvitationAccepted,
        Topic::InvitationWithdrawn,
        Topic::WithdrawalNote,
        Topic::InvitationReminder,
    ];

    fn event(kind: EventKind) -> Event {
        Event {
            sequence: 7,
            invitation_id: "inv-1".to_owned(),
            sender_id: "alice".to_owned(),
            sender_name: "Alice".to_owned(),
            recipient_id: "bob".to_owned(),
            message: "Hi Bob".to_owned(),
            kind,
            occurred_at: NOW,
        }
    }

    fn withdrawn(note: &str) -> EventKind {
        EventKind::Withdrawn { note: note.to_owned() }
    }

    fn decide_default(kind: EventKind) -> Vec<Action> {
        decide(
            &event(kind),
            &Preferences::default(),
            &Preferences::default(),
            NOW,
            &SETTINGS,
        )
    }

    /// Every topic set to the same preference.
    fn uniform(enabled: bool, delivery: Delivery, detail: Detail, paused: bool) -> Preferences {
        let pref = TopicPreference {
            enabled,
            delivery,
            detail,
            channels: Channels::NONE,
        };
        Preferences {
            invitation_received: pref,
            invitation_accepted: pref,
            invitation_withdrawn: pref,
            withdrawal_note: pref,
            invitation_reminder: pref,
            digest_interval: None,
            paused,
            email_address: None,
            time_zone: Zone::utc(),
            quiet_hours: None,
            digest_time: None,
        }
    }

    fn with_topic(mut prefs: Preferences, topic: Topic, pref: TopicPreference) -> Preferences {
        let slot = match topic {
            Topic::InvitationReceived => &mut prefs.invitation_received,
            Topic::InvitationAccepted => &mut prefs.invitation_accepted,
            Topic::InvitationWithdrawn => &mut prefs.invitation_withdrawn,
            Topic::WithdrawalNote => &mut prefs.withdrawal_note,
            Topic::InvitationReminder => &mut prefs.invitation_reminder,
        };
        *slot = pref;
        prefs
    }

    fn remove(retract_delivered: bool) -> Action {
        Action::Remove {
            user: "bob".to_owned(),
            invitation_id: "inv-1".to_owned(),
            retract_delivered,
        }
    }

    fn hold(user: &str, topic: Topic, item: Item, due: Timestamp) -> Action {
        Action::Hold {
            user: user.to_owned(),
            topic,
            item,
            due,
        }
    }

    fn digest(user: &str, topic: Topic, item: Item, interval: Duration) -> Action {
        Action::Digest {
            user: user.to_owned(),
            topic,
            item,
            due: NOW.plus(interval),
        }
    }

    fn notification(action: &Action) -> Option<(&str, Topic, &Item)> {
        match action {
            Action::Hold { user, topic, item, .. } | Action::Digest { user, topic, item, .. } => {
                Some((user, *topic, item))
            }
            Action::Remove { .. } => None,
        }
    }

    #[test]
    fn sent_immediate_is_held_for_the_undo_window() {
        let recipient = uniform(true, Delivery::Immediate, Detail::Full, false);
        let actions = decide(
            &event(EventKind::Sent),
            &recipient,
            &Preferences::default(),
            NOW,
            &SETTINGS,
        );
        let item = Item::new("inv-1", Detail::Full, "alice", "Alice", "Hi Bob");
        assert_eq!(actions, [hold("bob", Topic::InvitationReceived, item, NOW.plus(UNDO))]);
    }

    #[test]
    fn sent_with_no_undo_window_is_due_now() {
        let recipient = uniform(true, Delivery::Immediate, Detail::Full, false);
        let settings = Settings {
            undo_window: Duration::ZERO,
            ..SETTINGS
        };
        let actions = decide(
            &event(EventKind::Sent),
            &recipient,
            &Preferences::default(),
            NOW,
            &settings,
        );
        assert!(matches!(&actions[..], [Action::Hold { due, .. }] if *due == NOW));
    }

    #[test]
    fn sent_by_default_joins_a_digest_at_the_default_interval() {
        let item = Item::new("inv-1", Detail::Full, "alice", "Alice", "Hi Bob");
        let expected = digest("bob", Topic::InvitationReceived, item, DEFAULT_INTERVAL);
        assert_eq!(decide_default(EventKind::Sent), [expected]);
    }

    #[test]
    fn a_reminder_by_default_joins_its_own_digest_and_is_never_held() {
        let item = Item::new("inv-1", Detail::Full, "alice", "Alice", "Hi Bob");
        let expected = digest("bob", Topic::InvitationReminder, item.clone(), DEFAULT_INTERVAL);
        assert_eq!(decide_default(EventKind::Reminded { ordinal: 2 }), [expected]);
        // Told at once, it is due now: there is no mistake to undo.
        let recipient = uniform(true, Delivery::Immediate, Detail::Full, false);
        let actions = decide(
            &event(EventKind::Reminded { ordinal: 1 }),
            &recipient,
            &Preferences::default(),
            NOW,
            &SETTINGS,
        );
        assert_eq!(actions, [hold("bob", Topic::InvitationReminder, item, NOW)]);
        let off = with_topic(
            Preferences::default(),
            Topic::InvitationReminder,
            TopicPreference {
                enabled: false,
                ..Preferences::default().invitation_reminder
            },
        );
        let actions = decide(
            &event(EventKind::Reminded { ordinal: 1 }),
            &off,
            &Preferences::default(),
            NOW,
            &SETTINGS,
        );
        assert_eq!(actions, []);
    }

    #[test]
    fn digest_uses_the_interval_the_user_chose() {
        let chosen = Duration::from_secs(3600);
        let recipient = Preferences {
            digest_interval: Some(chosen),
            ..uniform(true, Delivery::Digest, Detail::Full, false)
        };
        for kind in [EventKind::Sent, withdrawn("sorry")] {
            let actions = decide(&event(kind), &recipient, &Preferences::default(), NOW, &SETTINGS);
            let dues: Vec<Timestamp> = actions
                .iter()
                .filter_map(|action| match action {
                    Action::Digest { due, .. } => Some(*due),
                    Action::Hold { .. } | Action::Remove { .. } => None,
                })
                .collect();
            assert!(!dues.is_empty());
            assert!(dues.iter().all(|due| *due == NOW.plus(chosen)), "{actions:?}");
        }
    }

    #[test]
    fn past_the_hourly_limit_immediate_notifications_join_the_next_digest() {
        let recipient = uniform(true, Delivery::Immediate, Detail::Full, false);
        let kinds = |actions: &[Action]| -> Vec<&'static str> {
            actions
                .iter()
                .map(|a| match a {
                    Action::Hold { .. } => "hold",
                    Action::Digest { .. } => "digest",
                    Action::Remove { .. } => "remove",
                })
                .collect()
        };
        let sent = |recent| {
            decide_with(
                &event(EventKind::Sent),
                &recipient,
                &Preferences::default(),
                Recent {
                    recipient: recent,
                    sender: 0,
                },
                NOW,
                &SETTINGS,
            )
        };
        assert_eq!(kinds(&sent(19)), ["hold"]);
        assert_eq!(kinds(&sent(20)), ["digest"], "the 21st in an hour");
        // A withdrawal's notice and its note are two: the 20th and the 21st.
        let withdrawn = decide_with(
            &event(withdrawn("sorry")),
            &recipient,
            &Preferences::default(),
            Recent {
                recipient: 19,
                sender: 0,
            },
            NOW,
            &SETTINGS,
        );
        assert_eq!(kinds(&withdrawn), ["remove", "hold", "digest"]);
        // Without a limit, never.
        let unlimited = Settings {
            max_immediate_per_hour: 0,
            ..SETTINGS
        };
        let sent = decide_with(
            &event(EventKind::Sent),
            &recipient,
            &Preferences::default(),
            Recent {
                recipient: 1000,
                sender: 0,
            },
            NOW,
            &unlimited,
        );
        assert_eq!(kinds(&sent), ["hold"]);
    }

    #[test]
    fn a_daily_digest_time_wins_over_the_interval_on_the_users_clock() {
        // NOW is 2023-11-14T22:13:20Z; in Berlin (+01:00) that is 23:13.
        let recipient = Preferences {
            digest_interval: Some(Duration::from_secs(3600)),
            time_zone: Zone::parse("Europe/Berlin").unwrap(),
            digest_time: Some(LocalTime::parse("09:00").unwrap()),
            ..uniform(true, Delivery::Digest, Detail::Full, false)
        };
        let actions = decide(
            &event(EventKind::Sent),
            &recipient,
            &Preferences::default(),
            NOW,
            &SETTINGS,
        );
        let next_morning = Timestamp::from_millis(1_700_035_200_000); // 2023-11-15T08:00:00Z
        assert!(
            matches!(&actions[..], [Action::Digest { due, .. }] if *due == next_morning),
            "{actions:?}"
        );
    }

    #[test]
    fn sent_to_a_disabled_or_paused_topic_does_nothing() {
        for recipient in [
            uniform(false, Delivery::Immediate, Detail::Full, false),
            uniform(true, Delivery::Immediate, Detail::Full, true),
        ] {
            assert_eq!(
                decide(
                    &event(EventKind::Sent),
                    &recipient,
                    &Preferences::default(),
                    NOW,
                    &SETTINGS
                ),
                []
            );
        }
    }

    #[test]
    fn sent_minimal_drops_sender_and_message() {
        let recipient = uniform(true, Delivery::Immediate, Detail::Minimal, false);
        let actions = decide(
            &event(EventKind::Sent),
            &recipient,
            &Preferences::default(),
            NOW,
            &SETTINGS,
        );
        let item = Item::new("inv-1", Detail::Minimal, "", "", "");
        assert_eq!(actions, [hold("bob", Topic::InvitationReceived, item, NOW.plus(UNDO))]);
    }

    #[test]
    fn withdrawn_by_default_is_silent_unless_there_is_a_note() {
        assert_eq!(decide_default(withdrawn("")), [remove(true)]);
        assert_eq!(decide_default(withdrawn(" \n\t ")), [remove(true)]);
        let note = Item::new("inv-1", Detail::Full, "alice", "Alice", "Sorry, wrong Bob");
        assert_eq!(
            decide_default(withdrawn("  Sorry, wrong Bob ")),
            [remove(true), hold("bob", Topic::WithdrawalNote, note, NOW)]
        );
    }

    #[test]
    fn withdrawn_notice_comes_before_the_note_and_without_it() {
        let recipient = uniform(true, Delivery::Immediate, Detail::Full, false);
        let actions = decide(
            &event(withdrawn("sorry")),
            &recipient,
            &Preferences::default(),
            NOW,
            &SETTINGS,
        );
        let notice = Item::new("inv-1", Detail::Full, "alice", "Alice", "");
        let note = Item::new("inv-1", Detail::Full, "alice", "Alice", "sorry");
        assert_eq!(
            actions,
            [
                remove(true),
                hold("bob", Topic::InvitationWithdrawn, notice, NOW),
                hold("bob", Topic::WithdrawalNote, note, NOW),
            ]
        );
    }

    #[test]
    fn accepted_keeps_delivered_notifications_and_tells_the_sender() {
        let actor = Item::new("inv-1", Detail::Full, "bob", "", "");
        assert_eq!(
            decide_default(EventKind::Accepted),
            [remove(false), hold("alice", Topic::InvitationAccepted, actor, NOW)]
        );
    }

    #[test]
    fn accepted_follows_the_senders_preferences_not_the_recipients() {
        let silent = uniform(false, Delivery::Immediate, Detail::Full, true);
        let sender = uniform(true, Delivery::Digest, Detail::Minimal, false);
        let actions = decide(&event(EventKind::Accepted), &silent, &sender, NOW, &SETTINGS);
        let actor = Item::new("inv-1", Detail::Minimal, "", "", "");
        assert_eq!(
            actions,
            [
                remove(false),
                digest("alice", Topic::InvitationAccepted, actor, DEFAULT_INTERVAL)
            ]
        );
        let actions = decide(
            &event(EventKind::Accepted),
            &Preferences::default(),
            &silent,
            NOW,
            &SETTINGS,
        );
        assert_eq!(actions, [remove(false)]);
    }

    /// Each event's topic under every combination of its preference, with
    /// the other topics all on and all off, against what the spec says.
    #[test]
    fn every_preference_combination_of_each_topic() {
        let cases = [
            (
                EventKind::Sent,
                Topic::InvitationReceived,
                "bob",
                NOW.plus(UNDO),
                ("alice", "Alice", "Hi Bob"),
            ),
            (
                withdrawn("sorry"),
                Topic::InvitationWithdrawn,
                "bob",
                NOW,
                ("alice", "Alice", ""),
            ),
            (
                withdrawn("sorry"),
                Topic::WithdrawalNote,
                "bob",
                NOW,
                ("alice", "Alice", "sorry"),
            ),
            (
                EventKind::Accepted,
                Topic::InvitationAccepted,
                "alice",
                NOW,
                ("bob", "", ""),
            ),
        ];
        for (kind, topic, user, due, (actor_id, actor_name, note)) in cases {
            for (pref, paused, others_on) in combinations() {
                let prefs = with_topic(
                    uniform(others_on, Delivery::Immediate, Detail::Full, paused),
                    topic,
                    pref,
                );
                let actions = decide(&event(kind.clone()), &prefs, &prefs, NOW, &SETTINGS);
                let found: Vec<&Action> = actions
                    .iter()
                    .filter(|action| notification(action).is_some_and(|(_, t, _)| t == topic))
                    .collect();
                let item = Item::new("inv-1", pref.detail, actor_id, actor_name, note);
                let expected = match (pref.enabled && !paused, pref.delivery) {
                    (false, _) => None,
                    (true, Delivery::Immediate) => Some(hold(user, topic, item, due)),
                    (true, Delivery::Digest) => Some(digest(user, topic, item, DEFAULT_INTERVAL)),
                };
                let context = format!("{topic:?} {pref:?} paused={paused} others_on={others_on}");
                assert_eq!(found, Vec::from_iter(&expected), "{context}");
            }
        }
    }

    /// Every enabled × delivery × detail of one topic, × paused, × every
    /// other topic on or off.
    fn combinations() -> impl Iterator<Item = (TopicPreference, bool, bool)> {
        let flags = [false, true];
        flags.into_iter().flat_map(move |enabled| {
            DELIVERIES.into_iter().flat_map(move |delivery| {
                DETAILS.into_iter().flat_map(move |detail| {
                    let pref = TopicPreference {
                        enabled,
                        delivery,
                        detail,
                        channels: Channels::NONE,
                    };
                    flags
                        .into_iter()
                        .flat_map(move |paused| flags.map(|others_on| (pref, paused, others_on)))
                })
            })
        })
    }

    fn arb_topic_preference() -> impl Strategy<Value = TopicPreference> {
        (
            any::<bool>(),
            prop::sample::select(&DELIVERIES[..]),
            prop::sample::select(&DETAILS[..]),
        )
            .prop_map(|(enabled, delivery, detail)| TopicPreference {
                enabled,
                delivery,
                detail,
                channels: Channels::NONE,
            })
    }

    fn arb_preferences() -> impl Strategy<Value = Preferences> {
        let interval = prop::option::of((60u64..=7 * 24 * 3600).prop_map(Duration::from_secs));
        (prop::array::uniform5(arb_topic_preference()), interval, any::<bool>()).prop_map(
            |([received, accepted, withdrawn, note, reminder], digest_interval, paused)| Preferences {
                invitation_received: received,
                invitation_accepted: accepted,
                invitation_withdrawn: withdrawn,
                withdrawal_note: note,
                invitation_reminder: reminder,
                digest_interval,
                paused,
                email_address: None,
                time_zone: Zone::utc(),
                quiet_hours: None,
                digest_time: None,
            },
        )
    }

    fn arb_note() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), Just("  ".to_owned()), "SECRET-note-[a-z ]{1,12}"]
    }

    fn arb_kind() -> impl Strategy<Value = EventKind> {
        prop_oneof![
            Just(EventKind::Sent),
            arb_note().prop_map(|note| EventKind::Withdrawn { note }),
            Just(EventKind::Accepted),
            Just(EventKind::Ignored),
            Just(EventKind::Expired),
            (1u32..=3).prop_map(|ordinal| EventKind::Reminded { ordinal }),
        ]
    }

    /// An event whose every string, the invitation id included, is marked
    /// SECRET so that a leak into an item or a render shows.
    fn arb_secret_event() -> impl Strategy<Value = Event> {
        ("[a-z0-9]{1,8}", arb_kind(), any::<u64>()).prop_map(|(tag, kind, sequence)| Event {
            sequence,
            invitation_id: format!("SECRET-inv-{tag}"),
            sender_id: format!("SECRET-sender-{tag}"),
            sender_name: format!("SECRET Name {tag}"),
            recipient_id: format!("SECRET-recipient-{tag}"),
            message: format!("SECRET-message-{tag}"),
            kind,
            occurred_at: NOW,
        })
    }

    fn arb_settings() -> impl Strategy<Value = Settings> {
        (0u64..120, 60u64..86_400).prop_map(|(undo, interval)| Settings {
            undo_window: Duration::from_secs(undo),
            default_digest_interval: Duration::from_secs(interval),
            channels: Channels::IN_APP,
            max_immediate_per_hour: 0,
        })
    }

    #[test]
    fn at_delivery_drops_what_was_turned_off_or_paused_since() {
        for topic in TOPICS {
            for (pref, paused, others_on) in combinations() {
                let prefs = with_topic(
                    uniform(others_on, Delivery::Immediate, Detail::Full, paused),
                    topic,
                    pref,
                );
                let expected = if pref.enabled && !paused {
                    in_app(pref.detail)
                } else {
                    AtDelivery::Drop
                };
                let context = format!("{topic:?} {pref:?} paused={paused} others_on={others_on}");
                assert_eq!(at_delivery(topic, &prefs, ALL_CHANNELS), expected, "{context}");
            }
        }
    }

    #[test]
    fn at_delivery_follows_a_change_to_minimal_made_while_held() {
        let held_under = uniform(true, Delivery::Digest, Detail::Full, false);
        assert_eq!(
            at_delivery(Topic::InvitationReceived, &held_under, ALL_CHANNELS),
            in_app(Detail::Full)
        );
        let now = with_topic(
            held_under,
            Topic::InvitationReceived,
            TopicPreference {
                enabled: true,
                delivery: Delivery::Digest,
                detail: Detail::Minimal,
                channels: Channels::NONE,
            },
        );
        assert_eq!(
            at_delivery(Topic::InvitationReceived, &now, ALL_CHANNELS),
            in_app(Detail::Minimal)
        );
        assert_eq!(
            at_delivery(Topic::InvitationAccepted, &now, ALL_CHANNELS),
            in_app(Detail::Full),
            "per topic"
        );
    }

    const ALL_CHANNELS: Channels = Channels::IN_APP.with(Channel::Email).with(Channel::Push);

    fn in_app(detail: Detail) -> AtDelivery {
        AtDelivery::Deliver {
            detail,
            channels: Channels::IN_APP,
            email: None,
        }
    }

    #[test]
    fn at_delivery_uses_the_chosen_channels_the_server_has() {
        let address = EmailAddress::parse("bob@example.com").unwrap();
        let mut prefs = Preferences {
            email_address: Some(address.clone()),
            ..Preferences::default()
        };
        prefs.invitation_received.channels = Channels::of([Channel::Email, Channel::Push]);
        let received = |prefs: &Preferences, available| at_delivery(Topic::InvitationReceived, prefs, available);
        assert_eq!(
            received(&prefs, ALL_CHANNELS),
            AtDelivery::Deliver {
                detail: Detail::Full,
                channels: Channels::of([Channel::Email, Channel::Push]),
                email: Some(address.clone()),
            }
        );
        // The server lost its webhook since the choice: e-mail alone.
        assert_eq!(
            received(&prefs, Channels::IN_APP.with(Channel::Email)),
            AtDelivery::Deliver {
                detail: Detail::Full,
                channels: Channels::of([Channel::Email]),
                email: Some(address),
            }
        );
        // Nothing chosen is left: the app, so that nothing is lost.
        assert_eq!(received(&prefs, Channels::IN_APP), in_app(Detail::Full));
        prefs.email_address = None;
        assert_eq!(
            received(&prefs, ALL_CHANNELS),
            AtDelivery::Deliver {
                detail: Detail::Full,
                channels: Channels::of([Channel::Push]),
                email: None,
            },
            "no address, no e-mail"
        );
        assert_eq!(
            at_delivery(Topic::InvitationAccepted, &prefs, ALL_CHANNELS),
            in_app(Detail::Full)
        );
    }

    proptest! {
        #[test]
        fn minimal_detail_never_leaks(
            event in arb_secret_event(),
            recipient in arb_preferences(),
            sender in arb_preferences(),
            settings in arb_settings(),
        ) {
            let minimal = |mut prefs: Preferences| {
                for topic in TOPICS {
                    let pref = TopicPreference { detail: Detail::Minimal, ..prefs.topic(topic) };
                    prefs = with_topic(prefs, topic, pref);
                }
                prefs
            };
            let actions = decide(&event, &minimal(recipient), &minimal(sender), NOW, &settings);
            let notifications: Vec<_> = actions.iter().filter_map(notification).collect();
            for (_, topic, item) in &notifications {
                prop_assert_eq!((item.actor_id(), item.actor_name(), item.note()), ("", "", ""));
                let rendered = render(*topic, std::slice::from_ref(*item));
                prop_assert!(!format!("{rendered:?}").contains("SECRET"), "{:?}", rendered);
            }
            let items: Vec<Item> = notifications.iter().map(|(_, _, item)| (*item).clone()).collect();
            for (_, topic, _) in &notifications {
                let rendered = render(*topic, &items);
                prop_assert!(!format!("{rendered:?}").contains("SECRET"), "{:?}", rendered);
                // The same items as a mail: subject, text and HTML.
                let mut delivered = Notification::pending(1, *topic, NOW, true);
                for item in &items {
                    delivered.push(item.clone());
                }
                // FULL at delivery strips nothing: only the items' own detail protects them.
                delivered.deliver(1, NOW, Detail::Full, Channels::IN_APP.with(Channel::Email));
                let mail = email(&delivered);
                prop_assert!(!format!("{mail:?}").contains("SECRET"), "{:?}", mail);
            }
        }

        #[test]
        fn withdrawn_always_removes_first_and_never_tells_the_sender(
            note in arb_note(),
            recipient in arb_preferences(),
            sender in arb_preferences(),
            settings in arb_settings(),
        ) {
            let actions = decide(&event(withdrawn(&note)), &recipient, &sender, NOW, &settings);
            prop_assert_eq!(actions.first(), Some(&remove(true)));
            prop_assert!(actions.iter().filter_map(notification).all(|(user, _, _)| user == "bob"));
            prop_assert!(actions.len() <= 3);
        }

        #[test]
        fn the_senders_preferences_matter_only_where_the_kind_says(
            event in arb_secret_event(),
            recipient in arb_preferences(),
            sender in arb_preferences(),
            settings in arb_settings(),
        ) {
            // Storage skips reading the sender's preferences unless asked.
            if !event.kind.may_notify_sender() {
                prop_assert_eq!(
                    decide(&event, &recipient, &sender, NOW, &settings),
                    decide(&event, &recipient, &Preferences::default(), NOW, &settings)
                );
            }
        }

        #[test]
        fn ignored_and_expired_only_remove(
            kind in prop_oneof![Just(EventKind::Ignored), Just(EventKind::Expired)],
            recipient in arb_preferences(),
            sender in arb_preferences(),
            settings in arb_settings(),
        ) {
            prop_assert_eq!(decide(&event(kind), &recipient, &sender, NOW, &settings), [remove(true)]);
        }

        #[test]
        fn nothing_is_due_before_now_and_only_sent_waits(
            event in arb_secret_event(),
            recipient in arb_preferences(),
            sender in arb_preferences(),
            settings in arb_settings(),
        ) {
            for action in decide(&event, &recipient, &sender, NOW, &settings) {
                if let Action::Hold { due, .. } = action {
                    let expected = match event.kind {
                        EventKind::Sent => NOW.plus(settings.undo_window),
                        EventKind::Withdrawn { .. }
                        | EventKind::Accepted
                        | EventKind::Ignored
                        | EventKind::Expired
                        | EventKind::Reminded { .. } => NOW,
                    };
                    prop_assert_eq!(due, expected);
                }
            }
        }
    }
}
