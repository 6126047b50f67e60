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

#[cfg(test)]
mod tests {
    use dd_data::Example;

    use super::*;
    use crate::trie::{Element, Key, Line, PatternBuilder};

    fn example(tokens: &[u32], activations: &[f32]) -> Example {
        Example {
            dataset_index: 0,
            tokens: tokens.to_vec(),
            activations: activations.to_vec(),
            max_token_index: 0,
            activation_error: 0.0,
        }
    }

    /// A graph of one pattern, `7 ← ? ← 3` at 0.9, scored on hand-made texts with BOS 0: every
    /// count is what a reader works out by hand.
    #[test]
    fn counts_on_hand_made_texts() {
        let element = |key, activation| Element { key, importance: 1.0, activation };
        let mut builder = PatternBuilder::new(0.5);
        builder.insert(&Line {
            elements: vec![element(Key::Token(7), 0.9), element(Key::Ignore, 0.0), element(Key::Token(3), 0.0)],
            activation: 0.9,
        });
        let patterns = builder.finish();
        let scale = 4.0;
        // Fires on the pattern (position 3), and once where the graph has no pattern (position 5).
        let a = example(&[0, 3, 1, 7, 2, 7], &[9.0, 0.0, 0.1, 3.6, 0.0, 2.4]);
        // The pattern where the neuron stays quiet: a false positive. BOS at 9.0 is never counted.
        let b = example(&[0, 3, 5, 7], &[9.0, 0.0, 0.0, 1.0]);
        let counts = firing_counts(&[&a, &b], &patterns, scale, 0.5, Some(0));
        assert_eq!(counts, FiringCounts { texts: 2, tokens: 8, firing: 2, predicted: 2, true_positives: 1 });
        assert_eq!((counts.precision(), counts.recall(), counts.f1()), (Some(0.5), Some(0.5), Some(0.5)));
        // Without BOS the first position counts too, and fires.
        let counts = firing_counts(&[&a], &patterns, scale, 0.5, None);
        assert_eq!(counts, FiringCounts { texts: 1, tokens: 6, firing: 3, predicted: 1, true_positives: 1 });
        // Quiet text and no prediction: nothing to score, and the API says so rather than 0 or 1.
        let quiet = example(&[0, 1, 2], &[9.0, 0.0, 0.0]);
        let counts = firing_counts(&[&quiet], &patterns, scale, 0.5, Some(0));
        assert_eq!((counts.tokens, counts.precision(), counts.recall(), counts.f1()), (2, None, None, None));
    }
}
