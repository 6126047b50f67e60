//! Activation-based related tokens: the tokens on which a neuron fires hardest on average.

/// A token with the neuron's mean activation over its occurrences in the recorded dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenMean {
    /// Token id.
    pub token: u32,
    /// Mean activation of the neuron on this token.
    pub mean: f32,
    /// How many times the token occurred in the recorded dataset.
    pub count: u64,
}

/// The tokens with the highest mean activation of a neuron (OpenAI's "activation-based related tokens").
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActivatingTokens {
    /// The tokens, highest mean first.
    pub tokens: Vec<TokenMean>,
}

impl ActivatingTokens {
    /// Builds the list from unsorted entries: highest mean first, ties by token id, so the stored
    /// order never depends on how a recorder merged its shards.
    pub fn from_unsorted(mut tokens: Vec<TokenMean>) -> Self {
        tokens.sort_by(|a, b| b.mean.total_cmp(&a.mean).then(a.token.cmp(&b.token)));
        Self { tokens }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_descending_mean_then_token() {
        let entry = |token, mean| TokenMean { token, mean, count: 1 };
        let sorted = ActivatingTokens::from_unsorted(vec![entry(5, 1.0), entry(2, 3.0), entry(9, 3.0), entry(1, -0.5)]);
        let order: Vec<u32> = sorted.tokens.iter().map(|t| t.token).collect();
        assert_eq!(order, vec![2, 9, 5, 1]);
    }
}
