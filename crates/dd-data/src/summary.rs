//! Per-layer summaries: a few numbers for every neuron of a layer, for layer pages and plots.

/// The headline numbers of one neuron.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeuronSummary {
    /// Largest activation seen.
    pub max_activation: f32,
    /// Smallest activation seen.
    pub min_activation: f32,
    /// Share of tokens on which it fires.
    pub density: f32,
    /// Kurtosis of its activations.
    pub kurtosis: f32,
}

/// Summary numbers for every neuron of one layer, indexed by neuron.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerSummary {
    /// One entry per neuron, in index order.
    pub neurons: Vec<NeuronSummary>,
}
