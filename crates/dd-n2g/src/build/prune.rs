//! Pruning (spec §2): each training example cut down to the shortest left context that still makes
//! the neuron fire on its activating token, plus a few tokens after it.

use dd_data::Example;

use super::input::{BuildConfig, TokenTexts};
use crate::N2gError;
use crate::probe::ActivationSource;

/// A training example cut down to the context the neuron needs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PrunedPrompt {
    /// The prompt: BOS (when the model has one), the kept left context, the activating token, then
    /// up to `post_context` tokens of its sentence.
    pub(crate) tokens: Vec<u32>,
    /// Position of the activating token in `tokens`.
    pub(crate) pivot: usize,
    /// The example's activation on the activating token over the pruned prompt's largest: raw
    /// activations on the prompt times this are on the full context's scale (the original's rescaling).
    pub(crate) rescale: f32,
}

/// Where an example's content starts: after its BOS, which every recorded context starts with.
pub(crate) fn content_start(tokens: &[u32], bos: Option<u32>) -> usize {
    usize::from(bos.is_some() && tokens.first() == bos.as_ref())
}

/// Prunes every example in one batch of model runs; examples on which the neuron never activates
/// positively are dropped.
pub(crate) fn prune(
    examples: &[&Example],
    bos: Option<u32>,
    layer: u32,
    neuron: u32,
    source: &dyn ActivationSource,
    config: &BuildConfig,
    texts: &TokenTexts,
) -> Result<Vec<PrunedPrompt>, N2gError> {
    struct Plan {
        example: usize,
        pivot: usize,
        peak: f32,
        starts: Vec<usize>,
        first_candidate: usize,
    }
    let mut plans = Vec::new();
    let mut candidates: Vec<Vec<u32>> = Vec::new();
    for (index, example) in examples.iter().enumerate() {
        let start = content_start(&example.tokens, bos);
        let Some((pivot, peak)) = argmax(&example.activations, start) else { continue };
        if peak <= 0.0 {
            continue;
        }
        let content = pivot + 1 - start;
        let longest = content.min(config.prune.max_prefix);
        // Shortest first: multiples of `step`, and the whole prefix when it is shorter than the cap.
        let starts: Vec<usize> = (1..=longest)
            .filter(|&count| count == content || count % config.prune.step.max(1) == 0)
            .map(|count| pivot + 1 - count)
            .collect();
        let first_candidate = candidates.len();
        for &from in &starts {
            candidates.push(with_bos(bos, &example.tokens[from..=pivot]));
        }
        plans.push(Plan { example: index, pivot, peak, starts, first_candidate });
    }
    let values = source.activations(layer as usize, &[neuron], &candidates)?;
    let mut pruned = Vec::with_capacity(plans.len());
    for plan in &plans {
        let example = examples[plan.example];
        let offset = usize::from(bos.is_some());
        let mut chosen = None;
        for (i, &from) in plan.starts.iter().enumerate() {
            let run = &values[plan.first_candidate + i];
            let Some((top, top_value)) = argmax(run, offset) else { continue };
            let is_last = i + 1 == plan.starts.len();
            let sufficient = top + 1 == run.len() && top_value > config.prune.keep_ratio * plan.peak;
            if sufficient || is_last {
                chosen = Some((from, top_value));
                break;
            }
        }
        let Some((from, truncated_peak)) = chosen else { continue };
        if truncated_peak <= 0.0 {
            continue;
        }
        let sentence_end = (plan.pivot..example.tokens.len())
            .find(|&q| texts.ends_sentence(example.tokens[q]))
            .unwrap_or(example.tokens.len() - 1);
        let post_end = sentence_end.min(plan.pivot + config.prune.post_context).min(example.tokens.len() - 1);
        let mut tokens = with_bos(bos, &example.tokens[from..=plan.pivot]);
        let pivot = tokens.len() - 1;
        tokens.extend_from_slice(&example.tokens[plan.pivot + 1..=post_end.max(plan.pivot)]);
        pruned.push(PrunedPrompt { tokens, pivot, rescale: plan.peak / truncated_peak });
    }
    Ok(pruned)
}

/// `tokens` after a BOS when the model has one.
pub(crate) fn with_bos(bos: Option<u32>, tokens: &[u32]) -> Vec<u32> {
    bos.into_iter().chain(tokens.iter().copied()).collect()
}

/// Position and value of the largest value at or after `from` (the first on ties).
pub(crate) fn argmax(values: &[f32], from: usize) -> Option<(usize, f32)> {
    values.iter().enumerate().skip(from).fold(None, |best: Option<(usize, f32)>, (i, &v)| match best {
        Some((_, b)) if b >= v => best,
        _ => Some((i, v)),
    })
}
