//! Neurons ranked by an "interestingness" score, per layer or per model.

use crate::{NeuronIndex, NeuronStats};

/// How many of a neuron's strongest activations the score asks to stand out: as many as the
/// recorder keeps top examples by default, so that a top-ranked neuron shows its behaviour in every
/// one of them.
pub const SELECTIVE_TOKENS: u64 = 20;

/// [`interestingness`] as a formula, for pages and documents that show it.
pub const INTERESTINGNESS_FORMULA: &str = "(a₂₀ − mean) / standard deviation, a₂₀ its 20th-largest activation";

/// How selective a neuron is, from its statistics alone (BOS positions excluded): how many
/// standard deviations above its mean activation its 20th-largest activation lies,
///
/// ```text
/// interestingness = (a₂₀ − mean) / standard deviation
/// ```
///
/// with `a₂₀` read from the histogram (interpolated within its bin); 0 for a neuron with fewer
/// than [`SELECTIVE_TOKENS`] activations or none that differ.
///
/// Why: a neuron that fires on something specific is quiet on most tokens and far above that on a
/// few. For one that fires at one level on a share `p` of tokens and is 0 elsewhere, the score is
/// `√((1 − p) / p)`: 4.4 at 5 %, 31 at 0.1 %; Gaussian noise gives about 3.5 over 100,000 tokens. It
/// is scale-free, so a layer or model with large activations does not outrank the rest, as the
/// earlier `(max − min) · ln(1 + kurtosis)` did: SmolLM2's top neurons were then those with
/// attention-sink values of 2,000–3,000 at BOS. Taking the 20th-largest value rather than the
/// largest means a handful of outliers does not make a neuron look selective: it must stand out on
/// as many tokens as its top examples show. And it looks at the positive side, the side its top
/// examples and activating tokens show: kurtosis, tried first, also rewarded gated (SwiGLU)
/// neurons whose heavy tail is negative, whose pages then showed nothing particular (9 of the
/// demo's top 20; `docs/recording.md`).
pub fn interestingness(stats: &NeuronStats) -> f32 {
    let deviation = stats.variance.max(0.0).sqrt();
    if stats.count < SELECTIVE_TOKENS || deviation <= 0.0 || !deviation.is_finite() {
        return 0.0;
    }
    let strong = stats.histogram.value_exceeded_by(SELECTIVE_TOKENS as f64);
    let score = ((strong - stats.mean) / deviation).max(0.0);
    if score.is_finite() { score as f32 } else { 0.0 }
}

/// Neurons in a model-wide ranking (the best of every layer's).
pub const MODEL_RANKING_LEN: usize = 1000;

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

    /// Statistics of `values`, computed directly (the reference the score is checked against).
    fn stats_of(values: &[f64]) -> NeuronStats {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let central = |k: i32| values.iter().map(|v| (v - mean).powi(k)).sum::<f64>() / n;
        let variance = central(2);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        // 1,000 bins, so the histogram's count above half the peak is exact for these values.
        let mut counts = vec![0u64; 1000];
        for v in values {
            let bin = (((v - min) / (max - min)) * 1000.0).floor().min(999.0) as usize;
            counts[bin] += 1;
        }
        NeuronStats {
            count: values.len() as u64,
            max,
            min,
            mean,
            variance,
            skewness: central(3) / variance.powf(1.5),
            kurtosis: central(4) / (variance * variance),
            density: values.iter().filter(|v| **v > 0.0).count() as f64 / n,
            histogram: crate::Histogram { lower: min as f32, upper: max as f32, counts },
            bos: None,
        }
    }

    /// `n` activations: `firing` of them at `peak`, the rest noise around zero within ±peak/40.
    fn neuron(n: usize, firing: usize, peak: f64) -> Vec<f64> {
        let every = n / firing.max(1);
        (0..n)
            .map(|i| {
                if i % every == 0 && i / every < firing {
                    peak
                } else {
                    ((i * 7919 % 101) as f64 - 50.0) / 2000.0 * peak
                }
            })
            .collect()
    }

    /// The reference: the 20th-largest value, found by sorting.
    fn twentieth_largest(values: &[f64]) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        sorted[19]
    }

    #[test]
    fn matches_the_formula_on_computed_statistics() {
        for values in [neuron(10_000, 40, 3.0), neuron(5_000, 400, 1.0), neuron(10_000, 2, 9.0)] {
            let stats = stats_of(&values);
            let expected = (twentieth_largest(&values) - stats.mean) / stats.variance.sqrt();
            let got = f64::from(interestingness(&stats));
            // The histogram's 1,000 bins place the 20th-largest value within a bin's width.
            let bin_width = (stats.max - stats.min) / 1000.0;
            assert!((got - expected).abs() <= bin_width / stats.variance.sqrt() + 1e-4, "{got} vs {expected}");
        }
    }

    #[test]
    fn selective_neurons_outrank_dense_and_outlier_ones_whatever_their_scale() {
        let selective = interestingness(&stats_of(&neuron(10_000, 50, 2.0)));
        let dense = interestingness(&stats_of(&neuron(10_000, 2_000, 2.0)));
        let outlier = interestingness(&stats_of(&neuron(10_000, 2, 2.0)));
        assert!(selective > dense && selective > outlier, "{selective} {dense} {outlier}");
        // √((1 − p) / p) for a neuron firing at one level on a share p of tokens.
        assert!((f64::from(selective) - (0.995f64 / 0.005).sqrt()).abs() < 0.5, "{selective}");
        // Scale-free: the same shape a thousand times larger scores the same.
        let large = interestingness(&stats_of(&neuron(10_000, 50, 2_000.0)));
        assert!((large - selective).abs() < 1e-3 * selective, "{large} {selective}");
        // A neuron whose tail is negative shows nothing particular on its positive side.
        let mirrored: Vec<f64> = neuron(10_000, 50, 2.0).iter().map(|v| -v).collect();
        let negative = interestingness(&stats_of(&mirrored));
        assert!(negative < dense, "{negative} {dense}");
    }

    #[test]
    fn sorts_descending() {
        let entry = |index, score| RankedNeuron { neuron: NeuronIndex { layer: 0, index }, score };
        let ranking = NeuronRanking::from_unsorted(vec![entry(0, 1.0), entry(1, 3.0), entry(2, 2.0)]);
        let order: Vec<u32> = ranking.neurons.iter().map(|r| r.neuron.index).collect();
        assert_eq!(order, vec![1, 2, 0]);
    }
}
