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
