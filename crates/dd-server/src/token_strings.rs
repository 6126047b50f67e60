//! A model's token strings as the server writes them: plain, pre-escaped as JSON in 16-byte slots,
//! and HTML-escaped as they read in running text; built once per model at start-up.

use dd_data::Vocabulary;

use crate::html::escape;
use crate::json::{JsonOut, Slot};

/// Token display strings of a model, plain and pre-escaped as JSON.
///
/// A page looks up 2,560 random tokens, so a lookup must cost one cache line:
/// most tokens fit a 16-byte [`Slot`] holding `,"token"` ready to append.
/// Longer ones sit in one shared buffer; their slot holds their index.
pub(crate) struct TokenStrings {
    plain: Vec<String>,
    /// Each token as it reads in running text, HTML-escaped (see [`running_text_html`]).
    html: Vec<Box<str>>,
    slots: Vec<Slot>,
    long_text: String,
    /// `long_text[long_offsets[k]..long_offsets[k + 1]]` is the `k`th long token, escaped.
    long_offsets: Vec<u32>,
}

impl TokenStrings {
    /// Escapes every token of `vocabulary` once.
    pub(crate) fn new(vocabulary: Vocabulary) -> Self {
        let mut slots = Vec::with_capacity(vocabulary.tokens.len());
        let mut long_text = String::new();
        let mut long_offsets = vec![0u32];
        for token in &vocabulary.tokens {
            let escaped = serde_json::to_string(token).unwrap_or_else(|_| "\"\"".into());
            let slot = Slot::item(escaped.as_bytes()).unwrap_or_else(|| {
                let slot = Slot::long((long_offsets.len() - 1) as u32);
                long_text.push_str(&escaped);
                long_offsets.push(u32::try_from(long_text.len()).unwrap_or(u32::MAX));
                slot
            });
            slots.push(slot);
        }
        let html = vocabulary.tokens.iter().map(|token| running_text_html(token).into_boxed_str()).collect();
        Self { plain: vocabulary.tokens, html, slots, long_text, long_offsets }
    }

    /// The number of tokens in the vocabulary.
    pub(crate) fn len(&self) -> usize {
        self.plain.len()
    }

    /// The token as it reads in running text, HTML-escaped; unknown ids show as `<?>`.
    pub(crate) fn html_text(&self, token: u32) -> &str {
        self.html.get(token as usize).map_or("&lt;?&gt;", |text| text)
    }

    /// The display string of a token; unknown ids show as `<id>`.
    pub(crate) fn display(&self, token: u32) -> String {
        match self.plain.get(token as usize) {
            Some(text) => text.clone(),
            None => format!("<{token}>"),
        }
    }

    /// The token's slot; unknown ids get a long slot that points past the table.
    ///
    /// Returned by reference: copying an `Option<Slot>` by value compiled to overlapping partial
    /// stores and loads that stalled store forwarding on every token.
    pub(crate) fn slot(&self, token: u32) -> &Slot {
        static UNKNOWN: Slot = Slot::long(u32::MAX);
        self.slots.get(token as usize).unwrap_or(&UNKNOWN)
    }

    /// Appends `,` and a token whose slot is long.
    pub(crate) fn write_long(&self, token: u32, slot: &Slot, out: &mut JsonOut) {
        let long_index = slot.long_index() as usize;
        out.raw(",");
        match (self.long_offsets.get(long_index), self.long_offsets.get(long_index + 1)) {
            (Some(&start), Some(&end)) => out.raw(&self.long_text[start as usize..end as usize]),
            _ => out.string(&format!("<{token}>")),
        }
    }
}

/// A token's display string made readable inside running text: `·` back to a space, `↵` followed by a line break.
pub(crate) fn running_text_html(display: &str) -> String {
    let mut out = String::with_capacity(display.len());
    let spaced = display.replace('·', " ");
    escape(&mut out, &spaced);
    if out.contains('↵') {
        out = out.replace('↵', "↵\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_text_shows_spaces_and_breaks_lines() {
        assert_eq!(running_text_html("·the"), " the");
        assert_eq!(running_text_html("↵"), "↵\n");
        assert_eq!(running_text_html("<b>"), "&lt;b&gt;");
    }
}
