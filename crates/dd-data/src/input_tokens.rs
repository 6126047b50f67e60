//! Input-token attribution: the tokens whose embeddings drive a neuron up and down through the direct path.

use crate::TokenValue;

/// The input tokens that excite and inhibit a neuron most through the direct path from the
/// embedding, computed from weights alone (no dataset).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InputTokens {
    /// Tokens that raise the neuron's pre-activation most, largest first.
    pub top: Vec<TokenValue>,
    /// Tokens that lower it most, most negative first.
    pub bottom: Vec<TokenValue>,
}
