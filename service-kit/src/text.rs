//! The text rules both services apply at their edges, defined once: user
//! ids, display names, notes and opaque keys. Each parser returns the text
//! as it is stored, or a [`TextError`] that names the offending code point
//! and never echoes the text.
//!
//! Texts are normalised to NFC, so two spellings that look the same (an
//! "é" typed precomposed or as "e" and a combining accent) are the same
//! string, as PRECIS does for identifiers. Identifiers refuse every
//! character that is invisible or prints as nothing, so no id can pass for
//! another; free text keeps line feeds, tabs and the joiners that emoji and
//! many scripts need, but no terminal escapes, NUL, or the bidi controls
//! that reorder what a reader sees.

use std::{borrow::Cow, fmt, ops::RangeInclusive};

use unicode_normalization::{IsNormalized, UnicodeNormalization as _, is_nfc_quick};
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory as _};

/// Longest user id, in bytes of its NFC form.
pub const MAX_USER_ID_BYTES: usize = 128;

/// Longest display name, in characters of its NFC form.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// Why a text breaks its rule: what is wrong, with the offending code point
/// where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("is required")]
    Empty,
    #[error("must be at most {max} bytes")]
    TooManyBytes { max: usize },
    #[error("must be at most {max} characters (this one has {found})")]
    TooManyChars { max: usize, found: usize },
    #[error("must not contain whitespace (found {})", CodePoint(*.0))]
    Whitespace(char),
    #[error("must not contain control or invisible formatting characters (found {})", CodePoint(*.0))]
    Invisible(char),
    #[error("must not contain unassigned or private-use code points (found {})", CodePoint(*.0))]
    Unassigned(char),
    #[error("must not contain control characters (found {})", CodePoint(*.0))]
    Control(char),
    #[error("must not contain control characters other than line feed and tab (found {})", CodePoint(*.0))]
    ControlInText(char),
    #[error("must not contain bidirectional embedding, override or isolate controls (found {})", CodePoint(*.0))]
    Bidi(char),
    #[error("must be one line (found {})", CodePoint(*.0))]
    LineBreak(char),
}

/// A character as Unicode names it: `U+200B`.
struct CodePoint(char);

impl fmt::Display for CodePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U+{:04X}", u32::from(self.0))
    }
}

/// A user id, from a token's `sub` or a request field: its NFC form, 1 to
/// [`MAX_USER_ID_BYTES`] bytes, without whitespace, separators (Z*), any
/// character of general category C* (controls, format characters such as
/// U+200B and the bidi controls, private use, unassigned), or the
/// default-ignorable characters outside those categories.
///
/// # Errors
///
/// The first rule the id breaks.
pub fn user_id(raw: &str) -> Result<String, TextError> {
    let id = nfc(raw);
    if id.is_empty() {
        return Err(TextError::Empty);
    }
    if id.len() > MAX_USER_ID_BYTES {
        return Err(TextError::TooManyBytes { max: MAX_USER_ID_BYTES });
    }
    if let Some(refused) = id.chars().find_map(refused_in_identifier) {
        return Err(refused);
    }
    Ok(id.into_owned())
}

/// A note written by a person (several lines allowed): CRLF and lone CR
/// become LF, leading and trailing whitespace goes, the rest is normalised
/// to NFC and then counted against `max_chars`. Among control characters
/// only line feed and tab are kept; the bidi embedding, override and
/// isolate controls are refused. Other format characters, such as the zero
/// width joiner of emoji sequences, stay.
///
/// # Errors
///
/// The first rule the normalised note breaks.
pub fn note(raw: &str, max_chars: usize) -> Result<String, TextError> {
    let lines = if raw.contains('\r') {
        Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(raw)
    };
    let text = nfc(lines.trim());
    if let Some(refused) = text.chars().find_map(refused_in_note) {
        return Err(refused);
    }
    let found = text.chars().count();
    if found > max_chars {
        return Err(TextError::TooManyChars { max: max_chars, found });
    }
    Ok(text.into_owned())
}

