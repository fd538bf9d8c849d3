//! A message the SMTP sink kept, parsed the way a mail client reads it.

use std::path::PathBuf;

use mail_parser::{MessageParser, PartType};

/// One kept message. Missing headers read as empty strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Where the sink keeps it (for a failing test's message).
    pub file: PathBuf,
    /// The message as received, lossily as UTF-8.
    pub raw: String,
    /// Decoded (RFC 2047 words become text).
    pub subject: String,
    /// The first From address, without the display name.
    pub from: String,
    /// Every To address, without display names.
    pub to: Vec<String>,
    /// Without the angle brackets.
    pub message_id: String,
    /// The text/plain body parts, decoded, one after the other.
    pub text: String,
    /// The text/html body parts, decoded, one after the other.
    pub html: String,
    /// The top-level headers in order: names as sent, values unfolded and
    /// trimmed but not decoded.
    pub headers: Vec<(String, String)>,
}

impl Mail {
    /// Parses the bytes kept in `file`.
    #[must_use]
    pub fn parse(file: PathBuf, bytes: &[u8]) -> Self {
        let raw = String::from_utf8_lossy(bytes).into_owned();
        let Some(message) = MessageParser::default().parse(bytes) else {
            return Self {
                file,
                raw,
                subject: String::new(),
                from: String::new(),
                to: Vec::new(),
                message_id: String::new(),
                text: String::new(),
                html: String::new(),
                headers: Vec::new(),
            };
        };
        let address = |a: &mail_parser::Addr<'_>| a.address().unwrap_or_default().to_owned();
        // The text list holds HTML parts too when a message has no plain
        // part (and the HTML list text parts): keep each to its own type.
        let text = message
            .text_bodies()
            .filter_map(|part| {
                if let PartType::Text(text) = &part.body {
                    Some(text.as_ref())
                } else {
                    None
                }
            })
            .collect();
        let html = message
            .html_bodies()
            .filter_map(|part| {
                if let PartType::Html(html) = &part.body {
                    Some(html.as_ref())
                } else {
                    None
                }
            })
            .collect();
        Self {
            subject: message.subject().unwrap_or_default().to_owned(),
            from: message.from().and_then(|a| a.first()).map(address).unwrap_or_default(),
            to: message
                .to()
                .map(|a| a.iter().map(address).collect())
                .unwrap_or_default(),
            message_id: message.message_id().unwrap_or_default().to_owned(),
            text,
            html,
            headers: message
                .headers_raw()
                .map(|(name, value)| (name.to_owned(), unfold(value)))
                .collect(),
            file,
            raw,
        }
    }

    /// The first value of header `name` (any case), unfolded.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// RFC 5322 unfolding: a line break before white space is not part of the
/// value.
fn unfold(value: &str) -> String {
    value.replace("\r\n", "").replace('\n', "").trim().to_owned()
}
