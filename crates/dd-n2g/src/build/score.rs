//! Scores (spec §7): a graph's predictions against the neuron, token by token, at the firing
//! threshold. The original scored on held-out top examples only, which flatters a graph (every
//! text there is one the neuron fires strongly on); the builder also scores on random examples.

use dd_data::{Example, FiringCounts};

use super::prune::content_start;
use crate::trie::{Patterns, fires};

/// Counts of firing, predicted and agreeing tokens over `examples`, BOS positions excluded. The
/// truth is the recorded activation over `scale` (the recording's value, quantized with an error
/// far below the threshold's width: `Example::activation_error`).
pub(crate) fn firing_counts(
    examples: &[&Example],
    patterns: &Patterns,
    scale: f32,
    threshold: f32,
    bos: Option<u32>,
) -> FiringCounts {
    let mut counts = FiringCounts::default();
    for example in examples {
        let predicted = patterns.predict(&example.tokens);
        let start = content_start(&example.tokens, bos);
        counts.texts += 1;
        for (&actual, &guess) in example.activations.iter().zip(&predicted).skip(start) {
            let (fired, predicted_firing) = (fires(actual / scale, threshold), fires(guess, threshold));
            counts.tokens += 1;
            counts.firing += u64::from(fired);
            counts.predicted += u64::from(predicted_firing);
            counts.true_positives += u64::from(fired && predicted_firing);
        }
    }
    counts
}
