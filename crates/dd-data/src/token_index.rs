//! The token search index: which neurons respond to which token (Neuron2Graph's neuron store).

use crate::NeuronIndex;

/// The neurons linked to one token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenIndexEntry {
    /// The (normalised) token.
    pub token: String,
    /// Neurons that activate on this token, sorted.
    pub activating: Vec<NeuronIndex>,
    /// Neurons for which this token is important context, sorted.
    pub important: Vec<NeuronIndex>,
}

/// Token to neurons, sorted by token.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenIndex {
    /// The entries, sorted by token.
    pub entries: Vec<TokenIndexEntry>,
}

/// A token as the neuron store and searches compare it: display spaces (`·`) as spaces, trimmed, lower-cased (` The`, `the` and `THE` are one key).
///
/// Whitespace-only tokens (`\n`, ` `) all become the empty key: a search cannot type them apart,
/// and the original's title-case rule (spec §5) would have kept ` The` and `The` apart while the
/// website's search box lower-cases anyway.
pub fn normalise_token(token: &str) -> String {
    token.replace('·', " ").trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::normalise_token;

    #[test]
    fn normalise_token_merges_case_and_spaces() {
        for (raw, key) in [
            (" The", "the"),
            ("the", "the"),
            ("THE", "the"),
            ("·Paris", "paris"),
            ("\n", ""),
            ("  ", ""),
            (" 1", "1"),
            ("Été", "été"),
            ("a·b", "a b"),
        ] {
            assert_eq!(normalise_token(raw), key, "{raw:?}");
        }
    }
}
