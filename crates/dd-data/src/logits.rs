//! Direct logit attribution: the output tokens a neuron pushes up and down.

/// A token with a value attached (a logit effect, a mean activation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenValue {
    /// Token id.
    pub token: u32,
    /// The value for this token.
    pub value: f32,
}

/// The output tokens a neuron promotes and suppresses most through the unembedding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogitAttribution {
    /// Tokens with the largest positive effect, largest first.
    pub top: Vec<TokenValue>,
    /// Tokens with the largest negative effect, most negative first.
    pub bottom: Vec<TokenValue>,
}
