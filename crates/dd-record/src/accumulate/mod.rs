//! The running record of every neuron of a model: one pass over the activations of each batch.
//!
//! Neurons are processed in chunks of [`CHUNK`] from one layer, spread over rayon; each chunk
//! transposes its slice of the batch once so that every neuron reads its values contiguously.

pub(crate) mod grid;
pub(crate) mod moments;
mod neuron;
pub(crate) mod selection;

use rayon::prelude::*;

use grid::whole_to_i32;
use moments::ShiftedSums;
pub use neuron::SelectionSizes;
pub(crate) use neuron::{BandSamples, BosValues, ContextExtremes, ContextsView, GridHistogram, NeuronAccumulator};

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

/// A NaN or infinite activation: the model's output cannot be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonFinite {
    pub(crate) layer: u32,
    pub(crate) neuron: u32,
    pub(crate) context: u64,
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
    /// Sum of activations per tracked token: `token_sums[slot * neurons.len() + j]`, in f64 because
    /// a frequent token's sum runs over millions of occurrences.
    pub(crate) token_sums: Vec<f64>,
}

/// Everything recorded so far about every neuron.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelAccumulator {
    pub(crate) n_layers: u32,
    pub(crate) d_mlp: u32,
    /// Whether every context starts with a BOS token whose activations are kept apart
    /// ([`NeuronAccumulator::bos`]) instead of entering statistics, selections and the token table.
    pub(crate) bos_apart: bool,
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

thread_local! {
    /// Each worker's per-chunk buffers, reused across chunks and batches.
    static SCRATCH: std::cell::RefCell<ChunkScratch> = std::cell::RefCell::new(ChunkScratch::default());
}

/// Per-neuron running values of one chunk during one batch, as arrays so the row loop vectorises.
#[derive(Default)]
struct ChunkScratch {
    /// Each neuron's shift (its running mean, rounded to f32 so the f32 context sums and the f64
    /// batch sums use the same value); the batch's sums of powers of `x − shift` follow.
    shift: Vec<f32>,
    s1: Vec<f64>,
    s2: Vec<f64>,
    s3: Vec<f64>,
    s4: Vec<f64>,
    positive: Vec<u32>,
    max: Vec<f32>,
    max_at: Vec<u32>,
    min: Vec<f32>,
    min_at: Vec<u32>,
    column: Vec<f32>,
    /// One token's rows of the batch, summed before they go into the token table.
    token_partial: Vec<f32>,
    /// The current context's rows of this chunk, `[position * width + j]`.
    context_rows: Vec<f32>,
    /// Each neuron's histogram grid, copied into arrays so the per-value work stays in L1, and the
    /// batch's counts per bin, `[j * n_bins + bin]`, added to the neurons' histograms at the end.
    hist_lo: Vec<f32>,
    hist_hi: Vec<f32>,
    hist_inverse_width: Vec<f64>,
    hist_start: Vec<f64>,
    /// This row's bin per neuron, or -1 where the value falls outside the neuron's range.
    hist_bins: Vec<i32>,
    hist_pending: Vec<u32>,
    n_bins: usize,
    /// The first neuron (index in the chunk) that saw a NaN or infinite activation this batch.
    non_finite: Option<usize>,
}

impl ChunkScratch {
    fn reset(&mut self, neurons: &[NeuronAccumulator]) {
        let width = neurons.len();
        self.non_finite = None;
        self.shift.clear();
        // The shift only has to be near the mean.
        self.shift.extend(neurons.iter().map(|n| n.moments.mean as f32));
        for sums in [&mut self.s1, &mut self.s2, &mut self.s3, &mut self.s4] {
            sums.clear();
            sums.resize(width, 0.0);
        }
        self.positive.clear();
        self.positive.resize(width, 0);
        for (extreme, value) in [(&mut self.max, f32::NEG_INFINITY), (&mut self.min, f32::INFINITY)] {
            extreme.clear();
            extreme.resize(width, value);
        }
        self.max_at.clear();
        self.max_at.resize(width, 0);
        self.min_at.clear();
        self.min_at.resize(width, 0);
    }