/// A display name (a token's `name` claim): one line without any control
/// character or bidi embedding, override or isolate control; trimmed,
/// normalised to NFC, at most [`MAX_DISPLAY_NAME_CHARS`] characters.
/// `None` when it is blank.
///
/// # Errors
///
/// The first rule the name breaks.
pub fn display_name(raw: &str) -> Result<Option<String>, TextError> {
    if let Some(refused) = raw.chars().find_map(refused_in_display_name) {
        return Err(refused);
    }
    let name = nfc(raw.trim());
    if name.is_empty() {
        return Ok(None);
    }
    let found = name.chars().count();
    if found > MAX_DISPLAY_NAME_CHARS {
        return Err(TextError::TooManyChars {
            max: MAX_DISPLAY_NAME_CHARS,
            found,
        });
    }
    Ok(Some(name.into_owned()))
}

/// A key a client chooses and sends back byte for byte, such as an
/// idempotency key: 1 to `max_bytes` bytes without any character of general
/// category C*. Kept as sent: nobody reads it, so nothing is normalised.
///
/// # Errors
///
/// The first rule the key breaks.
pub fn opaque_key(raw: &str, max_bytes: usize) -> Result<&str, TextError> {
    if raw.is_empty() {
        return Err(TextError::Empty);
    }
    if raw.len() > max_bytes {
        return Err(TextError::TooManyBytes { max: max_bytes });
    }
    match raw.chars().find_map(refused_other) {
        Some(refused) => Err(refused),
        None => Ok(raw),
    }
}

/// `text` in NFC, borrowed when it already is (as ASCII always is).
fn nfc(text: &str) -> Cow<'_, str> {
    if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.nfc().collect())
    }
}

/// Default_Ignorable_Code_Point characters whose general category is not
/// C* (those of Cf, Cn and Cs are refused by category), from Unicode's
/// DerivedCoreProperties.txt: marks and fillers that render as nothing.
const IGNORABLE_OUTSIDE_OTHER: [RangeInclusive<char>; 8] = [
    '\u{034F}'..='\u{034F}',   // COMBINING GRAPHEME JOINER
    '\u{115F}'..='\u{1160}',   // HANGUL CHOSEONG FILLER, HANGUL JUNGSEONG FILLER
    '\u{17B4}'..='\u{17B5}',   // KHMER VOWEL INHERENT AQ, AA
    '\u{180B}'..='\u{180F}',   // MONGOLIAN FREE VARIATION SELECTORS (U+180E is Cf)
    '\u{3164}'..='\u{3164}',   // HANGUL FILLER
    '\u{FE00}'..='\u{FE0F}',   // VARIATION SELECTOR-1 to 16
    '\u{FFA0}'..='\u{FFA0}',   // HALFWIDTH HANGUL FILLER
    '\u{E0100}'..='\u{E01EF}', // VARIATION SELECTOR-17 to 256
];

/// The bidi embedding, override and isolate controls (LRE, RLE, PDF, LRO,
/// RLO, LRI, RLI, FSI, PDI): they reorder the text around them, so
/// `gpj.exe` reads as `exe.jpg`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters of general category C*: Cc, Cf (U+200B and the bidi controls
/// among them), Cs, Co, Cn.
fn refused_other(c: char) -> Option<TextError> {
    let category = c.general_category();
    if matches!(
        category,
        GeneralCategory::Control | GeneralCategory::Format | GeneralCategory::Surrogate
    ) {
        Some(TextError::Invisible(c))
    } else if matches!(category, GeneralCategory::PrivateUse | GeneralCategory::Unassigned) {
        Some(TextError::Unassigned(c))
    } else {
        None
    }
}

fn refused_in_identifier(c: char) -> Option<TextError> {
    if c.is_whitespace() || c.general_category_group() == GeneralCategoryGroup::Separator {
        return Some(TextError::Whitespace(c));
    }
    refused_other(c).or_else(|| {
        IGNORABLE_OUTSIDE_OTHER
            .iter()
            .any(|range| range.contains(&c))
            .then_some(TextError::Invisible(c))
    })
}

fn refused_in_note(c: char) -> Option<TextError> {
    if c.is_control() && c != '\n' && c != '\t' {
        Some(TextError::ControlInText(c))
    } else if is_bidi_control(c) {
        Some(TextError::Bidi(c))
    } else {
        None
    }
}

