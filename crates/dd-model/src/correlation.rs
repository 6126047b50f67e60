//! Which neurons' activations correlate most with each neuron's, over a sample of tokens: for every
//! neuron of a model (all layers), the k most positively and the k most negatively correlated
//! others, by Pearson's r, computed exactly.
//!
//! # How
//!
//! [`ActivationSample`] keeps every neuron's activations on the sampled tokens, neuron-major, in
//! f16 after subtracting a per-neuron shift (the mean of its first chunk of tokens), so rounding
//! is relative to the spread of the values rather than to their size; the sums for the mean and
//! variance are taken from the f32 values in f64. [`ActivationSample::correlations`] standardises
//! each row (z-scores over `sqrt(tokens)`, so a dot product of two rows is their r) and computes
//! the Gram matrix in tiles of `neuron_block × neuron_block`: only the tiles on and above the
//! diagonal, each scanned into the lists of its rows and of its columns, without a transposed copy (the same
//! streaming lists as the weight facts, `tiled`). The full `neurons × neurons` matrix is never
//! held: memory is the sample (2 bytes per neuron and token) plus two blocks in f32 and one tile.
//!
//! Cost: `neurons² × tokens` multiply-adds (half of the full product), so SmolLM2's 46,080
//! neurons over 20,000 tokens are 4.2e13, about seven minutes at the 100 GFLOP/s our GEMM reaches
//! on two cores.
//!
//! A neuron whose sampled activations are all equal has no correlation: its lists are empty and
//! it is in no other neuron's lists.

use candle_core::{Device, Tensor};
use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use crate::error::ModelError;
use crate::tiled::{Entry, Extremes, scan_signed_columns, scan_signed_rows, tiles, with_host_values};

/// Neurons a task of [`ActivationSample::push`] stores at once.
const NEURON_TILE: usize = 64;

/// How many correlated neurons to keep and how large a tile to compute at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorrelationOptions {
    /// Neurons kept per list (most positive, most negative); fewer where fewer are defined.
    pub k: usize,
    /// Neurons per block: a tile is `neuron_block × neuron_block` correlations.
    pub neuron_block: usize,
}

impl Default for CorrelationOptions {
    /// Ten each way, tiles of 1,024 × 1,024.
    fn default() -> Self {
        Self { k: 10, neuron_block: 1024 }
    }
}

/// Another neuron and its correlation with this one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Correlated {
    /// The other neuron, numbered across layers (`layer × neurons per layer + index`).
    pub neuron: u64,
    /// Pearson's r.
    pub correlation: f32,
}

/// One neuron's most correlated neurons.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NeuronCorrelations {
    /// The most positively correlated, largest r first; ties by the lower neuron.
    pub positive: Vec<Correlated>,
    /// The most negatively correlated, smallest r first; ties by the lower neuron.
    pub negative: Vec<Correlated>,
}

/// Every neuron's activations on a sample of tokens, added a chunk of tokens at a time.
#[derive(Clone, Debug)]
pub struct ActivationSample {
    neurons: usize,
    capacity: usize,
    tokens: usize,
    /// `[neurons][capacity]`: activation minus `shift`, in f16.
    values: Vec<f16>,
    shift: Vec<f32>,
    /// Sums of the shifted values and of their squares, from the f32 values.
    sums: Vec<f64>,
    squares: Vec<f64>,
}

impl ActivationSample {
    /// An empty sample of `neurons` neurons with room for `capacity` tokens.
    pub fn new(neurons: usize, capacity: usize) -> Result<Self, ModelError> {
        let values = neurons
            .checked_mul(capacity)
            .ok_or_else(|| ModelError::Input(format!("{neurons} neurons × {capacity} tokens do not fit in memory")))?;
        Ok(Self {
            neurons,
            capacity,
            tokens: 0,
            values: vec![f16::ZERO; values],
            shift: Vec::new(),
            sums: vec![0.0; neurons],
            squares: vec![0.0; neurons],
        })
    }

    /// The bytes a sample of `neurons` × `tokens` holds.
    pub fn memory_bytes(neurons: usize, tokens: usize) -> u64 {
        (neurons as u64) * (tokens as u64) * 2 + (neurons as u64) * 20
    }

    /// Tokens added so far.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Adds the activations of a chunk of tokens: `rows` is `[tokens, neurons]`, row-major.
    pub fn push(&mut self, rows: &[f32]) -> Result<(), ModelError> {
        if self.neurons == 0 || rows.len() % self.neurons != 0 {
            return Err(ModelError::Input(format!(
                "{} values are not whole rows of {} neurons",
                rows.len(),
                self.neurons
            )));
        }
        let count = rows.len() / self.neurons;
        if self.tokens + count > self.capacity {
            return Err(ModelError::Input(format!(
                "{} tokens would pass the sample's room for {}",
                self.tokens + count,
                self.capacity
            )));
        }
        if count == 0 {
            return Ok(());
        }
        if self.shift.is_empty() {
            // The first chunk's mean: close enough to the final mean that f16 keeps the spread.
            self.shift = (0..self.neurons)
                .map(|neuron| {
                    let sum: f64 = rows.chunks_exact(self.neurons).map(|row| f64::from(row[neuron])).sum();
                    (sum / count as f64) as f32
                })
                .collect();
        }
        // Neuron-major storage: each task takes a tile of neurons and walks the chunk token by token,
        // so its writes are a few sequential streams (one per neuron) instead of one strided write
        // per value. Each neuron's sums still add its tokens in order, so results do not depend on
        // the thread count.
        let (neurons, capacity, first) = (self.neurons, self.capacity, self.tokens);
        let shift = &self.shift;
        self.values
            .par_chunks_mut(NEURON_TILE * capacity)
            .zip(self.sums.par_chunks_mut(NEURON_TILE).zip(self.squares.par_chunks_mut(NEURON_TILE)))
            .enumerate()
            .for_each(|(tile, (values, (sums, squares)))| {
                let start = tile * NEURON_TILE;
                for (offset, row) in rows.chunks_exact(neurons).enumerate() {
                    let row = &row[start..start + sums.len()];
                    for (k, (&value, shift)) in row.iter().zip(&shift[start..]).enumerate() {
                        let shifted = value - shift;
                        values[k * capacity + first + offset] = f16::from_f32(shifted);
                        sums[k] += f64::from(shifted);
                        squares[k] += f64::from(shifted) * f64::from(shifted);
                    }
                }
            });
        self.tokens += count;
        Ok(())
    }

