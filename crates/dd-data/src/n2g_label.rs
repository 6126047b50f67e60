//! How the original Neuron2Graph writes a token as a node label, before graphviz and DOT add
//! their own escaping: JSON string escapes (`\\n`, `\\u0027`), or `'  '` for a token of spaces
//! only, and nothing at all for a token holding `"`. Both directions, for everything that reads
//! or writes the original's graphs (dd-n2g's DOT files, the original DeepDecipher's database).

use std::fmt::Write as _;

/// The original's label text for a token, before graphviz's backslash doubling.
pub fn display_label(token: &str) -> String {
    if token.contains('"') {
        return token.to_string();
    }
    let mut out = String::with_capacity(token.len());
    for c in token.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    if !out.is_empty() && out.chars().all(|c| c == ' ') {
        return format!("'{out}'");
    }
    if quoted_spaces(&out).is_some() {
        let inner = &out[1..out.len() - 1];
        return format!("\\u0027{inner}\\u0027");
    }
    out
}

/// The token of a label whose graphviz and DOT escaping is already undone: the `'…'` form of
/// spaces or the JSON escapes (a label with `"` was never JSON-escaped).
pub fn token_of_label(text: &str) -> String {
    if text.contains('"') {
        return text.to_owned();
    }
    if let Some(spaces) = quoted_spaces(text) {
        return spaces.to_string();
    }
    json_unescape(text)
}

/// The spaces inside `'  '`, the original's form of a token of spaces only.
fn quoted_spaces(label: &str) -> Option<&str> {
    let inner = label.strip_prefix('\'')?.strip_suffix('\'')?;
    (!inner.is_empty() && inner.chars().all(|c| c == ' ')).then_some(inner)
}

/// JSON string escapes, leniently: an escape that is not one is kept as written.
fn json_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let (decoded, used) = match rest.as_bytes().get(1) {
            Some(b'\\') => (Some('\\'), 2),
            Some(b'"') => (Some('"'), 2),
            Some(b'/') => (Some('/'), 2),
            Some(b'n') => (Some('\n'), 2),
            Some(b'r') => (Some('\r'), 2),
            Some(b't') => (Some('\t'), 2),
            Some(b'b') => (Some('\u{8}'), 2),
            Some(b'f') => (Some('\u{c}'), 2),
            Some(b'u') => unicode_escape(rest),
            _ => (None, 1),
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&rest[..used]),
        }
        rest = &rest[used..];
    }
    out.push_str(rest);
    out
}

/// `\uXXXX`, or a surrogate pair `\uD8XX\uDCXX`, at the start of `text`; `(None, 1)` if neither.
fn unicode_escape(text: &str) -> (Option<char>, usize) {
    let unit = |at: usize| {
        let hex = text.get(at..at + 6)?.strip_prefix("\\u")?;
        if hex.chars().all(|c| c.is_ascii_hexdigit()) { u32::from_str_radix(hex, 16).ok() } else { None }
    };
    match unit(0) {
        Some(high @ 0xd800..=0xdbff) => match unit(6) {
            Some(low @ 0xdc00..=0xdfff) => (char::from_u32(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)), 12),
            _ => (None, 1),
        },
        Some(code) => match char::from_u32(code) {
            Some(c) => (Some(c), 6),
            None => (None, 1),
        },
        None => (None, 1),
    }
}
