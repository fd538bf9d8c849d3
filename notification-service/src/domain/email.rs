//! How a notification reads as an e-mail: a subject, a text part and an HTML
//! part, from the same items as in the app. A MINIMAL item carries no
//! identity or note, so none can reach any part of the mail.

use super::{Detail, Item, Notification, Topic, render};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailContent {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Most items a digest mail lists one by one.
const LISTED: usize = 20;

/// The mail about `notification`, as it stands.
#[must_use]
pub fn email(notification: &Notification) -> EmailContent {
    let items = notification.items();
    let rendered = render(notification.topic(), items);
    let mut lines: Vec<String> = Vec::new();
    if items.len() > 1 {
        for item in items.iter().take(LISTED) {
            if let Some(line) = item_line(notification.topic(), item) {
                lines.push(line);
            }
        }
        if items.len() > LISTED {
            lines.push(format!("and {} more", items.len() - LISTED));
        }
    } else if !rendered.body.is_empty() {
        lines.push(format!("\u{201c}{}\u{201d}", rendered.body));
    }
    let closing = match notification.topic() {
        Topic::InvitationReceived | Topic::InvitationReminder => "Open the app to accept or ignore.",
        Topic::InvitationAccepted | Topic::InvitationWithdrawn | Topic::WithdrawalNote => "Open the app for more.",
    };
    let mut text = format!("{}\n\n", rendered.title);
    for line in &lines {
        text.push_str(line);
        text.push('\n');
    }
    if !lines.is_empty() {
        text.push('\n');
    }
    text.push_str(closing);
    text.push('\n');

    let mut html = format!(
        "<!DOCTYPE html>\n<html><body>\n<p><strong>{}</strong></p>\n",
        escape(&rendered.title)
    );
    if !lines.is_empty() {
        html.push_str("<ul>\n");
        for line in &lines {
            html.push_str(&format!("<li>{}</li>\n", escape(line)));
        }
        html.push_str("</ul>\n");
    }
    html.push_str(&format!("<p>{}</p>\n</body></html>\n", escape(closing)));
    EmailContent {
        subject: rendered.title,
        text,
        html,
    }
}

/// One line of a digest: who, and their note. MINIMAL items have neither,
/// so a digest of them lists nothing.
fn item_line(topic: Topic, item: &Item) -> Option<String> {
    if item.detail == Detail::Minimal {
        return None;
    }
    let name = match item.actor_name() {
        "" => item.actor_id(),
        name => name,
    };
    let what = match topic {
        Topic::InvitationReceived => "wants to connect",
        Topic::InvitationAccepted => "accepted your invitation",
        Topic::InvitationWithdrawn => "withdrew their invitation",
        Topic::WithdrawalNote => "withdrew their invitation and left a note",
        Topic::InvitationReminder => "is still waiting for your answer",
    };
    Some(match item.note() {
        "" => format!("{name} {what}"),
        note => format!("{name} {what}: \u{201c}{note}\u{201d}"),
    })
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channels, Timestamp};

    fn notification(items: &[Item]) -> Notification {
        let mut n = Notification::pending(1 << 32, Topic::InvitationReceived, Timestamp::from_millis(1), true);
        for item in items {
            n.push(item.clone());
        }
        n.deliver(1, Timestamp::from_millis(2), Detail::Full, Channels::IN_APP);
        n
    }

    #[test]
    fn a_full_invitation_names_its_sender_and_note_and_escapes_html() {
        let mail = email(&notification(&[Item::new(
            "inv-1",
            Detail::Full,
            "alice",
            "Alice <Ames>",
            "Hi & hello",
        )]));
        assert_eq!(mail.subject, "Alice <Ames> wants to connect");
        assert!(mail.text.contains("\u{201c}Hi & hello\u{201d}"), "{}", mail.text);
        assert!(
            mail.html.contains("Alice &lt;Ames&gt;") && mail.html.contains("Hi &amp; hello"),
            "{}",
            mail.html
        );
        assert!(!mail.html.contains("<Ames>"));
    }

    #[test]
    fn a_digest_lists_each_invitation_once() {
        let items: Vec<Item> = (0..3)
            .map(|i| {
                Item::new(
                    &format!("inv-{i}"),
                    Detail::Full,
                    &format!("u{i}"),
                    &format!("User {i}"),
                    "note",
                )
            })
            .collect();
        let mail = email(&notification(&items));
        assert_eq!(mail.subject, "You have 3 new invitations to connect");
        for i in 0..3 {
            assert_eq!(
                mail.text.matches(&format!("User {i} wants to connect")).count(),
                1,
                "{}",
                mail.text
            );
        }
    }

    #[test]
    fn minimal_mails_hold_no_identity_or_note_anywhere() {
        for count in [1, 3] {
            let items: Vec<Item> = (0..count)
                .map(|i| {
                    Item::new(
                        &format!("SECRET-inv-{i}"),
                        Detail::Minimal,
                        "SECRET-id",
                        "SECRET name",
                        "SECRET note",
                    )
                })
                .collect();
            let mail = email(&notification(&items));
            assert!(!format!("{mail:?}").contains("SECRET"), "{mail:?}");
        }
    }
}
