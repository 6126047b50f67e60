//! A prompt's occlusion importances into pattern lines (spec §5 `make_lines`) and the important
//! positions that augmented prompts inherit from their original (spec §4).
//!
//! Choices, where the spec leaves room or the original has a quirk:
//! - Skipped tokens (BOS/EOS) are dropped from lines entirely, not even as wildcards, and a skipped
//!   token never starts a line: the original would start one at the token before it, possibly with
//!   a wildcard as the activating element.
//! - Trailing wildcards are cut after the last important element counted among the elements kept;
//!   the original's index also counted skipped tokens, which kept one wildcard too many.
//! - As in the original, only firing positions record important positions; a non-firing position's
//!   set is empty, so an augmentation inherits nothing where the original prompt did not fire.
//! - Missing matrix entries (a ragged or short matrix, or fewer activations than tokens) read as 0:
//!   not important and not firing.

use crate::trie::{Element, Key, Line, fires};

/// One prompt the neuron was run on, with its occlusion importances.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// The prompt's token ids.
    pub tokens: &'a [u32],
    /// `importance[k][j]`: 1 − (activation at j with token k masked) / (activation at j); row per position k.
    pub importance: &'a [Vec<f32>],
    /// The neuron's normalised activation at each position.
    pub activation: &'a [f32],
}

impl Sample<'_> {
    fn importance(&self, masked: usize, at: usize) -> f32 {
        self.importance.get(masked).and_then(|row| row.get(at)).copied().unwrap_or(0.0)
    }

    fn activation(&self, at: usize) -> f32 {
        self.activation.get(at).copied().unwrap_or(0.0)
    }
}

/// The thresholds of pattern extraction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LineConfig {
    /// A position fires, and starts a line, when its normalised activation exceeds this (0.5).
    pub activation_threshold: f32,
    /// A context token is kept, not a wildcard, when its importance exceeds this (0.75).
    pub importance_threshold: f32,
}

impl Default for LineConfig {
    fn default() -> Self {
        Self { activation_threshold: 0.5, importance_threshold: 0.75 }
    }
}

/// For each position i, the earlier positions k ≤ i with importance[k][i] > threshold (skipped tokens excluded): what augmented prompts inherit.
///
/// Sets are ascending, and empty at positions that do not fire (as the original records them).
pub fn important_positions(sample: &Sample<'_>, config: &LineConfig, skip: &dyn Fn(u32) -> bool) -> Vec<Vec<usize>> {
    (0..sample.tokens.len())
        .map(|i| {
            if !fires(sample.activation(i), config.activation_threshold) {
                return Vec::new();
            }
            (0..=i)
                .filter(|&k| !skip(sample.tokens[k]) && sample.importance(k, i) > config.importance_threshold)
                .collect()
        })
        .collect()
}

