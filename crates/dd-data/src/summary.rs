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

impl NeuronSummary {
    /// The headline numbers of a neuron's statistics.
    pub fn from_stats(stats: &crate::NeuronStats) -> Self {
        Self {
            max_activation: stats.max as f32,
            min_activation: stats.min as f32,
            density: stats.density as f32,
            kurtosis: stats.kurtosis as f32,
        }
    }
}

/// Summary numbers for every neuron of one layer, indexed by neuron.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerSummary {
    /// One entry per neuron, in index order.
    pub neurons: Vec<NeuronSummary>,
}
