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
