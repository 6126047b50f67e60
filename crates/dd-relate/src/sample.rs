//! The tokens relations are measured on: a deterministic sample of the recording's own contexts.
//!
//! Every neuron's stored random examples are uniform samples of the recorded contexts, chosen by a
//! hash of the context and the neuron, never by activation; their union is therefore a uniform
//! sample too, and it is in the database, so no dataset file is needed again. Neurons are read in
//! order until the union holds twice the token budget (or all are read), the contexts are ordered
//! by a seeded hash of their dataset index, and the first ones are taken until the budget is met
//! (the last one cut short: a causal model's earlier positions do not depend on later ones).

use std::collections::BTreeMap;

use dd_data::{ExampleGroupKind, NeuronDataKind, NeuronRecord};
use dd_store::{SourceEntry, StoreRead};
use rayon::prelude::*;

use crate::RelateError;
use crate::hash::mix;

/// One context of the sample.
#[derive(Clone, Debug, PartialEq)]
pub struct SampledContext {
    /// Index of the context in the recorded dataset.
    pub dataset_index: u64,
    /// Its token ids, the first included even when it is not measured.
    pub tokens: Vec<u32>,
}

/// The contexts whose tokens relations are measured on.
#[derive(Clone, Debug, PartialEq)]
pub struct ContextSample {
    /// The contexts, in sample order.
    pub contexts: Vec<SampledContext>,
    /// Whether each context's first position (the BOS token the recorder starts it with) is left out.
    pub skip_first: bool,
}

impl ContextSample {
    /// Positions measured, over all contexts.
    pub fn tokens(&self) -> usize {
        self.contexts.iter().map(|context| self.measured(context)).sum()
    }

    /// Positions of `context` that are measured.
    pub fn measured(&self, context: &SampledContext) -> usize {
        context.tokens.len().saturating_sub(usize::from(self.skip_first))
    }

    /// `(context, position)` of every measured token, in the order they are sampled.
    pub fn positions(&self) -> Vec<(u32, u32)> {
        let first = u32::from(self.skip_first);
        self.contexts
            .iter()
            .enumerate()
            .flat_map(|(i, context)| (first..context.tokens.len() as u32).map(move |p| (i as u32, p)))
            .collect()
    }
}

/// Neurons whose examples are decoded at a time.
const READ_CHUNK: usize = 256;

/// About `budget` measured tokens of the contexts in `source`'s stored random examples, chosen by
/// `seed`; `skip_first` leaves out each context's first position.
pub fn sample_contexts(
    reader: &dyn StoreRead,
    source: &SourceEntry,
    budget: usize,
    skip_first: bool,
    seed: u64,
) -> Result<ContextSample, RelateError> {
    let (n_layers, per_layer) = (source.info.n_layers as u32, source.info.units_per_layer as u32);
    let neurons: Vec<(u32, u32)> =
        (0..n_layers).flat_map(|layer| (0..per_layer).map(move |index| (layer, index))).collect();
    let mut found = BTreeMap::<u64, Vec<u32>>::new();
    let mut found_tokens = 0usize;
    for chunk in neurons.chunks(READ_CHUNK) {
        if found_tokens >= budget.saturating_mul(2) {
            break;
        }
        let examples: Vec<Vec<(u64, Vec<u32>)>> = chunk
            .par_iter()
            .map(|&(layer, index)| -> Result<_, RelateError> {
                let Some(NeuronRecord::Examples(examples)) =
                    reader.neuron_record(source, layer, index, NeuronDataKind::Examples)?
                else {
                    return Ok(Vec::new());
                };
                Ok(examples
                    .groups
                    .into_iter()
                    .filter(|group| group.kind == ExampleGroupKind::Random)
                    .flat_map(|group| group.examples)
                    .map(|example| (example.dataset_index, example.tokens))
                    .collect())
            })
            .collect::<Result<_, _>>()?;
        for (dataset_index, tokens) in examples.into_iter().flatten() {
            if let std::collections::btree_map::Entry::Vacant(slot) = found.entry(dataset_index) {
                found_tokens += tokens.len().saturating_sub(usize::from(skip_first));
                slot.insert(tokens);
            }
        }
    }
    if found.is_empty() {
        return Err(RelateError::Invalid(
            "the recording has no random examples to sample contexts from (record with random examples)".into(),
        ));
    }
    let mut ordered: Vec<(u64, u64)> = found.keys().map(|&index| (mix(index ^ seed), index)).collect();
    ordered.sort_unstable();
    let mut sample = ContextSample { contexts: Vec::new(), skip_first };
    let mut taken = 0usize;
    for (_, dataset_index) in ordered {
        if taken >= budget {
            break;
        }
        let mut tokens = found.remove(&dataset_index).unwrap_or_default();
        let first = usize::from(skip_first);
        let measured = tokens.len().saturating_sub(first);
        if measured == 0 {
            continue;
        }
        let keep = measured.min(budget - taken);
        tokens.truncate(first + keep);
        taken += keep;
        sample.contexts.push(SampledContext { dataset_index, tokens });
    }
    Ok(sample)
}
