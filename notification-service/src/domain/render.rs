//! How a notification reads: its title, body and actor, from its topic and
//! items. Items built with MINIMAL detail carry no identity or note, so
//! nothing rendered from them can leak one.

use super::{Detail, Item, Topic};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    pub title: String,
    pub body: String,
    /// Empty when MINIMAL or for several items.
    pub actor_id: String,
    pub actor_name: String,
}

/// How many names a digest's body lists before it counts the rest.
const NAMED_IN_BODY: usize = 3;

/// Renders a notification about `items` (at least one) under `topic`.
#[must_use]
pub fn render(topic: Topic, items: &[Item]) -> Rendered {
    match items {
        // Never stored, but a caller's slip must not crash delivery.
        [] => Rendered {
            title: "You have a new notification".to_owned(),
            ..Rendered::default()
        },
        [item] => match item.detail {
            Detail::Full => Rendered {
                title: full_title(topic, display_name(item)),
                body: item.note().to_owned(),
                actor_id: item.actor_id().to_owned(),
                actor_name: item.actor_name().to_owned(),
            },
            // Built from constants alone, so it holds nothing of the item.
            Detail::Minimal => Rendered {
                title: minimal_title(topic).to_owned(),
                ..Rendered::default()
            },
        },
        several => Rendered {
            title: several_title(topic, several.len()),
            body: from_line(several),
            ..Rendered::default()
        },
    }
}

fn full_title(topic: Topic, name: &str) -> String {
    match topic {
        Topic::InvitationReceived => format!("{name} wants to connect"),
        Topic::InvitationAccepted => format!("{name} accepted your invitation"),
        Topic::InvitationWithdrawn => format!("{name} withdrew their invitation"),
        Topic::WithdrawalNote => format!("{name} withdrew their invitation and left a note"),
        Topic::InvitationReminder => format!("{name} is still waiting for your answer"),
    }
}

fn minimal_title(topic: Topic) -> &'static str {
    match topic {
        Topic::InvitationReceived => "You have a new invitation to connect",
        Topic::InvitationAccepted => "Your invitation was accepted",
        Topic::InvitationWithdrawn => "An invitation to you was withdrawn",
        Topic::WithdrawalNote => "An invitation to you was withdrawn, with a note",
        Topic::InvitationReminder => "An invitation is still waiting for your answer",
    }
}

fn several_title(topic: Topic, n: usize) -> String {
    match topic {
        Topic::InvitationReceived => format!("You have {n} new invitations to connect"),
        Topic::InvitationAccepted => format!("{n} of your invitations were accepted"),
        Topic::InvitationWithdrawn => format!("{n} invitations to you were withdrawn"),
        Topic::WithdrawalNote => format!("{n} withdrawn invitations came with a note"),
        Topic::InvitationReminder => format!("{n} invitations are still waiting for your answer"),
    }
}

/// "From A, B and C" for a digest whose items are all FULL. Empty as soon as
/// one is MINIMAL (the user can change the detail while a digest is open):
/// a list of only some of the actors would read as the whole of it.
fn from_line(items: &[Item]) -> String {
    if items.iter().any(|item| item.detail == Detail::Minimal) {
        return String::new();
    }
    let names: Vec<&str> = items.iter().map(display_name).collect();
    match names.split_last() {
        None => String::new(),
        Some((only, [])) => format!("From {only}"),
        Some((last, rest)) if names.len() <= NAMED_IN_BODY => format!("From {} and {last}", rest.join(", ")),
        Some(_) => {
            let others = names.len() - NAMED_IN_BODY;
            let noun = if others == 1 { "other" } else { "others" };
            format!("From {} and {others} {noun}", names[..NAMED_IN_BODY].join(", "))
        }
    }
}