    fn load_histograms(&mut self, neurons: &[NeuronAccumulator]) {
        self.n_bins = neurons.first().map_or(0, |n| n.histogram.counts.len());
        self.hist_pending.clear();
        self.hist_pending.resize(neurons.len() * self.n_bins, 0);
        self.hist_lo.resize(neurons.len(), 0.0);
        self.hist_hi.resize(neurons.len(), 0.0);
        self.hist_inverse_width.resize(neurons.len(), 0.0);
        self.hist_start.resize(neurons.len(), 0.0);
        self.hist_bins.resize(neurons.len(), 0);
        for (j, neuron) in neurons.iter().enumerate() {
            self.load_histogram(j, &neuron.histogram);
        }
    }

    fn load_histogram(&mut self, j: usize, histogram: &GridHistogram) {
        self.hist_lo[j] = histogram.grid.min;
        self.hist_hi[j] = histogram.grid.max;
        self.hist_inverse_width[j] = histogram.inverse_width;
        // Exact: the grid keeps bin indices below 2^50.
        self.hist_start[j] = histogram.grid.start as f64;
    }

    /// Moves neuron `j`'s pending counts into its histogram.
    fn flush_histogram(&mut self, j: usize, histogram: &mut GridHistogram) {
        flush_pending(&mut self.hist_pending[j * self.n_bins..(j + 1) * self.n_bins], histogram);
    }

    /// Counts one row in the histograms: the bins of all values at once (vectorised), then an L1
    /// increment each, unless a value falls outside its neuron's range so far, which moves that
    /// neuron's grid.
    #[inline(always)]
    fn histogram_row(&mut self, row: &[f32], neurons: &mut [NeuronAccumulator]) {
        let n_bins = self.n_bins;
        let width = row.len();
        // Plain slices, not `self.field[..]` in the loops: the compiler then knows a count's store
        // cannot move another array, and keeps their addresses in registers.
        let (lo, hi) = (&mut self.hist_lo[..width], &mut self.hist_hi[..width]);
        let (inverse_width, start) = (&mut self.hist_inverse_width[..width], &mut self.hist_start[..width]);
        let (bins, pending) = (&mut self.hist_bins[..width], &mut self.hist_pending[..]);
        for j in 0..width {
            let x = row[j];
            let bin = whole_to_i32((f64::from(x) * inverse_width[j]).floor() - start[j]);
            bins[j] = if x >= lo[j] && x <= hi[j] { bin } else { -1 };
        }
        // The common case alone first, in a loop of a load, a compare and an increment: -1 (out of
        // range) reads as u32::MAX and matches no bin.
        let mut outside = false;
        for (counts, &bin) in pending.chunks_exact_mut(n_bins).zip(bins.iter()) {
            match counts.get_mut(bin as u32 as usize) {
                Some(count) => *count += 1,
                None => outside = true,
            }
        }
        if !outside {
            return;
        }
        for j in 0..width {
            if bins[j] >= 0 {
                continue;
            }
            if !row[j].is_finite() {
                // NaN and ±inf never pass the range test above, so they all arrive here.
                self.non_finite.get_or_insert(j);
                continue;
            }
            let histogram = &mut neurons[j].histogram;
            flush_pending(&mut pending[j * n_bins..(j + 1) * n_bins], histogram);
            histogram.add(row[j]);
            (lo[j], hi[j]) = (histogram.grid.min, histogram.grid.max);
            (inverse_width[j], start[j]) = (histogram.inverse_width, histogram.grid.start as f64);
        }
    }

