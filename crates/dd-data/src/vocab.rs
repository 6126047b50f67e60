//! A model's vocabulary: token id to display string, stored once per model.

/// Display strings of every token, indexed by token id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Vocabulary {
    /// `tokens[id]` is the display string of token `id`.
    pub tokens: Vec<String>,
}

impl Vocabulary {
    /// The display string of a token, if the id is in range.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary has no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// Shows a token's bytes with nothing invisible: a space is `·`, a tab `→`, a newline `↵`, a
/// carriage return `␍`, other control characters `\u{..}`, and bytes that are not complete UTF-8
/// (a token may hold half a character) `<0xNN>`.
pub fn display_token(bytes: &[u8]) -> String {
    let mut shown = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for character in chunk.valid().chars() {
            match character {
                ' ' => shown.push('·'),
                '\t' => shown.push('→'),
                '\n' => shown.push('↵'),
                '\r' => shown.push('␍'),
                control if control.is_control() => shown.push_str(&format!("\\u{{{:x}}}", control as u32)),
                other => shown.push(other),
            }
        }
        for byte in chunk.invalid() {
            shown.push_str(&format!("<0x{byte:02X}>"));
        }
    }
    shown
}
