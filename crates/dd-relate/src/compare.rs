//! How each neuron changed between two recordings of one architecture over one dataset (two
//! training checkpoints, or a base model and its fine-tune).
//!
//! Per neuron, from what both recordings stored:
//! - the change of its mean, standard deviation, maximum and density (this minus baseline);
//! - the Jaccard overlap of the two recordings' top contexts (by dataset index);
//! - the Pearson correlation of its activations on the contexts both stored (the random examples
//!   are chosen by a hash of the context and the neuron, never by activation, so two recordings of
//!   one dataset store the same ones), over every position but each context's first when the
//!   recording set the BOS position apart;
//! - a score in [0, 1] combining them ([`dd_data::change_score`]).

use std::collections::{BTreeSet, HashMap};

use dd_data::{
    ExampleGroupKind, LayerChanges, NeuronChange, NeuronDataKind, NeuronExamples, NeuronRecord, NeuronStats,
    change_score,
};
use dd_store::{SourceEntry, StoreRead};
use rayon::prelude::*;

use crate::RelateError;

/// One side of a comparison: a store and the model's `mlp` source in it.
pub struct ComparedModel<'a> {
    /// The store.
    pub store: &'a dyn StoreRead,
    /// The model's neuron source.
    pub source: &'a SourceEntry,
}

/// Every neuron's change from `baseline` to `current`, a record per layer naming `baseline_name`;
/// `progress` gets the layers done.
pub fn compare_models(
    baseline: &ComparedModel<'_>,
    current: &ComparedModel<'_>,
    baseline_name: &str,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<LayerChanges>, RelateError> {
    let shape = |source: &SourceEntry| (source.info.n_layers, source.info.units_per_layer);
    if shape(baseline.source) != shape(current.source) {
        let ((la, na), (lb, nb)) = (shape(baseline.source), shape(current.source));
        return Err(RelateError::Invalid(format!(
            "the models differ in shape: the baseline has {la} layers of {na} neurons, the other {lb} of {nb}"
        )));
    }
    let (n_layers, per_layer) = shape(current.source);
    let mut layers = Vec::with_capacity(n_layers as usize);
    for layer in 0..n_layers as u32 {
        let neurons = (0..per_layer as u32)
            .into_par_iter()
            .map(|index| neuron_change(baseline, current, layer, index))
            .collect::<Result<Vec<_>, _>>()?;
        layers.push(LayerChanges { baseline: baseline_name.to_owned(), neurons });
        progress(layer as usize + 1);
    }
    Ok(layers)
}

fn neuron_change(
    baseline: &ComparedModel<'_>,
    current: &ComparedModel<'_>,
    layer: u32,
    index: u32,
) -> Result<NeuronChange, RelateError> {
    let stats = |side: &ComparedModel<'_>| -> Result<NeuronStats, RelateError> {
        match side.store.neuron_record(side.source, layer, index, NeuronDataKind::Stats)? {
            Some(NeuronRecord::Stats(stats)) => Ok(stats),
            _ => Err(RelateError::Invalid(format!("neuron {layer}/{index} has no statistics to compare"))),
        }
    };
    let examples = |side: &ComparedModel<'_>| -> Result<NeuronExamples, RelateError> {
        match side.store.neuron_record(side.source, layer, index, NeuronDataKind::Examples)? {
            Some(NeuronRecord::Examples(examples)) => Ok(examples),
            _ => Ok(NeuronExamples::default()),
        }
    };
    let (stats_a, stats_b) = (stats(baseline)?, stats(current)?);
    let (examples_a, examples_b) = (examples(baseline)?, examples(current)?);
    let top = |examples: &NeuronExamples| -> BTreeSet<u64> {
        examples
            .groups
            .iter()
            .filter(|group| group.kind == ExampleGroupKind::Top)
            .flat_map(|group| group.examples.iter().map(|example| example.dataset_index))
            .collect()
    };
    let (top_a, top_b) = (top(&examples_a), top(&examples_b));
    let union = top_a.union(&top_b).count();
    let top_overlap = if union == 0 { 1.0 } else { top_a.intersection(&top_b).count() as f32 / union as f32 };

    let stored_a: HashMap<u64, (&[u32], &[f32])> = examples_a
        .groups
        .iter()
        .flat_map(|group| &group.examples)
        .map(|example| (example.dataset_index, (example.tokens.as_slice(), example.activations.as_slice())))
        .collect();
    let first = usize::from(stats_a.bos.is_some() || stats_b.bos.is_some());
    let mut seen = BTreeSet::new();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for example in examples_b.groups.iter().flat_map(|group| &group.examples) {
        let Some(&(tokens, activations)) = stored_a.get(&example.dataset_index) else { continue };
        if tokens != example.tokens.as_slice() || !seen.insert(example.dataset_index) {
            continue;
        }
        xs.extend(activations.iter().skip(first).map(|&v| f64::from(v)));
        ys.extend(example.activations.iter().skip(first).map(|&v| f64::from(v)));
    }
    let activation_correlation = pearson(&xs, &ys);
    let (std_a, std_b) = (stats_a.variance.max(0.0).sqrt(), stats_b.variance.max(0.0).sqrt());
    Ok(NeuronChange {
        mean_change: (stats_b.mean - stats_a.mean) as f32,
        std_change: (std_b - std_a) as f32,
        max_change: (stats_b.max - stats_a.max) as f32,
        density_change: (stats_b.density - stats_a.density) as f32,
        top_overlap,
        shared_contexts: seen.len() as u32,
        activation_correlation,
        score: change_score(top_overlap, activation_correlation, std_a, std_b),
    })
}

/// Pearson's r, `None` for fewer than two pairs or a constant side.
pub(crate) fn pearson(xs: &[f64], ys: &[f64]) -> Option<f32> {
    if xs.len() < 2 || xs.len() != ys.len() {
        return None;
    }
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0) as f32)
}
