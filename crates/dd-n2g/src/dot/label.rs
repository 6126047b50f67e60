//! Labels in the original's DOT files: a token's three encodings (N2G's own, `dd_data::n2g_label`;
//! graphviz's backslash doubling; DOT quoting) and their reverse.

pub(super) use dd_data::n2g_label::display_label;
use dd_data::n2g_label::token_of_label;

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

/// The token a label shows: graphviz's backslash doubling undone, then N2G's own encoding
/// ([`dd_data::n2g_label::token_of_label`]).
pub(super) fn decode_label(label: &str) -> String {
    let mut text = String::with_capacity(label.len());
    let mut chars = label.chars().peekable();
    while let Some(c) = chars.next() {
        text.push(c);
        if c == '\\' && chars.peek() == Some(&'\\') {
            chars.next();
        }
    }
    token_of_label(&text)
}
