//! Labels in the original's DOT files: a token's three encodings (JSON escapes or the `'…'` form
//! of spaces, graphviz's backslash doubling, DOT quoting) and their reverse.

use std::fmt::Write as _;

/// The original's label text for a token, before graphviz's backslash doubling.
pub(super) fn display_label(token: &str) -> String {
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

/// The spaces inside `'  '`, the original's form of a token of spaces only.
fn quoted_spaces(label: &str) -> Option<&str> {
    let inner = label.strip_prefix('\'')?.strip_suffix('\'')?;
    (!inner.is_empty() && inner.chars().all(|c| c == ' ')).then_some(inner)
}

pub(super) const KEYWORDS: [&str; 6] = ["node", "edge", "graph", "digraph", "subgraph", "strict"];

/// An ID as Python's graphviz writes it: bare when it is a plain name or a numeral and no
/// keyword, else double-quoted with `"` escaped.
pub(super) fn quote(id: &str) -> String {
    let name = id.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let bare = (name || is_numeral(id)) && !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(id));
    if bare { id.to_string() } else { format!("\"{}\"", id.replace('"', "\\\"")) }
}

/// `-?(\.[0-9]+|[0-9]+(\.[0-9]*)?)`
fn is_numeral(id: &str) -> bool {
    let unsigned = id.strip_prefix('-').unwrap_or(id);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty())
}

/// The token a label shows: graphviz's backslash doubling undone, then the `'…'` form of spaces or
/// the JSON escapes (a label with `"` was never JSON-escaped).
pub(super) fn decode_label(label: &str) -> String {
    let mut text = String::with_capacity(label.len());
    let mut chars = label.chars().peekable();
    while let Some(c) = chars.next() {
        text.push(c);
        if c == '\\' && chars.peek() == Some(&'\\') {
            chars.next();
        }
    }
    if text.contains('"') {
        return text;
    }
    if let Some(spaces) = quoted_spaces(&text) {
        return spaces.to_string();
    }
    json_unescape(&text)
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
