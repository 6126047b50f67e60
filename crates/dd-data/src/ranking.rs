//! Neurons ranked by an "interestingness" score, per layer or per model.

use crate::{NeuronIndex, NeuronStats};

/// How interesting a neuron looks from its statistics alone: `(max - min) * ln(1 + kurtosis)`, and 0 for a
/// neuron that never fires.
///
/// Monosemantic neurons fire rarely and strongly, which shows as a heavy-tailed
/// distribution (high kurtosis) over a wide range; dead neurons (density 0) are
/// not interesting however their tails look.
pub fn interestingness(stats: &NeuronStats) -> f32 {
    if stats.density <= 0.0 || stats.max.partial_cmp(&stats.min) != Some(std::cmp::Ordering::Greater) {
        return 0.0;
    }
    let score = (stats.max - stats.min) * (1.0 + stats.kurtosis.max(0.0)).ln();
    if score.is_finite() { score as f32 } else { 0.0 }
}

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

    fn stats(max: f64, min: f64, kurtosis: f64, density: f64) -> NeuronStats {
        NeuronStats {
            count: 100,
            max,
            min,
            mean: 0.0,
            variance: 1.0,
            skewness: 0.0,
            kurtosis,
            density,
            histogram: crate::Histogram { lower: min as f32, upper: max as f32, counts: vec![1] },
        }
    }

    #[test]
    fn interestingness_prefers_sparse_strong_neurons() {
        let sparse = interestingness(&stats(8.0, -0.2, 60.0, 0.01));
        let dense = interestingness(&stats(8.0, -0.2, 3.0, 0.5));
        let weak = interestingness(&stats(0.5, -0.2, 60.0, 0.01));
        assert!(sparse > dense && sparse > weak, "{sparse} {dense} {weak}");
        assert_eq!(interestingness(&stats(8.0, -0.2, 60.0, 0.0)), 0.0, "dead neurons score 0");
        assert!((interestingness(&stats(2.0, 0.0, std::f64::consts::E - 1.0, 0.1)) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn sorts_descending() {
        let entry = |index, score| RankedNeuron { neuron: NeuronIndex { layer: 0, index }, score };
        let ranking = NeuronRanking::from_unsorted(vec![entry(0, 1.0), entry(1, 3.0), entry(2, 2.0)]);
        let order: Vec<u32> = ranking.neurons.iter().map(|r| r.neuron.index).collect();
        assert_eq!(order, vec![1, 2, 0]);
    }
}