fn refused_in_display_name(c: char) -> Option<TextError> {
    if c.is_control() {
        Some(TextError::Control(c))
    } else if matches!(c, '\u{2028}' | '\u{2029}') {
        Some(TextError::LineBreak(c))
    } else if is_bidi_control(c) {
        Some(TextError::Bidi(c))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// "é" typed as "e" and a combining acute accent.
    const E_DECOMPOSED: &str = "e\u{301}";

    #[test]
    fn user_ids_at_the_byte_limit() {
        assert_eq!(user_id(&"u".repeat(128)), Ok("u".repeat(128)));
        assert_eq!(user_id(&"u".repeat(129)), Err(TextError::TooManyBytes { max: 128 }));
        assert_eq!(user_id(""), Err(TextError::Empty));
        // The limit applies to the NFC form: 64 "é" are 128 bytes composed,
        // 192 as typed decomposed.
        assert_eq!(user_id(&E_DECOMPOSED.repeat(64)), Ok("é".repeat(64)));
        assert!(user_id(&E_DECOMPOSED.repeat(65)).is_err());
    }

    #[test]
    fn user_ids_are_normalised_to_nfc() {
        assert_eq!(user_id(&format!("{E_DECOMPOSED}milie")), Ok("émilie".to_owned()));
        assert_eq!(user_id("émilie@example.com"), Ok("émilie@example.com".to_owned()));
        // Compatibility forms stay distinct: NFC, not NFKC.
        assert_eq!(user_id("ﬁ"), Ok("ﬁ".to_owned()));
    }

    #[test]
    fn user_ids_refuse_invisible_and_blank_characters() {
        for (raw, refused) in [
            ("bo\u{200b}b", TextError::Invisible('\u{200b}')),
            ("bob\u{202e}", TextError::Invisible('\u{202e}')),
            ("bob\u{2066}", TextError::Invisible('\u{2066}')),
            ("bob\u{200d}", TextError::Invisible('\u{200d}')),
            ("\u{feff}bob", TextError::Invisible('\u{feff}')),
            ("bo\u{0}b", TextError::Invisible('\u{0}')),
            ("bo\u{1b}b", TextError::Invisible('\u{1b}')),
            ("bo\u{85}b", TextError::Whitespace('\u{85}')),
            ("bob smith", TextError::Whitespace(' ')),
            ("bob\tsmith", TextError::Whitespace('\t')),
            ("bob\u{a0}smith", TextError::Whitespace('\u{a0}')),
            ("bob\u{3000}smith", TextError::Whitespace('\u{3000}')),
            ("bob\u{2028}", TextError::Whitespace('\u{2028}')),
            ("bob\u{e000}", TextError::Unassigned('\u{e000}')),
            ("bob\u{378}", TextError::Unassigned('\u{378}')),
            ("bo\u{34f}b", TextError::Invisible('\u{34f}')),
            ("bob\u{fe0f}", TextError::Invisible('\u{fe0f}')),
            ("\u{3164}", TextError::Invisible('\u{3164}')),
        ] {
            assert_eq!(user_id(raw), Err(refused), "{raw:?}");
        }
    }

    /// Every Default_Ignorable_Code_Point of Unicode 16's
    /// DerivedCoreProperties.txt, whatever its category.
    const DEFAULT_IGNORABLE: [RangeInclusive<char>; 23] = [
        '\u{00AD}'..='\u{00AD}',
        '\u{034F}'..='\u{034F}',
        '\u{061C}'..='\u{061C}',
        '\u{115F}'..='\u{1160}',
        '\u{17B4}'..='\u{17B5}',
        '\u{180B}'..='\u{180F}',
        '\u{200B}'..='\u{200F}',
        '\u{202A}'..='\u{202E}',
        '\u{2060}'..='\u{206F}',
        '\u{3164}'..='\u{3164}',
        '\u{FE00}'..='\u{FE0F}',
        '\u{FEFF}'..='\u{FEFF}',
        '\u{FFA0}'..='\u{FFA0}',
        '\u{FFF0}'..='\u{FFF8}',
        '\u{1BCA0}'..='\u{1BCA3}',
        '\u{1D173}'..='\u{1D17A}',
        '\u{E0000}'..='\u{E0000}',
        '\u{E0001}'..='\u{E0001}',
        '\u{E0002}'..='\u{E001F}',
        '\u{E0020}'..='\u{E007F}',
        '\u{E0080}'..='\u{E00FF}',
        '\u{E0100}'..='\u{E01EF}',
        '\u{E01F0}'..='\u{E0FFF}',
    ];

    #[test]
    fn every_default_ignorable_code_point_is_refused_in_a_user_id() {
        for c in DEFAULT_IGNORABLE.into_iter().flatten() {
            let id = format!("a{c}b");
            assert!(
                matches!(user_id(&id), Err(TextError::Invisible(_) | TextError::Unassigned(_))),
                "{}",
                CodePoint(c)
            );
        }
    }

    #[test]
    fn a_note_is_counted_in_characters_after_nfc() {
        let typed = E_DECOMPOSED.repeat(300);
        assert_eq!(typed.chars().count(), 600);
        let stored = note(&typed, 300).unwrap();
        assert_eq!(stored, "é".repeat(300));
        assert_eq!(stored.chars().count(), 300);
        assert_eq!(
            note(&E_DECOMPOSED.repeat(301), 300),
            Err(TextError::TooManyChars { max: 300, found: 301 })
        );
        assert_eq!(note(&"é".repeat(300), 300).unwrap().len(), 600);
    }

    #[test]
    fn a_note_keeps_line_feeds_tabs_and_joiners_and_unifies_line_ends() {
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        let keep = format!("first\nsecond\tthird {family} ❤\u{fe0f} क्\u{200c}ष");
        assert_eq!(note(&keep, 300), Ok(keep.clone()));
        assert_eq!(note("a\r\nb\rc\n\rd", 300), Ok("a\nb\nc\n\nd".to_owned()));
        assert_eq!(note("  \r\n hi \t\n", 300), Ok("hi".to_owned()));
        assert_eq!(note("   ", 300), Ok(String::new()));
    }

    #[test]
    fn a_note_refuses_other_controls_and_bidi_controls() {
        for (raw, refused) in [
            ("a\u{0}b", TextError::ControlInText('\u{0}')),
            ("\u{1b}[31mred\u{1b}[0m", TextError::ControlInText('\u{1b}')),
            ("bell\u{7}", TextError::ControlInText('\u{7}')),
            ("a\u{85}b", TextError::ControlInText('\u{85}')),
            ("a\u{b}b", TextError::ControlInText('\u{b}')),
            ("gpj\u{202e}.exe", TextError::Bidi('\u{202e}')),
            ("\u{202a}x", TextError::Bidi('\u{202a}')),
            ("x\u{2066}y\u{2069}", TextError::Bidi('\u{2066}')),
            ("x\u{2069}", TextError::Bidi('\u{2069}')),
        ] {
            assert_eq!(note(raw, 300), Err(refused), "{raw:?}");
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name("Alice A."), Ok(Some("Alice A.".to_owned())));
        assert_eq!(display_name("  Ren\u{e9}e "), Ok(Some("Renée".to_owned())));
        assert_eq!(
            display_name(&format!("Ren{E_DECOMPOSED}e")),
            Ok(Some("Renée".to_owned()))
        );
        assert_eq!(display_name("   "), Ok(None));
        assert_eq!(display_name(""), Ok(None));
        assert_eq!(display_name(&"é".repeat(100)), Ok(Some("é".repeat(100))));
        assert_eq!(
            display_name(&E_DECOMPOSED.repeat(101)),
            Err(TextError::TooManyChars { max: 100, found: 101 })
        );
        assert_eq!(display_name("Bob\nAdmin"), Err(TextError::Control('\n')));
        assert_eq!(display_name("Bob\t"), Err(TextError::Control('\t')));
        assert_eq!(display_name("\u{1b}[2JBob"), Err(TextError::Control('\u{1b}')));
        assert_eq!(display_name("Bob\u{2028}Admin"), Err(TextError::LineBreak('\u{2028}')));
        assert_eq!(display_name("Bob\u{202e}"), Err(TextError::Bidi('\u{202e}')));
        assert_eq!(
            display_name("\u{1f469}\u{200d}\u{1f4bb} Ada"),
            Ok(Some("\u{1f469}\u{200d}\u{1f4bb} Ada".to_owned()))
        );
    }

    #[test]
    fn opaque_keys_refuse_other_characters_and_stay_as_sent() {
        assert_eq!(opaque_key("retry 1", 128), Ok("retry 1"));
        assert_eq!(opaque_key(E_DECOMPOSED, 128), Ok(E_DECOMPOSED));
        assert_eq!(opaque_key(&"k".repeat(128), 128).map(str::len), Ok(128));
        assert_eq!(
            opaque_key(&"k".repeat(129), 128),
            Err(TextError::TooManyBytes { max: 128 })
        );
        assert_eq!(opaque_key("", 128), Err(TextError::Empty));
        assert_eq!(opaque_key("k\u{200b}", 128), Err(TextError::Invisible('\u{200b}')));
        assert_eq!(opaque_key("k\u{0}", 128), Err(TextError::Invisible('\u{0}')));
        assert_eq!(opaque_key("k\u{e000}", 128), Err(TextError::Unassigned('\u{e000}')));
    }

    #[test]
    fn reasons_name_the_code_point_and_never_echo_the_text() {
        assert_eq!(
            user_id("bo\u{200b}b").unwrap_err().to_string(),
            "must not contain control or invisible formatting characters (found U+200B)"
        );
        assert_eq!(
            note("secret\u{e0001}\u{0}", 300).unwrap_err().to_string(),
            "must not contain control characters other than line feed and tab (found U+0000)"
        );
        assert_eq!(
            user_id("x\u{10ffff}").unwrap_err().to_string(),
            "must not contain unassigned or private-use code points (found U+10FFFF)"
        );
        assert_eq!(
            display_name("secret\u{2067}").unwrap_err().to_string(),
            "must not contain bidirectional embedding, override or isolate controls (found U+2067)"
        );
    }

    /// Strings rich in the characters the rules are about: letters and
    /// marks that compose (or, like U+0958, decompose), blanks and line
    /// ends (`blanks` in 13), and now and then a refused character.
    fn texts(blanks: u32) -> impl Strategy<Value = String> {
        let letters = prop::sample::select(vec![
            'a',
            'e',
            'E',
            'é',
            '\u{301}',
            '\u{323}',
            '\u{302}',
            '\u{1100}',
            '\u{1161}',
            '\u{11a8}',
            '\u{ac00}',
            '\u{958}',
            '\u{1f469}',
            '\u{200d}',
            '\u{fe0f}',
        ]);
        let blank = prop::sample::select(vec![' ', '\n', '\r', '\t', '\u{a0}', '\u{2000}', '\u{2028}']);
        let refused = prop::sample::select(vec![
            '\u{0}', '\u{1b}', '\u{85}', '\u{200b}', '\u{202e}', '\u{2066}', '\u{34f}', '\u{e000}',
        ]);
        let any_char = any::<char>();
        prop::collection::vec(
            prop_oneof![11 - blanks => letters, blanks => blank, 1 => refused, 1 => any_char],
            0..24,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn accepted_user_ids_are_fixed_points_without_refused_characters(raw in texts(0)) {
            if let Ok(id) = user_id(&raw) {
                prop_assert_eq!(user_id(&id), Ok(id.clone()));
                prop_assert!(unicode_normalization::is_nfc(&id));
                prop_assert!(id.chars().all(|c| refused_in_identifier(c).is_none()));
            }
        }

        #[test]
        fn accepted_notes_are_fixed_points_without_refused_characters(raw in texts(3)) {
            if let Ok(text) = note(&raw, 30) {
                prop_assert_eq!(note(&text, 30), Ok(text.clone()));
                prop_assert!(unicode_normalization::is_nfc(&text));
                prop_assert!(!text.contains('\r'));
                prop_assert!(text.chars().all(|c| refused_in_note(c).is_none()));
                prop_assert!(text.chars().count() <= 30);
            }
        }

        #[test]
        fn accepted_display_names_are_fixed_points_without_refused_characters(raw in texts(1)) {
            if let Ok(Some(name)) = display_name(&raw) {
                prop_assert_eq!(display_name(&name), Ok(Some(name.clone())));
                prop_assert!(unicode_normalization::is_nfc(&name));
                prop_assert!(name.chars().all(|c| refused_in_display_name(c).is_none()));
                prop_assert_eq!(name.trim(), name.as_str());
            }
        }
    }
}