    /// Takes one context's rows (`[position * width + j]`): every neuron's extremes and where
    /// they are, its positive count, and its sums of powers around its shift. One vector of neurons
    /// at a time runs down the context with all of that in registers; the few neurons past the last
    /// whole vector take the same steps one by one.
    #[inline(always)]
    fn add_context<S: pulp::Simd>(&mut self, simd: S, rows: &[f32], width: usize) {
        let lanes = S::F32_LANES;
        let whole = width / lanes * lanes;
        let load = |values: &[f32]| S::as_simd_f32s(values).0[0];
        let (zero, one) = (simd.splat_f32s(0.0), simd.splat_f32s(1.0));
        for first in (0..whole).step_by(lanes) {
            let shift = load(&self.shift[first..first + lanes]);
            let (mut max, mut min) = (simd.splat_f32s(f32::NEG_INFINITY), simd.splat_f32s(f32::INFINITY));
            let (mut max_at, mut min_at, mut positive) = (zero, zero, zero);
            let (mut c1, mut c2, mut c3, mut c4) = (zero, zero, zero, zero);
            for (position, row) in rows.chunks_exact(width).enumerate() {
                let x = load(&row[first..first + lanes]);
                // Positions as f32 are exact (contexts are far shorter than 2^24).
                let at = simd.splat_f32s(position as f32);
                let above = simd.greater_than_f32s(x, max);
                max = simd.select_f32s(above, x, max);
                max_at = simd.select_f32s(above, at, max_at);
                let below = simd.less_than_f32s(x, min);
                min = simd.select_f32s(below, x, min);
                min_at = simd.select_f32s(below, at, min_at);
                positive = simd.add_f32s(positive, simd.select_f32s(simd.greater_than_f32s(x, zero), one, zero));
                // f32 within a context (at most a few thousand terms around the running mean),
                // f64 across contexts.
                let d = simd.sub_f32s(x, shift);
                let d2 = simd.mul_f32s(d, d);
                c1 = simd.add_f32s(c1, d);
                c2 = simd.add_f32s(c2, d2);
                c3 = simd.mul_add_f32s(d2, d, c3);
                c4 = simd.mul_add_f32s(d2, d2, c4);
            }
            // A vector's lanes as an array (at most 16 lanes: AVX-512).
            let store = |values: S::f32s| {
                let mut lanes_of = [0f32; 16];
                S::as_mut_simd_f32s(&mut lanes_of[..lanes]).0[0] = values;
                lanes_of
            };
            self.max[first..first + lanes].copy_from_slice(&store(max)[..lanes]);
            self.min[first..first + lanes].copy_from_slice(&store(min)[..lanes]);
            for (at, &position) in self.max_at[first..first + lanes].iter_mut().zip(&store(max_at)) {
                *at = position as u32;
            }
            for (at, &position) in self.min_at[first..first + lanes].iter_mut().zip(&store(min_at)) {
                *at = position as u32;
            }
            for (count, &more) in self.positive[first..first + lanes].iter_mut().zip(&store(positive)) {
                *count += more as u32;
            }
            for (sums, partial) in [(&mut self.s1, c1), (&mut self.s2, c2), (&mut self.s3, c3), (&mut self.s4, c4)] {
                for (sum, &value) in sums[first..first + lanes].iter_mut().zip(&store(partial)) {
                    *sum += f64::from(value);
                }
            }
        }
        for j in whole..width {
            let shift = self.shift[j];
            let (mut max, mut min, mut max_at, mut min_at) = (f32::NEG_INFINITY, f32::INFINITY, 0, 0);
            let (mut c1, mut c2, mut c3, mut c4) = (0f32, 0f32, 0f32, 0f32);
            for (position, &x) in rows[j..].iter().step_by(width).enumerate() {
                if x > max {
                    (max, max_at) = (x, position as u32);
                }
                if x < min {
                    (min, min_at) = (x, position as u32);
                }
                self.positive[j] += u32::from(x > 0.0);
                let d = x - shift;
                let d2 = d * d;
                c1 += d;
                c2 += d2;
                c3 += d2 * d;
                c4 += d2 * d2;
            }
            (self.max[j], self.min[j], self.max_at[j], self.min_at[j]) = (max, min, max_at, min_at);
            self.s1[j] += f64::from(c1);
            self.s2[j] += f64::from(c2);
            self.s3[j] += f64::from(c3);
            self.s4[j] += f64::from(c4);
        }
    }
}