/// The actor's display name, or their id when they have none.
fn display_name(item: &Item) -> &str {
    match item.actor_name() {
        "" => item.actor_id(),
        name => name,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const TOPICS: [Topic; 5] = [
        Topic::InvitationReceived,
        Topic::InvitationAccepted,
        Topic::InvitationWithdrawn,
        Topic::WithdrawalNote,
        Topic::InvitationReminder,
    ];
    const NAMES: [&str; 10] = ["Ann", "Ben", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ida", "Jo"];

    /// The invitation id is marked SECRET: it must never be rendered.
    fn full(name: &str, note: &str) -> Item {
        Item::new(
            &format!("SECRET-inv-{name}"),
            Detail::Full,
            &format!("id-{name}"),
            name,
            note,
        )
    }

    fn minimal() -> Item {
        Item::new("SECRET-inv", Detail::Minimal, "SECRET-id", "SECRET name", "SECRET note")
    }

    fn titled(title: &str, body: &str) -> Rendered {
        Rendered {
            title: title.to_owned(),
            body: body.to_owned(),
            ..Rendered::default()
        }
    }

    #[test]
    fn one_full_item_names_its_actor() {
        let titles = [
            "Ann wants to connect",
            "Ann accepted your invitation",
            "Ann withdrew their invitation",
            "Ann withdrew their invitation and left a note",
            "Ann is still waiting for your answer",
        ];
        for (topic, title) in TOPICS.into_iter().zip(titles) {
            let expected = Rendered {
                title: title.to_owned(),
                body: "Hello".to_owned(),
                actor_id: "id-Ann".to_owned(),
                actor_name: "Ann".to_owned(),
            };
            assert_eq!(render(topic, &[full("Ann", "Hello")]), expected);
        }
    }

    #[test]
    fn one_full_item_without_a_name_uses_the_id_and_may_have_no_body() {
        let item = Item::new("inv", Detail::Full, "bob", "", "");
        let expected = Rendered {
            title: "bob accepted your invitation".to_owned(),
            actor_id: "bob".to_owned(),
            ..Rendered::default()
        };
        assert_eq!(render(Topic::InvitationAccepted, &[item]), expected);
    }

    #[test]
    fn one_minimal_item_says_only_what_happened() {
        let titles = [
            "You have a new invitation to connect",
            "Your invitation was accepted",
            "An invitation to you was withdrawn",
            "An invitation to you was withdrawn, with a note",
            "An invitation is still waiting for your answer",
        ];
        for (topic, title) in TOPICS.into_iter().zip(titles) {
            assert_eq!(render(topic, &[minimal()]), titled(title, ""));
        }
    }

    #[test]
    fn several_items_are_counted_under_each_topic() {
        let titles = [
            "You have 2 new invitations to connect",
            "2 of your invitations were accepted",
            "2 invitations to you were withdrawn",
            "2 withdrawn invitations came with a note",
            "2 invitations are still waiting for your answer",
        ];
        for (topic, title) in TOPICS.into_iter().zip(titles) {
            let items = [full("Ann", "note"), full("Ben", "note")];
            assert_eq!(render(topic, &items), titled(title, "From Ann and Ben"));
        }
    }

    #[test]
    fn full_digests_list_three_names_then_count_the_rest() {
        let cases = [
            (2, "From Ann and Ben"),
            (3, "From Ann, Ben and Cy"),
            (4, "From Ann, Ben, Cy and 1 other"),
            (10, "From Ann, Ben, Cy and 7 others"),
        ];
        for (n, body) in cases {
            let items: Vec<Item> = NAMES[..n].iter().map(|name| full(name, "note")).collect();
            let title = format!("You have {n} new invitations to connect");
            assert_eq!(render(Topic::InvitationReceived, &items), titled(&title, body));
        }
    }

    #[test]
    fn digests_with_a_minimal_item_name_nobody() {
        for n in [2, 3, 4, 10] {
            for minimal_at in [0, n - 1] {
                let mut items: Vec<Item> = NAMES[..n].iter().map(|name| full(name, "note")).collect();
                items[minimal_at] = minimal();
                let title = format!("{n} invitations to you were withdrawn");
                assert_eq!(render(Topic::InvitationWithdrawn, &items), titled(&title, ""));
            }
        }
    }

    #[test]
    fn nameless_actors_are_listed_by_id() {
        let items = [Item::new("a", Detail::Full, "bob", "", ""), full("Ann", "")];
        assert_eq!(render(Topic::InvitationAccepted, &items).body, "From bob and Ann");
    }

    #[test]
    fn no_items_renders_a_generic_title() {
        for topic in TOPICS {
            let rendered = render(topic, &[]);
            assert!(!rendered.title.is_empty());
            assert_eq!(
                (rendered.body, rendered.actor_id, rendered.actor_name),
                Default::default()
            );
        }
    }

    fn arb_item() -> impl Strategy<Value = Item> {
        prop_oneof![
            ("[A-Za-z]{0,6}", "[a-z ]{0,12}").prop_map(|(name, note)| {
                Item::new("SECRET-inv", Detail::Full, &format!("id-{name}"), &name, &note)
            }),
            Just(minimal()),
        ]
    }

    proptest! {
        #[test]
        fn minimal_items_and_invitation_ids_never_show(
            topic in prop::sample::select(&TOPICS[..]),
            items in prop::collection::vec(arb_item(), 1..12),
        ) {
            let rendered = render(topic, &items);
            prop_assert!(!format!("{rendered:?}").contains("SECRET"), "{:?}", rendered);
            prop_assert!(!rendered.title.is_empty());
            if items.len() > 1 {
                prop_assert_eq!((rendered.actor_id.as_str(), rendered.actor_name.as_str()), ("", ""));
            }
        }
    }
}
