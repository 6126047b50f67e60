//! The running record of every neuron of a model: one pass over the activations of each batch.
//!
//! Neurons are processed in chunks of [`CHUNK`] from one layer, spread over rayon; each chunk
//! transposes its slice of the batch once so that every neuron reads its values contiguously.

pub(crate) mod grid;
pub(crate) mod moments;
mod neuron;
pub(crate) mod selection;

use rayon::prelude::*;

pub use neuron::SelectionSizes;
pub(crate) use neuron::{BandSamples, ContextsView, GridHistogram, NeuronAccumulator};

/// Neurons per unit of parallel work: big enough to amortise the task, small enough that a chunk's
/// transposed batch (64 × 1024 f32, 256 KiB) stays in cache.
pub(crate) const CHUNK: usize = 64;

/// Marks a vocabulary entry without a token-table slot.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// What to keep per neuron.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccumulatorConfig {
    /// Example selections.
    pub sizes: SelectionSizes,
    /// Most histogram bins (the histogram uses between half of them and all).
    pub histogram_bins: u32,
}

/// The tokens whose mean activation is tracked for every neuron, and how often each occurred.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenSlots {
    /// Slot of each vocabulary id, or [`NO_SLOT`].
    pub(crate) slot_of: Vec<u32>,
    /// Token id of each slot.
    pub(crate) tokens: Vec<u32>,
    /// Occurrences of each slot's token in the recorded contexts.
    pub(crate) counts: Vec<u64>,
}

/// A run of neurons of one layer, with its share of the token table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NeuronChunk {
    pub(crate) layer: u32,
    pub(crate) first: u32,
    pub(crate) neurons: Vec<NeuronAccumulator>,
    /// Sum of activations per tracked token: `token_sums[slot * neurons.len() + j]`.
    pub(crate) token_sums: Vec<f32>,
}

/// Everything recorded so far about every neuron.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelAccumulator {
    pub(crate) n_layers: u32,
    pub(crate) d_mlp: u32,
    pub(crate) chunks: Vec<NeuronChunk>,
    pub(crate) token_slots: TokenSlots,
}

/// One batch of activations, `layers[l][(c * positions + p) * d_mlp + neuron]`.
pub(crate) struct BatchActivations<'a> {
    pub(crate) layers: Vec<&'a [f32]>,
    pub(crate) contexts: ContextsView<'a>,
    /// Token ids, `tokens[c * positions + p]`.
    pub(crate) tokens: &'a [u32],
}

impl TokenSlots {
    /// Tracks `tokens` (distinct ids below `vocab_size`) in the given order.
    pub(crate) fn new(vocab_size: usize, tokens: Vec<u32>) -> Self {
        let mut slot_of = vec![NO_SLOT; vocab_size];
        for (slot, &token) in tokens.iter().enumerate() {
            if let Some(entry) = slot_of.get_mut(token as usize) {
                *entry = slot as u32;
            }
        }
        let counts = vec![0; tokens.len()];
        Self { slot_of, tokens, counts }
    }

    fn slot(&self, token: u32) -> Option<usize> {
        match self.slot_of.get(token as usize) {
            Some(&slot) if slot != NO_SLOT => Some(slot as usize),
            _ => None,
        }
    }
}

impl ModelAccumulator {
    /// An empty record for `n_layers × d_mlp` neurons.
    pub(crate) fn new(n_layers: u32, d_mlp: u32, config: &AccumulatorConfig, token_slots: TokenSlots) -> Self {
        let n_slots = token_slots.tokens.len();
        let chunks = (0..n_layers)
            .flat_map(|layer| (0..d_mlp).step_by(CHUNK).map(move |first| (layer, first)))
            .map(|(layer, first)| {
                let width = (d_mlp - first).min(CHUNK as u32) as usize;
                NeuronChunk {
                    layer,
                    first,
                    neurons: (0..width).map(|_| NeuronAccumulator::new(&config.sizes, config.histogram_bins)).collect(),
                    token_sums: vec![0.0; n_slots * width],
                }
            })
            .collect();
        Self { n_layers, d_mlp, chunks, token_slots }
    }