    /// Rows `start..start + count` standardised so that the dot product of two rows is their r,
    /// as a `[count, tokens]` f32 tensor; a constant neuron's row is zero.
    fn standardised_block(&self, start: usize, count: usize) -> Result<Tensor, ModelError> {
        let tokens = self.tokens;
        let mut block = vec![0f32; count * tokens];
        // On every thread, with the f16 conversion vectorised (F16C where the CPU has it): the GEMM
        // waits for each block, so a serial conversion would idle the other cores.
        block.par_chunks_mut(tokens.max(1)).enumerate().for_each(|(offset, out)| {
            let neuron = start + offset;
            let (scale, mean) = self.standardisation(neuron);
            self.values[neuron * self.capacity..neuron * self.capacity + tokens].convert_to_f32_slice(out);
            let (scale, mean) = (scale as f32, mean as f32);
            out.iter_mut().for_each(|value| *value = (*value - mean) * scale);
        });
        Ok(Tensor::from_vec(block, (count, tokens), &Device::Cpu)?)
    }

    /// `(1 / (σ √tokens), mean)` of a neuron's shifted values; a scale of 0 for a constant neuron.
    fn standardisation(&self, neuron: usize) -> (f64, f64) {
        let n = self.tokens as f64;
        let mean = self.sums[neuron] / n;
        let variance = (self.squares[neuron] / n - mean * mean).max(0.0);
        // Equal values shift to exactly zero, so a constant neuron's variance is exactly zero.
        let scale = if variance > 0.0 { 1.0 / (variance.sqrt() * n.sqrt()) } else { 0.0 };
        (scale, mean)
    }

    /// A neuron's z-scores on the sampled tokens, in order: `(activation − mean) / σ`, all zero
    /// for a constant neuron.
    pub fn z_scores(&self, neuron: usize) -> Vec<f32> {
        let (scale, mean) = self.standardisation(neuron);
        let per_sigma = (scale * (self.tokens as f64).sqrt()) as f32;
        let mut row = vec![0f32; self.tokens];
        self.values[neuron * self.capacity..neuron * self.capacity + self.tokens].convert_to_f32_slice(&mut row);
        row.iter_mut().for_each(|value| *value = (*value - mean as f32) * per_sigma);
        row
    }

    /// Neurons in the sample.
    pub fn neurons(&self) -> usize {
        self.neurons
    }

    fn is_constant(&self, neuron: usize) -> bool {
        self.standardisation(neuron).0 == 0.0
    }

    /// Every neuron's most positively and most negatively correlated neurons; `progress` gets the
    /// correlations computed so far (of `neurons²`, counting the mirrored half).
    pub fn correlations(
        &self,
        options: &CorrelationOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<NeuronCorrelations>, ModelError> {
        if self.tokens < 2 {
            return Err(ModelError::Input(format!("{} tokens are too few to correlate", self.tokens)));
        }
        let block = options.neuron_block.max(1);
        // One more than asked: a neuron's own r = 1 is in its tile on the diagonal.
        let mut lists = vec![Extremes::new(options.k + 1); self.neurons];
        let blocks: Vec<(usize, usize)> = tiles(0, self.neurons, block).collect();
        for (position, &(row_start, rows)) in blocks.iter().enumerate() {
            let left = self.standardised_block(row_start, rows)?;
            for &(column_start, columns) in &blocks[position..] {
                let right = if column_start == row_start {
                    left.clone()
                } else {
                    self.standardised_block(column_start, columns)?
                };
                let tile = left.matmul(&right.t()?)?;
                let (before, after) = lists.split_at_mut(column_start);
                if column_start == row_start {
                    let row_lists = &mut after[..columns];
                    with_host_values(&tile, |values| {
                        scan_signed_rows(values, columns, column_start as u64, row_lists)
                    })?;
                } else {
                    let row_lists = &mut before[row_start..row_start + rows];
                    let column_lists = &mut after[..columns];
                    with_host_values(&tile, |values| {
                        scan_signed_rows(values, columns, column_start as u64, row_lists);
                        scan_signed_columns(values, columns, row_start as u64, column_lists);
                    })?;
                }
                progress((rows * columns * if column_start == row_start { 1 } else { 2 }) as u64);
            }
        }
        Ok(lists
            .into_iter()
            .enumerate()
            .map(|(neuron, extremes)| {
                if self.is_constant(neuron) {
                    return NeuronCorrelations::default();
                }
                let keep = |entry: &&Entry| entry.id != neuron as u64 && !self.is_constant(entry.id as usize);
                let correlated =
                    |entry: &Entry| Correlated { neuron: entry.id, correlation: entry.value.clamp(-1.0, 1.0) };
                NeuronCorrelations {
                    positive: extremes.top.entries.iter().filter(keep).take(options.k).map(correlated).collect(),
                    negative: extremes.bottom.entries.iter().filter(keep).take(options.k).map(correlated).collect(),
                }
            })
            .collect())
    }
}
