//! One neuron's graph from its recorded examples: the training examples pruned, measured by
//! occlusion and augmented, their patterns fitted into a trie, and the result scored on held-out
//! top examples and on random ones.
//!
//! Work is batched per step: all pruning candidates of a neuron run in one call to the
//! [`ActivationSource`], then all pruned prompts, all their masked variants, all augmented prompts
//! and their masked variants; a [`ModelProbe`](crate::probe::ModelProbe) batches those sequences
//! and caches whole-layer rows, so neurons of one layer built together share prompts they have in
//! common. Forward passes stop at the neuron's layer.

mod augment;
mod importance;
mod input;
mod prune;
mod score;

use std::collections::HashSet;

use dd_data::{GraphScores, NeuronGraph};

pub use input::{AugmentConfig, BuildConfig, NeuronInput, PruneConfig, TokenTexts};

use crate::N2gError;
use crate::lines::{Sample, important_positions, lines};
use crate::probe::ActivationSource;
use crate::substitutes::Substitutes;
use crate::trie::{PatternBuilder, Patterns, fires};
use importance::{MeasuredPrompt, Prompt};

/// A built graph: the fitted patterns (which predict the neuron on any text), the stored form with
/// its scores, and what building it took.
#[derive(Clone, Debug)]
pub struct BuiltGraph {
    /// The prediction trie and graph view.
    pub patterns: Patterns,
    /// The graph as stored and served, with scores.
    pub graph: NeuronGraph,
    /// What the build did.
    pub work: BuildWork,
}

/// What building one graph took, for progress reports and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildWork {
    /// Training examples that yielded a pruned prompt.
    pub pruned_prompts: usize,
    /// Augmented prompts tried.
    pub augmented_tried: usize,
    /// Augmented prompts on which the neuron still fired, and so added patterns.
    pub augmented_kept: usize,
    /// Patterns inserted.
    pub lines: usize,
}

/// Builds one neuron's graph.
///
/// `bos` is the token every recorded context starts with, if the model has one.
pub fn build_neuron(
    input: &NeuronInput,
    bos: Option<u32>,
    source: &dyn ActivationSource,
    substitutes: &dyn Substitutes,
    texts: &TokenTexts,
    config: &BuildConfig,
) -> Result<BuiltGraph, N2gError> {
    if !(input.scale > 0.0 && input.scale.is_finite()) {
        return Err(N2gError::Invalid(format!(
            "neuron {}/{} never activates above 0 (maximum {}), so it has no pattern to find",
            input.layer, input.neuron, input.scale
        )));
    }
    let (train, test) = split(&input.top, config.train_examples);
    let (layer, neuron, scale) = (input.layer, input.neuron, input.scale);
    let threshold = config.lines.activation_threshold;

    let pruned = prune::prune(&train, bos, layer, neuron, source, config, texts)?;
    let originals: Vec<Prompt> =
        pruned.iter().map(|p| Prompt { tokens: p.tokens.clone(), rescale: p.rescale }).collect();
    let mut measured = importance::activations(&originals, layer, neuron, scale, source)?;
    importance::measure_importance(&mut measured, layer, neuron, source, config)?;

    // Variants of every original, tried together; only those that still fire are measured.
    let mut seen: HashSet<Vec<u32>> = originals.iter().map(|p| p.tokens.clone()).collect();
    let mut tried: Vec<(usize, Prompt)> = Vec::new();
    for (index, (original, prompt)) in measured.iter().zip(&pruned).enumerate() {
        for variant in augment::variants(original, prompt.pivot, prompt.rescale, substitutes, config, &mut seen)? {
            tried.push((index, variant));
        }
    }
    let variant_prompts: Vec<Prompt> = tried.iter().map(|(_, p)| p.clone()).collect();
    let variant_runs = importance::activations(&variant_prompts, layer, neuron, scale, source)?;
    let (mut kept, kept_origin): (Vec<MeasuredPrompt>, Vec<usize>) = variant_runs
        .into_iter()
        .zip(&tried)
        .filter(|(run, _)| run.activates(threshold))
        .map(|(run, (origin, _))| (run, *origin))
        .unzip();
    match config.augment.remeasure_variants {
        true => importance::measure_importance(&mut kept, layer, neuron, source, config)?,
        // Same length as its original (one token replaced), so the matrix fits. Its importances
        // were measured only where the original fired, so only there may the variant make patterns:
        // elsewhere every context token would read as unimportant, and the pattern would be the
        // activating token alone.
        false => kept.iter_mut().zip(&kept_origin).for_each(|(variant, &origin)| {
            let original = &measured[origin];
            variant.importance = original.importance.clone();
            for (activation, &was) in variant.activation.iter_mut().zip(&original.activation) {
                if !fires(was, threshold) {
                    *activation = activation.min(threshold);
                }
            }
        }),
    }

    // Patterns in the original's order: each example's pruned prompt, then its variants.
    let skip = |token: u32| config.skips(token);
    let mut builder = PatternBuilder::new(threshold);
    let mut work =
        BuildWork { pruned_prompts: pruned.len(), augmented_tried: tried.len(), augmented_kept: kept.len(), lines: 0 };
    for (index, original) in measured.iter().enumerate() {
        if original.importance.is_empty() {
            continue;
        }
        let original_sample = sample(original);
        let inherited = important_positions(&original_sample, &config.lines, &skip);
        for line in lines(&original_sample, None, &config.lines, &skip) {
            builder.insert(&line);
            work.lines += 1;
        }
        for variant in kept.iter().zip(&kept_origin).filter(|(_, origin)| **origin == index).map(|(v, _)| v) {
            for line in lines(&sample(variant), Some(&inherited), &config.lines, &skip) {
                builder.insert(&line);
                work.lines += 1;
            }
        }
    }
    let patterns = builder.finish();
    let random: Vec<&dd_data::Example> = input.random.iter().collect();
    let scores = GraphScores {
        threshold,
        scale,
        held_out_top: score::firing_counts(&test, &patterns, scale, threshold, bos),
        random: score::firing_counts(&random, &patterns, scale, threshold, bos),
    };
    let mut graph = patterns.graph(&|token| texts.text(token));
    graph.scores = Some(scores);
    Ok(BuiltGraph { patterns, graph, work })
}

/// Training and held-out examples: ranks 0, 2, 4, … train (up to `n_train`), the rest are held out,
/// so both halves span the whole range of the top examples (the original split at random).
fn split(top: &[dd_data::Example], n_train: usize) -> (Vec<&dd_data::Example>, Vec<&dd_data::Example>) {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (rank, example) in top.iter().enumerate() {
        match rank % 2 == 0 && train.len() < n_train {
            true => train.push(example),
            false => test.push(example),
        }
    }
    (train, test)
}

fn sample(prompt: &MeasuredPrompt) -> Sample<'_> {
    Sample { tokens: &prompt.tokens, importance: &prompt.importance, activation: &prompt.activation }
}