    /// Takes one batch of every layer's activations.
    pub(crate) fn accumulate(&mut self, batch: &BatchActivations<'_>) {
        let d_mlp = self.d_mlp as usize;
        let positions = batch.contexts.positions;
        let n_rows = batch.contexts.lengths.len() * positions;
        let token_slots = &self.token_slots;
        let row_slots: Vec<Option<usize>> = (0..n_rows)
            .map(|row| {
                let (c, p) = (row / positions, row % positions);
                if p < batch.contexts.lengths[c] { token_slots.slot(batch.tokens[row]) } else { None }
            })
            .collect();
        self.chunks.par_iter_mut().for_each_init(Vec::new, |scratch: &mut Vec<f32>, chunk| {
            let values = batch.layers[chunk.layer as usize];
            let (first, width) = (chunk.first as usize, chunk.neurons.len());
            scratch.resize(width * n_rows, 0.0);
            for row in 0..n_rows {
                let source = &values[row * d_mlp + first..row * d_mlp + first + width];
                for (j, &x) in source.iter().enumerate() {
                    scratch[j * n_rows + row] = x;
                }
                if let Some(slot) = row_slots[row] {
                    let sums = &mut chunk.token_sums[slot * width..(slot + 1) * width];
                    sums.iter_mut().zip(source).for_each(|(sum, &x)| *sum += x);
                }
            }
            for (j, neuron) in chunk.neurons.iter_mut().enumerate() {
                let index = (first + j) as u32;
                neuron.accumulate(chunk.layer, index, &scratch[j * n_rows..(j + 1) * n_rows], &batch.contexts);
            }
        });
        for slot in row_slots.into_iter().flatten() {
            self.token_slots.counts[slot] += 1;
        }
    }

    /// The record of one neuron.
    pub(crate) fn neuron(&self, layer: u32, index: u32) -> Option<&NeuronAccumulator> {
        let chunks_per_layer = (self.d_mlp as usize).div_ceil(CHUNK);
        let chunk = self.chunks.get(layer as usize * chunks_per_layer + index as usize / CHUNK)?;
        chunk.neurons.get(index as usize % CHUNK)
    }

    /// Mean activation of a neuron on each tracked token seen at least `min_count` times, highest first.
    pub(crate) fn token_means(&self, layer: u32, index: u32, min_count: u64, limit: usize) -> Vec<(u32, f32, u64)> {
        let chunks_per_layer = (self.d_mlp as usize).div_ceil(CHUNK);
        let Some(chunk) = self.chunks.get(layer as usize * chunks_per_layer + index as usize / CHUNK) else {
            return Vec::new();
        };
        let (j, width) = (index as usize % CHUNK, chunk.neurons.len());
        let mut means: Vec<(u32, f32, u64)> = (self.token_slots.tokens.iter().zip(&self.token_slots.counts))
            .enumerate()
            .filter(|(_, (_, count))| **count >= min_count.max(1))
            .map(|(slot, (&token, &count))| (token, chunk.token_sums[slot * width + j] / count as f32, count))
            .collect();
        means.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        means.truncate(limit);
        means
    }

    /// Folds a shard's record (same shape and tracked tokens) into this one.
    pub(crate) fn merge(&mut self, other: ModelAccumulator) {
        for (mine, theirs) in self.chunks.iter_mut().zip(other.chunks) {
            for (a, b) in mine.neurons.iter_mut().zip(theirs.neurons) {
                a.merge(b);
            }
            mine.token_sums.iter_mut().zip(theirs.token_sums).for_each(|(a, b)| *a += b);
        }
        self.token_slots.counts.iter_mut().zip(other.token_slots.counts).for_each(|(a, b)| *a += b);
    }
}
