//! Neurons ranked by an "interestingness" score, per layer or per model.

use crate::NeuronIndex;

/// A neuron and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedNeuron {
    /// The neuron.
    pub neuron: NeuronIndex,
    /// Its interestingness score; higher is more interesting.
    pub score: f32,
}

/// Neurons sorted by descending score.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NeuronRanking {
    /// The neurons, most interesting first.
    pub neurons: Vec<RankedNeuron>,
}

impl NeuronRanking {
    /// Builds a ranking from unsorted entries, sorting by descending score (NaN last).
    pub fn from_unsorted(mut neurons: Vec<RankedNeuron>) -> Self {
        neurons.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.neuron.cmp(&b.neuron)));
        Self { neurons }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_descending() {
        let entry = |index, score| RankedNeuron { neuron: NeuronIndex { layer: 0, index }, score };
        let ranking = NeuronRanking::from_unsorted(vec![entry(0, 1.0), entry(1, 3.0), entry(2, 2.0)]);
        let order: Vec<u32> = ranking.neurons.iter().map(|r| r.neuron.index).collect();
        assert_eq!(order, vec![1, 2, 0]);
    }
}
