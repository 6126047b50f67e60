//! Neurons ranked by an "interestingness" score, per layer or per model.

use crate::{NeuronIndex, NeuronStats};

/// Strong firings a neuron needs for full marks: as many as the recorder keeps top examples by
/// default, so that a top-ranked neuron's examples all show it firing.
pub const STRONG_FIRINGS_WANTED: f64 = 20.0;

/// How selective a neuron is, from its statistics alone (BOS positions excluded):
///
/// ```text
/// interestingness = ln(1 + max(kurtosis − 3, 0)) × min(1, strong / 20)
/// ```
///
/// where `kurtosis` is the fourth standardised moment of its activations and `strong` the number
/// of activations at least half as far from zero as its largest one, on the side of that largest
/// one (read from the histogram). 0 for a neuron that never moves from zero.
///
/// Why: excess kurtosis measures how much of a neuron's variance comes from rare, large
/// activations, which is what "fires on something specific" looks like; it is 0 for a Gaussian,
/// about 18 for a neuron that fires on 5 % of tokens and about 1,000 at 0.1 %. It is scale-free,
/// so a layer or a model with large activations does not outrank the rest, as the earlier
/// `(max − min) · ln(1 + kurtosis)` did (SmolLM2's top neurons were then the ones with attention-sink
/// values of 2,000–3,000 at BOS). The second factor damps neurons whose tail is a handful of
/// outliers: full marks need [`STRONG_FIRINGS_WANTED`] strong activations, so a top-ranked neuron
/// has a behaviour to show in every one of its top examples. The larger side counts, so a gated
/// MLP's neuron that fires negatively (SwiGLU's signs are arbitrary) ranks like its mirror image.
pub fn interestingness(stats: &NeuronStats) -> f32 {
    let peak = stats.max.max(-stats.min);
    if stats.count == 0 || !peak.is_finite() || peak <= 0.0 {
        return 0.0;
    }
    let strong = if stats.max >= -stats.min {
        stats.histogram.count_at_least(stats.max / 2.0)
    } else {
        stats.histogram.count_at_most(stats.min / 2.0)
    };
    let tail = (1.0 + (stats.kurtosis - 3.0).max(0.0)).ln();
    let score = tail * (strong / STRONG_FIRINGS_WANTED).min(1.0);
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

    #[test]
    fn matches_the_formula_on_computed_statistics() {
        let values = neuron(10_000, 40, 3.0);
        let stats = stats_of(&values);
        let strong = values.iter().filter(|v| **v >= 1.5).count() as f64;
        assert_eq!(strong, 40.0);
        let expected = (1.0 + (stats.kurtosis - 3.0)).ln() * (strong / 20.0).min(1.0);
        assert!((f64::from(interestingness(&stats)) - expected).abs() < 1e-4, "{} {expected}", interestingness(&stats));
    }

    #[test]
    fn selective_neurons_outrank_dense_and_outlier_ones_whatever_their_scale() {
        let selective = interestingness(&stats_of(&neuron(10_000, 50, 2.0)));
        let dense = interestingness(&stats_of(&neuron(10_000, 2_000, 2.0)));
        let outlier = interestingness(&stats_of(&neuron(10_000, 2, 2.0)));
        assert!(selective > dense && selective > outlier, "{selective} {dense} {outlier}");
        // Scale-free: the same shape a thousand times larger scores the same.
        let large = interestingness(&stats_of(&neuron(10_000, 50, 2_000.0)));
        assert!((large - selective).abs() < 1e-3 * selective, "{large} {selective}");
        // A neuron firing negatively ranks like its mirror image.
        let mirrored: Vec<f64> = neuron(10_000, 50, 2.0).iter().map(|v| -v).collect();
        let negative = interestingness(&stats_of(&mirrored));
        assert!((negative - selective).abs() < 1e-3 * selective, "{negative} {selective}");
    }

    #[test]
    fn silent_and_empty_neurons_score_zero() {
        let mut silent = stats_of(&[0.0, 0.0, 0.0]);
        silent.kurtosis = 0.0;
        assert_eq!(interestingness(&silent), 0.0);
        let mut empty = stats_of(&[1.0, 2.0]);
        empty.count = 0;
        assert_eq!(interestingness(&empty), 0.0);
    }

    #[test]
    fn sorts_descending() {
        let entry = |index, score| RankedNeuron { neuron: NeuronIndex { layer: 0, index }, score };
        let ranking = NeuronRanking::from_unsorted(vec![entry(0, 1.0), entry(1, 3.0), entry(2, 2.0)]);
        let order: Vec<u32> = ranking.neurons.iter().map(|r| r.neuron.index).collect();
        assert_eq!(order, vec![1, 2, 0]);
    }
}