/// Adds a neuron's pending bin counts to its histogram and clears them.
fn flush_pending(pending: &mut [u32], histogram: &mut GridHistogram) {
    for (count, pending) in histogram.counts.iter_mut().zip(pending.iter_mut()) {
        *count += u64::from(*pending);
        histogram.grid.count += u64::from(*pending);
        *pending = 0;
    }
}

/// Accumulates one chunk of neurons over a batch, row by row (a row is one token's activations of
/// the chunk's neurons, contiguous in the batch), and adds each row to the token table.
fn accumulate_chunk(
    chunk: &mut NeuronChunk,
    batch: &BatchActivations<'_>,
    slot_rows: &[(usize, usize)],
    scratch: &mut ChunkScratch,
    d_mlp: usize,
    skip: usize,
) -> Result<(), NonFinite> {
    // Compiled again for the CPU's vector extensions (AVX2 and FMA where present) and chosen at run
    // time: the baseline x86-64 target has 2-wide f64 and no rounding instruction, which made the
    // per-value work three times slower.
    pulp::Arch::new().dispatch(ChunkPass { chunk, batch, slot_rows, scratch, d_mlp, skip })
}

/// [`accumulate_chunk`]'s arguments as a `WithSimd` type, not a closure, so that pulp inlines the
/// work into its target-feature function.
struct ChunkPass<'a, 'b> {
    chunk: &'a mut NeuronChunk,
    batch: &'a BatchActivations<'b>,
    slot_rows: &'a [(usize, usize)],
    scratch: &'a mut ChunkScratch,
    d_mlp: usize,
    skip: usize,
}

impl pulp::WithSimd for ChunkPass<'_, '_> {
    type Output = Result<(), NonFinite>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) -> Self::Output {
        accumulate_chunk_with_simd(simd, self.chunk, self.batch, self.slot_rows, self.scratch, self.d_mlp, self.skip)
    }
}

