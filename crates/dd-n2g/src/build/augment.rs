//! Augmentation (spec §4): variants of each pruned prompt with its important tokens replaced, so
//! that patterns generalise beyond the exact tokens of the top examples.
//!
//! The original asked DistilBERT for replacement words; no masked language model is available
//! offline, and word-level replacements fit subword tokens badly anyway. Replacements come from a
//! [`Substitutes`] (the model's embedding neighbours by default), work on token ids, and a variant
//! counts only where the neuron still fires on it (checked by running it: only prompts whose tokens
//! exceed the firing threshold yield patterns, as in the original).

use std::collections::HashSet;

use super::importance::{MeasuredPrompt, Prompt};
use super::input::BuildConfig;
use crate::N2gError;
use crate::substitutes::Substitutes;

/// The variants of one measured prompt: each token at or before the activating one whose
/// importance for it reaches the threshold, replaced in turn by each substitute. Prompts already in
/// `seen` are skipped, so two examples with the same context do not double their patterns.
pub(crate) fn variants(
    original: &MeasuredPrompt,
    pivot: usize,
    rescale: f32,
    substitutes: &dyn Substitutes,
    config: &BuildConfig,
    seen: &mut HashSet<Vec<u32>>,
) -> Result<Vec<Prompt>, N2gError> {
    let mut out = Vec::new();
    if config.augment.substitutes == 0 || original.importance.is_empty() {
        return Ok(out);
    }
    for k in 0..=pivot.min(original.tokens.len().saturating_sub(1)) {
        if config.skips(original.tokens[k]) || original.importance[k][pivot] < config.augment.importance_threshold {
            continue;
        }
        for replacement in substitutes.substitutes(&original.tokens, k, config.augment.substitutes)? {
            if replacement == original.tokens[k] || config.skips(replacement) {
                continue;
            }
            let mut tokens = original.tokens.clone();
            tokens[k] = replacement;
            if seen.insert(tokens.clone()) {
                out.push(Prompt { tokens, rescale });
            }
        }
    }
    Ok(out)
}