/// The lines of a prompt: one per position whose activation exceeds the threshold.
///
/// `inherited` is the original prompt's [`important_positions`] when `sample` is an augmentation:
/// positions in the set for the same index (the last set past its end) are important whatever
/// their own importance.
pub fn lines(
    sample: &Sample<'_>,
    inherited: Option<&[Vec<usize>]>,
    config: &LineConfig,
    skip: &dyn Fn(u32) -> bool,
) -> Vec<Line> {
    let mut lines = Vec::new();
    for (i, &token) in sample.tokens.iter().enumerate() {
        let activation = sample.activation(i);
        if !fires(activation, config.activation_threshold) || skip(token) {
            continue;
        }
        let kept: &[usize] = inherited.and_then(|sets| sets.get(i).or(sets.last())).map_or(&[], Vec::as_slice);
        let mut elements = Vec::new();
        let mut last_important = 0;
        for k in (0..=i).rev().filter(|&k| !skip(sample.tokens[k])) {
            let importance = sample.importance(k, i);
            let important = importance > config.importance_threshold || kept.contains(&k);
            // The activating token itself is never a wildcard.
            let key = if important || elements.is_empty() { Key::Token(sample.tokens[k]) } else { Key::Ignore };
            if key != Key::Ignore {
                last_important = elements.len();
            }
            elements.push(Element { key, importance, activation: sample.activation(k) });
        }
        elements.truncate(last_important + 1);
        lines.push(Line { elements, activation });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOS: u32 = 0;

    fn is_bos(token: u32) -> bool {
        token == BOS
    }

    /// An importance matrix with `value` at the given (masked, at) entries and 0 elsewhere.
    fn matrix(n: usize, entries: &[(usize, usize, f32)]) -> Vec<Vec<f32>> {
        let mut m = vec![vec![0.0; n]; n];
        for &(k, j, v) in entries {
            m[k][j] = v;
        }
        m
    }

    fn keys(line: &Line) -> Vec<Key> {
        line.elements.iter().map(|e| e.key).collect()
    }

    #[test]
    fn one_line_per_firing_position_with_wildcards_for_unimportant_context() {
        // BOS a b c d; c (position 3) and d (position 4) fire.
        let tokens = [BOS, 1, 2, 3, 4];
        let activation = [0.0, 0.1, 0.2, 0.9, 0.6];
        let importance = matrix(5, &[(3, 3, 1.0), (1, 3, 0.8), (2, 3, 0.75), (4, 4, 0.2), (0, 4, 0.99)]);
        let sample = Sample { tokens: &tokens, importance: &importance, activation: &activation };
        let lines = lines(&sample, None, &LineConfig::default(), &is_bos);
        assert_eq!(lines.len(), 2);
        // c ← (b: 0.75 is not above the threshold) ← a; BOS dropped.
        assert_eq!(keys(&lines[0]), vec![Key::Token(3), Key::Ignore, Key::Token(1)]);
        assert_eq!(lines[0].activation, 0.9);
        assert_eq!(lines[0].elements[1], Element { key: Key::Ignore, importance: 0.75, activation: 0.2 });
        assert_eq!(lines[0].elements[2], Element { key: Key::Token(1), importance: 0.8, activation: 0.1 });
        // d alone: its own importance is low but it is the activating token; trailing wildcards cut,
        // and the important BOS is skipped, not kept.
        assert_eq!(keys(&lines[1]), vec![Key::Token(4)]);
        assert_eq!(lines[1].elements[0].importance, 0.2);
    }

    #[test]
    fn skipped_tokens_do_not_count_towards_the_kept_length() {
        // c a BOS b x: x fires; a is important, b and c are not. The original's index counted the
        // BOS and would have kept the wildcard for `c`; here the line ends at `a`.
        let tokens = [9, 1, BOS, 2, 5];
        let activation = [0.0, 0.0, 0.0, 0.0, 0.7];
        let importance = matrix(5, &[(1, 4, 0.9)]);
        let sample = Sample { tokens: &tokens, importance: &importance, activation: &activation };
        let lines = lines(&sample, None, &LineConfig::default(), &is_bos);
        assert_eq!(keys(&lines[0]), vec![Key::Token(5), Key::Ignore, Key::Token(1)]);
    }

    #[test]
    fn a_firing_skipped_token_starts_no_line() {
        let tokens = [BOS, 1];
        let activation = [0.9, 0.9];
        let importance = matrix(2, &[]);
        let sample = Sample { tokens: &tokens, importance: &importance, activation: &activation };
        let lines = lines(&sample, None, &LineConfig::default(), &is_bos);
        assert_eq!(lines.len(), 1);
        assert_eq!(keys(&lines[0]), vec![Key::Token(1)]);
    }

    #[test]
    fn important_positions_are_recorded_at_firing_positions_only() {
        let tokens = [BOS, 1, 2, 3];
        let activation = [0.0, 0.6, 0.1, 0.8];
        let importance = matrix(4, &[(0, 1, 0.9), (1, 1, 0.9), (0, 2, 0.9), (1, 2, 0.9), (1, 3, 0.8), (3, 3, 0.95)]);
        let sample = Sample { tokens: &tokens, importance: &importance, activation: &activation };
        let sets = important_positions(&sample, &LineConfig::default(), &is_bos);
        assert_eq!(sets, vec![vec![], vec![1], vec![], vec![1, 3]]);
    }

    #[test]
    fn augmentations_inherit_the_original_positions() {
        let config = LineConfig::default();
        let inherited = vec![vec![], vec![1], vec![], vec![1, 3]];
        // The augmentation: position 1 was substituted and is not important by its own measure.
        let tokens = [BOS, 7, 2, 3, 9, 3];
        let activation = [0.0, 0.6, 0.1, 0.8, 0.0, 0.7];
        let importance = matrix(6, &[(3, 3, 0.95), (5, 5, 0.9)]);
        let sample = Sample { tokens: &tokens, importance: &importance, activation: &activation };
        let lines = lines(&sample, Some(&inherited), &config, &is_bos);
        assert_eq!(lines.len(), 3);
        assert_eq!(keys(&lines[0]), vec![Key::Token(7)]);
        assert_eq!(keys(&lines[1]), vec![Key::Token(3), Key::Ignore, Key::Token(7)]);
        // Past the original's end the last set applies: positions 1 and 3.
        assert_eq!(keys(&lines[2]), vec![Key::Token(3), Key::Ignore, Key::Token(3), Key::Ignore, Key::Token(7)]);
        // Without inheritance the substituted token is a wildcard and is cut off.
        let plain = super::lines(&sample, None, &config, &is_bos);
        assert_eq!(keys(&plain[1]), vec![Key::Token(3)]);
    }

    #[test]
    fn short_or_ragged_inputs_read_as_zero_without_panicking() {
        let tokens = [1, 2, 3];
        let activation = [0.9];
        let importance = vec![vec![0.9]];
        let sample = Sample { tokens: &tokens, importance: &importance, activation: &activation };
        let config = LineConfig::default();
        let lines = lines(&sample, Some(&[]), &config, &is_bos);
        assert_eq!(lines.len(), 1);
        assert_eq!(keys(&lines[0]), vec![Key::Token(1)]);
        assert_eq!(important_positions(&sample, &config, &is_bos), vec![vec![0], vec![], vec![]]);
        let nan = [f32::NAN, f32::NAN, f32::NAN];
        let sample = Sample { tokens: &tokens, importance: &importance, activation: &nan };
        assert!(super::lines(&sample, None, &config, &is_bos).is_empty());
    }

    /// Lines from random matrices match a direct transcription of the spec's `make_lines` (with the
    /// skipped-token count fixed): kept tokens are exactly the important ones, in order.
    #[test]
    fn lines_match_a_direct_reading_of_the_spec() {
        let mut state = 3u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let config = LineConfig::default();
        for _ in 0..300 {
            let n = 1 + (next() * 8.0) as usize;
            let tokens: Vec<u32> = (0..n).map(|_| (next() * 4.0) as u32).collect();
            let activation: Vec<f32> = (0..n).map(|_| next()).collect();
            let importance: Vec<Vec<f32>> = (0..n).map(|_| (0..n).map(|_| next() * 1.2).collect()).collect();
            let sample = Sample { tokens: &tokens, importance: &importance, activation: &activation };
            let got = lines(&sample, None, &config, &is_bos);
            let mut want = Vec::new();
            for i in 0..n {
                if activation[i] <= 0.5 || tokens[i] == BOS {
                    continue;
                }
                let walk: Vec<usize> = (0..=i).rev().filter(|&k| tokens[k] != BOS).collect();
                let important: Vec<bool> =
                    walk.iter().enumerate().map(|(j, &k)| j == 0 || importance[k][i] > 0.75).collect();
                let last = important.iter().rposition(|&b| b).unwrap_or(0);
                let keys: Vec<Key> = walk[..=last]
                    .iter()
                    .zip(&important)
                    .map(|(&k, &imp)| if imp { Key::Token(tokens[k]) } else { Key::Ignore })
                    .collect();
                want.push((keys, activation[i]));
            }
            let got: Vec<(Vec<Key>, f32)> = got.iter().map(|l| (keys(l), l.activation)).collect();
            assert_eq!(got, want);
        }
    }
}