#[inline(always)]
fn accumulate_chunk_with_simd<S: pulp::Simd>(
    simd: S,
    chunk: &mut NeuronChunk,
    batch: &BatchActivations<'_>,
    slot_rows: &[(usize, usize)],
    scratch: &mut ChunkScratch,
    d_mlp: usize,
    skip: usize,
) -> Result<(), NonFinite> {
    let values = batch.layers[chunk.layer as usize];
    let (first, width) = (chunk.first as usize, chunk.neurons.len());
    let positions = batch.contexts.positions;
    scratch.reset(&chunk.neurons);
    scratch.load_histograms(&chunk.neurons);
    // A neuron's first batch has no mean to sum around yet: its first value is close enough, and
    // far better than 0 for a neuron whose mean is large against its spread.
    if let Some(first_row) = batch.contexts.lengths.iter().position(|&l| l > skip) {
        let row_index = first_row * positions + skip;
        let row = &values[row_index * d_mlp + first..row_index * d_mlp + first + width];
        for (j, neuron) in chunk.neurons.iter().enumerate() {
            if neuron.moments.count == 0 && row[j].is_finite() {
                scratch.shift[j] = row[j];
            }
        }
    }
    let mut n_values = 0u64;
    for (c, (&context, &length)) in batch.contexts.indices.iter().zip(batch.contexts.lengths).enumerate() {
        if length == 0 {
            continue;
        }

        // Rows of the batch are d_mlp floats apart: a multiple of 4 KiB for most models, so reading
        // a neuron's column straight from them maps every row to the same cache sets. One copy of
        // the context's rows makes the per-row work and the rare column gathers cache-friendly.
        let mut context_rows = std::mem::take(&mut scratch.context_rows);
        context_rows.clear();
        for position in 0..length {
            let row_index = c * positions + position;
            context_rows.extend_from_slice(&values[row_index * d_mlp + first..row_index * d_mlp + first + width]);
        }
        // The BOS row goes to its own record; the rest are the text the neuron reads.
        let (bos_row, text_rows) = context_rows.split_at(skip.min(length) * width);
        for (j, (neuron, &x)) in chunk.neurons.iter_mut().zip(bos_row).enumerate() {
            if !x.is_finite() {
                return Err(NonFinite { layer: chunk.layer, neuron: chunk.first + j as u32, context });
            }
            neuron.bos.add(x);
        }
        if text_rows.is_empty() {
            scratch.context_rows = context_rows;
            continue;
        }
        scratch.add_context(simd, text_rows, width);
        for row in text_rows.chunks_exact(width) {
            scratch.histogram_row(row, &mut chunk.neurons);
        }
        if let Some(j) = scratch.non_finite {
            return Err(NonFinite { layer: chunk.layer, neuron: chunk.first + j as u32, context });
        }
        n_values += (length - skip) as u64;
        let mut column = std::mem::take(&mut scratch.column);
        for (j, neuron) in chunk.neurons.iter_mut().enumerate() {
            // Positions count from the context's start, BOS included, as the examples store them.
            let (max, min) = (scratch.max[j], scratch.min[j]);
            let range = match bos_row.get(j) {
                Some(&bos) => (min.min(bos), max.max(bos)),
                None => (min, max),
            };
            let extremes = ContextExtremes {
                max,
                max_at: scratch.max_at[j] + skip as u32,
                min,
                min_at: scratch.min_at[j] + skip as u32,
                range,
            };
            let gather = |buffer: &mut Vec<f32>| {
                buffer.clear();
                buffer.extend(context_rows.iter().skip(j).step_by(width).copied());
            };
            neuron.offer_context((chunk.layer, (first + j) as u32), context, &extremes, &mut column, gather);
        }
        scratch.column = column;
        scratch.context_rows = context_rows;
    }
    // The token table is far larger than any cache and each token's row sits at a random slot: the
    // batch's rows of one token are summed in f32 first (a frequent token occurs dozens of times per
    // batch), so the table is read and written once per distinct token, not once per token.
    let token_partial = &mut scratch.token_partial;
    for rows_of_slot in slot_rows.chunk_by(|a, b| a.0 == b.0) {
        token_partial.clear();
        token_partial.resize(width, 0.0);
        for &(_, row) in rows_of_slot {
            let values = &values[row * d_mlp + first..][..width];
            token_partial.iter_mut().zip(values).for_each(|(sum, &x)| *sum += x);
        }
        let slot = rows_of_slot[0].0;
        let sums = &mut chunk.token_sums[slot * width..(slot + 1) * width];
        sums.iter_mut().zip(token_partial.iter()).for_each(|(sum, &x)| *sum += f64::from(x));
    }
    for (j, neuron) in chunk.neurons.iter_mut().enumerate() {
        scratch.flush_histogram(j, &mut neuron.histogram);
        let sums =
            ShiftedSums { count: n_values, s1: scratch.s1[j], s2: scratch.s2[j], s3: scratch.s3[j], s4: scratch.s4[j] };
        neuron.add_batch(sums, f64::from(scratch.shift[j]), u64::from(scratch.positive[j]));
    }
    Ok(())
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
    /// An empty record for `n_layers × d_mlp` neurons; `bos_apart` when every context starts with BOS.
    pub(crate) fn new(
        n_layers: u32,
        d_mlp: u32,
        config: &AccumulatorConfig,
        token_slots: TokenSlots,
        bos_apart: bool,
    ) -> Self {
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
        Self { n_layers, d_mlp, bos_apart, chunks, token_slots }
    }

    /// Takes one batch of every layer's activations.
    pub(crate) fn accumulate(&mut self, batch: &BatchActivations<'_>) -> Result<(), NonFinite> {
        let d_mlp = self.d_mlp as usize;
        let positions = batch.contexts.positions;
        let n_rows = batch.contexts.lengths.len() * positions;
        let token_slots = &self.token_slots;
        let skip = usize::from(self.bos_apart);
        let mut slot_rows: Vec<(usize, usize)> = (0..n_rows)
            .filter_map(|row| {
                let (c, p) = (row / positions, row % positions);
                if p >= skip && p < batch.contexts.lengths[c] {
                    token_slots.slot(batch.tokens[row]).map(|slot| (slot, row))
                } else {
                    None
                }
            })
            .collect();
        slot_rows.sort_unstable();
        self.chunks
            .par_iter_mut()
            .map(|chunk| {
                SCRATCH.with_borrow_mut(|scratch| accumulate_chunk(chunk, batch, &slot_rows, scratch, d_mlp, skip))
            })
            .collect::<Result<Vec<()>, NonFinite>>()?;
        for (slot, _) in slot_rows {
            self.token_slots.counts[slot] += 1;
        }
        Ok(())
    }

    /// The record of one neuron.
    pub(crate) fn neuron(&self, layer: u32, index: u32) -> Option<&NeuronAccumulator> {
        self.chunk_of(layer, index)?.neurons.get(index as usize % CHUNK)
    }

    /// The chunk holding a neuron.
    fn chunk_of(&self, layer: u32, index: u32) -> Option<&NeuronChunk> {
        let chunks_per_layer = (self.d_mlp as usize).div_ceil(CHUNK);
        self.chunks.get(layer as usize * chunks_per_layer + index as usize / CHUNK)
    }

    /// Mean activation of a neuron on each tracked token seen at least `min_count` times, highest first.
    pub(crate) fn token_means(&self, layer: u32, index: u32, min_count: u64, limit: usize) -> Vec<(u32, f32, u64)> {
        let Some(chunk) = self.chunk_of(layer, index) else { return Vec::new() };
        let (j, width) = (index as usize % CHUNK, chunk.neurons.len());
        let mut means: Vec<(u32, f32, u64)> = (self.token_slots.tokens.iter().zip(&self.token_slots.counts))
            .enumerate()
            .filter(|(_, (_, count))| **count >= min_count.max(1))
            .map(|(slot, (&token, &count))| (token, (chunk.token_sums[slot * width + j] / count as f64) as f32, count))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of<'a>(
        layers: &'a [Vec<f32>],
        tokens: &'a [u32],
        indices: &'a [u64],
        lengths: &'a [usize],
    ) -> BatchActivations<'a> {
        BatchActivations {
            layers: layers.iter().map(Vec::as_slice).collect(),
            contexts: ContextsView { indices, lengths, positions: 4 },
            tokens,
        }
    }

    #[test]
    fn nan_and_infinite_activations_are_errors_naming_the_neuron() {
        let config = AccumulatorConfig {
            sizes: SelectionSizes { top: 2, bottom: 2, bands: 4, per_band: 1, random: 1 },
            histogram_bins: 50,
        };
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut accumulator = ModelAccumulator::new(1, 70, &config, TokenSlots::new(10, vec![1, 2]), false);
            let (tokens, indices, lengths) = (vec![1u32; 8], vec![5u64, 6], vec![4usize, 3]);
            let mut layer = vec![0.5f32; 8 * 70];
            assert_eq!(accumulator.accumulate(&batch_of(&[layer.clone()], &tokens, &indices, &lengths)), Ok(()));
            // Neuron 66 (second chunk), context 6, position 1.
            layer[(4 + 1) * 70 + 66] = bad;
            let error = accumulator.accumulate(&batch_of(&[layer], &tokens, &indices, &lengths));
            assert_eq!(error, Err(NonFinite { layer: 0, neuron: 66, context: 6 }), "{bad}");
        }
    }
}
