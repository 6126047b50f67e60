//! Occlusion importance (spec §3): how much the neuron's activation on each token drops when one
//! earlier token is replaced by the mask token.

use super::input::BuildConfig;
use crate::N2gError;
use crate::probe::ActivationSource;

/// A prompt to measure: its tokens and the factor that puts its activations on the full context's
/// scale (see `PrunedPrompt::rescale`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Prompt {
    /// The tokens, BOS first when the model has one.
    pub(crate) tokens: Vec<u32>,
    /// Raw activations times this are on the example's full-context scale.
    pub(crate) rescale: f32,
}

/// A prompt with the neuron's normalised activation on every token and, where patterns need it,
/// the importance of each token for each later one.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MeasuredPrompt {
    /// The tokens.
    pub(crate) tokens: Vec<u32>,
    /// The neuron's activation per position, as the model computed it on this prompt.
    pub(crate) raw: Vec<f32>,
    /// Normalised activation per position: raw × rescale / the neuron's scale.
    pub(crate) activation: Vec<f32>,
    /// `importance[k][j]` = 1 − masked / unmasked activation at `j` with token `k` masked; zero for
    /// `j < k` (a causal model cannot look ahead), past the last activating position (no pattern
    /// ends there, so it is not computed), for skipped tokens, and where the unmasked activation is
    /// not positive (the ratio means nothing there).
    pub(crate) importance: Vec<Vec<f32>>,
}

impl MeasuredPrompt {
    /// Whether any token's normalised activation exceeds `threshold`, so the prompt yields patterns.
    pub(crate) fn activates(&self, threshold: f32) -> bool {
        self.activation.iter().any(|&a| a > threshold)
    }
}

/// Runs every prompt once, unmasked, in one batch: normalised activations, no importances yet.
pub(crate) fn activations(
    prompts: &[Prompt],
    layer: u32,
    neuron: u32,
    scale: f32,
    source: &dyn ActivationSource,
) -> Result<Vec<MeasuredPrompt>, N2gError> {
    let sequences: Vec<Vec<u32>> = prompts.iter().map(|p| p.tokens.clone()).collect();
    let values = source.activations(layer as usize, &[neuron], &sequences)?;
    Ok(prompts
        .iter()
        .zip(values)
        .map(|(prompt, raw)| MeasuredPrompt {
            tokens: prompt.tokens.clone(),
            activation: raw.iter().map(|&a| a * prompt.rescale / scale).collect(),
            raw,
            importance: Vec::new(),
        })
        .collect())
}

/// Fills in the importances of every prompt that activates, with all masked variants of all
/// prompts in one batch.
pub(crate) fn measure_importance(
    measured: &mut [MeasuredPrompt],
    layer: u32,
    neuron: u32,
    source: &dyn ActivationSource,
    config: &BuildConfig,
) -> Result<(), N2gError> {
    let threshold = config.lines.activation_threshold;
    // (prompt, masked position, length run) for each masked variant.
    let mut variants = Vec::new();
    let mut sequences = Vec::new();
    for (index, prompt) in measured.iter().enumerate() {
        let Some(last) = prompt.activation.iter().rposition(|&a| a > threshold) else { continue };
        for k in 0..=last {
            if config.skips(prompt.tokens[k]) {
                continue;
            }
            let mut masked = prompt.tokens[..=last].to_vec();
            masked[k] = config.mask_token;
            variants.push((index, k));
            sequences.push(masked);
        }
    }
    let values = source.activations(layer as usize, &[neuron], &sequences)?;
    for prompt in measured.iter_mut() {
        let n = prompt.tokens.len();
        prompt.importance = vec![vec![0.0; n]; n];
    }
    for ((index, k), masked) in variants.into_iter().zip(values) {
        let prompt = &mut measured[index];
        for (j, &masked_value) in masked.iter().enumerate().skip(k) {
            let unmasked = prompt.raw[j];
            if unmasked > 0.0 {
                prompt.importance[k][j] = 1.0 - masked_value / unmasked;
            }
        }
    }
    Ok(())
}
