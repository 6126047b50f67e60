//! Matrix products too large to hold, computed in tiles and scanned into streaming top-k lists:
//! what the weight facts (`circuits`) and activation correlations (`correlation`) share. A tile's
//! rows are scanned on every rayon thread; a chunk of a row is compared with a list's threshold in
//! a few vector operations before single values are looked at, so the scan stays a small share of
//! the product's time. Lists keep the same entries whatever the order of tiles and threads: ties
//! go to the lower id.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::error::ModelError;

/// `(start, length)` of consecutive tiles of at most `size` covering `start..end`.
pub(crate) fn tiles(start: usize, end: usize, size: usize) -> impl Iterator<Item = (usize, usize)> {
    (start..end).step_by(size).map(move |tile_start| (tile_start, size.min(end - tile_start)))
}

/// A strided view as a matrix product's operand: the CPU GEMM reads any strides (it packs its
/// operands anyway, so a copy would only add a pass over memory); other devices get a copy.
pub(crate) fn matmul_operand(view: Tensor) -> Result<Tensor, ModelError> {
    match view.device().is_cpu() {
        true => Ok(view),
        false => Ok(view.contiguous()?),
    }
}

/// Runs `read` on the values of a 2-D f32 tensor, row-major, copying only when it is not already
/// contiguous f32 on the CPU.
pub(crate) fn with_host_values<R>(tensor: &Tensor, read: impl FnOnce(&[f32]) -> R) -> Result<R, ModelError> {
    let tensor = tensor.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.contiguous()?;
    let (storage, layout) = tensor.storage_and_layout();
    let candle_core::Storage::Cpu(storage) = &*storage else {
        return Err(ModelError::Compute(candle_core::Error::Msg("scores did not move to the CPU".to_owned())));
    };
    let values = storage.as_slice::<f32>()?;
    let Some((start, end)) = layout.contiguous_offsets() else {
        return Err(ModelError::Compute(candle_core::Error::Msg("scores are not contiguous".to_owned())));
    };
    Ok(read(&values[start..end]))
}

/// A candidate in a top-k list: ranked by `key` (the value, its negation or its magnitude), then
/// by the lower `id`; `value` is what is reported.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    key: f32,
    /// What is reported.
    pub(crate) value: f32,
    /// The candidate: a token id, or a neuron numbered across layers.
    pub(crate) id: u64,
}

impl Entry {
    fn ranks_before(&self, other: &Entry) -> bool {
        self.key > other.key || (self.key == other.key && self.id < other.id)
    }
}

/// The best `capacity` entries seen so far, best first. Most candidates are rejected by one
/// comparison with `threshold`, the key an entry must reach to be considered.
#[derive(Clone, Debug)]
pub(crate) struct Best {
    capacity: usize,
    /// The entries, best first.
    pub(crate) entries: Vec<Entry>,
    threshold: f32,
}

impl Best {
    /// An empty list of at most `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        let threshold = if capacity == 0 { f32::INFINITY } else { f32::NEG_INFINITY };
        Self { capacity, entries: Vec::new(), threshold }
    }

    /// Offers a candidate ranked by `key`.
    pub(crate) fn offer(&mut self, key: f32, value: f32, id: u64) {
        // NaN never enters a list: it has no rank.
        if key.is_nan() || key < self.threshold {
            return;
        }
        let candidate = Entry { key, value, id };
        let position = self.entries.partition_point(|entry| entry.ranks_before(&candidate));
        if position >= self.capacity {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop();
        }
        self.entries.insert(position, candidate);
        if self.entries.len() == self.capacity {
            self.threshold = self.entries[self.capacity - 1].key;
        }
    }
}

/// The largest and the smallest values of one row.
#[derive(Clone, Debug)]
pub(crate) struct Extremes {
    /// The largest values.
    pub(crate) top: Best,
    /// Keyed by the negated value, so the smallest value ranks first.
    pub(crate) bottom: Best,
}

impl Extremes {
    /// Empty lists of at most `capacity` entries each.
    pub(crate) fn new(capacity: usize) -> Self {
        Self { top: Best::new(capacity), bottom: Best::new(capacity) }
    }
}

/// Values examined together: one test of a chunk's extremes against the thresholds rejects most
/// chunks, so single values are looked at only where a list may change.
const CHUNK: usize = 64;
/// Rows of a tile handed to one rayon task.
const ROWS_PER_TASK: usize = 4;

/// Folds every row of a [rows, width] tile into its top and bottom lists; column c is token
/// `first_id + c`.
pub(crate) fn scan_signed_rows(values: &[f32], width: usize, first_id: u64, lists: &mut [Extremes]) {
    values.par_chunks(width * ROWS_PER_TASK).zip(lists.par_chunks_mut(ROWS_PER_TASK)).for_each(|(values, lists)| {
        pulp::Arch::new().dispatch(SignedRows { values, width, first_id, lists });
    });
}

/// Folds every column of a [rows, width] tile into its top and bottom lists; row r is the neuron
/// numbered `first_row + r`. The same strips as [`scan_abs_columns`]: a symmetric product's tile
/// serves both its rows and its columns without a transposed copy.
pub(crate) fn scan_signed_columns(values: &[f32], width: usize, first_row: u64, lists: &mut [Extremes]) {
    lists.par_chunks_mut(CHUNK).enumerate().for_each(|(strip, lists)| {
        pulp::Arch::new().dispatch(SignedColumns { values, width, strip_start: strip * CHUNK, first_row, lists });
    });
}

/// Folds every row of a [rows, width] tile into its list by |score|; column c is the neuron
/// numbered `first_id + c`.
pub(crate) fn scan_abs_rows(values: &[f32], width: usize, first_id: u64, lists: &mut [Best]) {
    values.par_chunks(width * ROWS_PER_TASK).zip(lists.par_chunks_mut(ROWS_PER_TASK)).for_each(|(values, lists)| {
        pulp::Arch::new().dispatch(AbsRows { values, width, first_id, lists });
    });
}

/// Folds every column of a [rows, width] tile into its list by |score|; row r is the neuron
/// numbered `first_row + r`. Columns are split into strips of [`CHUNK`], one task each, which
/// walks its strip row by row.
pub(crate) fn scan_abs_columns(values: &[f32], width: usize, first_row: u64, lists: &mut [Best]) {
    lists.par_chunks_mut(CHUNK).enumerate().for_each(|(strip, lists)| {
        pulp::Arch::new().dispatch(AbsColumns { values, width, strip_start: strip * CHUNK, first_row, lists });
    });
}

/// Rows for [`scan_signed_rows`]. A `WithSimd` type, not a closure, so that pulp inlines the loops
/// into its AVX2/AVX-512 entry points and they are compiled for those instruction sets.
struct SignedRows<'a> {
    values: &'a [f32],
    width: usize,
    first_id: u64,
    lists: &'a mut [Extremes],
}

impl pulp::WithSimd for SignedRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        for (row, extremes) in self.values.chunks_exact(self.width).zip(self.lists.iter_mut()) {
            for (chunk_index, chunk) in row.chunks(CHUNK).enumerate() {
                let (high, low) = extremes_of(simd, chunk);
                let chunk_id = self.first_id + (chunk_index * CHUNK) as u64;
                if high >= extremes.top.threshold {
                    for (offset, &value) in chunk.iter().enumerate() {
                        extremes.top.offer(value, value, chunk_id + offset as u64);
                    }
                }
                if -low >= extremes.bottom.threshold {
                    for (offset, &value) in chunk.iter().enumerate() {
                        extremes.bottom.offer(-value, value, chunk_id + offset as u64);
                    }
                }
            }
        }
    }
}

/// Rows for [`scan_abs_rows`]; see [`SignedRows`] for why it is a type.
struct AbsRows<'a> {
    values: &'a [f32],
    width: usize,
    first_id: u64,
    lists: &'a mut [Best],
}

impl pulp::WithSimd for AbsRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        for (row, best) in self.values.chunks_exact(self.width).zip(self.lists.iter_mut()) {
            for (chunk_index, chunk) in row.chunks(CHUNK).enumerate() {
                if magnitude_of(simd, chunk) < best.threshold {
                    continue;
                }
                let chunk_id = self.first_id + (chunk_index * CHUNK) as u64;
                for (offset, &value) in chunk.iter().enumerate() {
                    best.offer(value.abs(), value, chunk_id + offset as u64);
                }
            }
        }
    }
}

/// One strip of columns for [`scan_abs_columns`]; see [`SignedRows`] for why it is a type.
struct AbsColumns<'a> {
    values: &'a [f32],
    width: usize,
    strip_start: usize,
    first_row: u64,
    /// At most [`CHUNK`] lists, one per column of the strip.
    lists: &'a mut [Best],
}

impl pulp::WithSimd for AbsColumns<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let columns = self.lists.len();
        // The strip's thresholds side by side, so one row segment is tested in a few vector ops.
        let mut thresholds = [f32::INFINITY; CHUNK];
        for (threshold, best) in thresholds.iter_mut().zip(self.lists.iter()) {
            *threshold = best.threshold;
        }
        let thresholds = &mut thresholds[..columns];
        for (row_index, row) in self.values.chunks_exact(self.width).enumerate() {
            let segment = &row[self.strip_start..self.strip_start + columns];
            // |v| − t ≥ 0 exactly when |v| ≥ t (IEEE subtraction of finite values is exact in
            // sign), and t = −∞ for a list not yet full gives +∞.
            if largest_excess(simd, segment, thresholds) < 0.0 {
                continue;
            }
            let id = self.first_row + row_index as u64;
            for ((&value, threshold), best) in segment.iter().zip(thresholds.iter_mut()).zip(self.lists.iter_mut()) {
                best.offer(value.abs(), value, id);
                *threshold = best.threshold;
            }
        }
    }
}

/// One strip of columns for [`scan_signed_columns`]; see [`SignedRows`] for why it is a type.
struct SignedColumns<'a> {
    values: &'a [f32],
    width: usize,
    strip_start: usize,
    first_row: u64,
    /// At most [`CHUNK`] lists, one per column of the strip.
    lists: &'a mut [Extremes],
}

impl pulp::WithSimd for SignedColumns<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let columns = self.lists.len();
        let (mut tops, mut bottoms) = ([f32::INFINITY; CHUNK], [f32::INFINITY; CHUNK]);
        for ((top, bottom), extremes) in tops.iter_mut().zip(bottoms.iter_mut()).zip(self.lists.iter()) {
            *top = extremes.top.threshold;
            *bottom = extremes.bottom.threshold;
        }
        let (tops, bottoms) = (&mut tops[..columns], &mut bottoms[..columns]);
        for (row_index, row) in self.values.chunks_exact(self.width).enumerate() {
            let segment = &row[self.strip_start..self.strip_start + columns];
            let (above, below) = signed_excess(simd, segment, tops, bottoms);
            if above < 0.0 && below < 0.0 {
                continue;
            }
            let id = self.first_row + row_index as u64;
            for (column, (&value, extremes)) in segment.iter().zip(self.lists.iter_mut()).enumerate() {
                extremes.top.offer(value, value, id);
                extremes.bottom.offer(-value, value, id);
                tops[column] = extremes.top.threshold;
                bottoms[column] = extremes.bottom.threshold;
            }
        }
    }
}

/// The largest `value − top` and the largest `−value − bottom` over paired values and thresholds:
/// whether any value may enter its column's top or bottom list.
#[inline(always)]
fn signed_excess<S: pulp::Simd>(simd: S, values: &[f32], tops: &[f32], bottoms: &[f32]) -> (f32, f32) {
    let (value_head, value_tail) = S::as_simd_f32s(values);
    let (top_head, top_tail) = S::as_simd_f32s(tops);
    let (bottom_head, bottom_tail) = S::as_simd_f32s(bottoms);
    let zero = simd.splat_f32s(0.0);
    let mut above = simd.splat_f32s(f32::NEG_INFINITY);
    let mut below = simd.splat_f32s(f32::NEG_INFINITY);
    for ((&vector, &top), &bottom) in value_head.iter().zip(top_head).zip(bottom_head) {
        above = simd.max_f32s(above, simd.sub_f32s(vector, top));
        below = simd.max_f32s(below, simd.sub_f32s(simd.sub_f32s(zero, vector), bottom));
    }
    let (mut above, mut below) = (simd.reduce_max_f32s(above), simd.reduce_max_f32s(below));
    for ((&value, &top), &bottom) in value_tail.iter().zip(top_tail).zip(bottom_tail) {
        above = above.max(value - top);
        below = below.max(-value - bottom);
    }
    (above, below)
}

/// The largest and smallest value of `values`.
#[inline(always)]
fn extremes_of<S: pulp::Simd>(simd: S, values: &[f32]) -> (f32, f32) {
    let (head, tail) = S::as_simd_f32s(values);
    let mut high = simd.splat_f32s(f32::NEG_INFINITY);
    let mut low = simd.splat_f32s(f32::INFINITY);
    for &vector in head {
        high = simd.max_f32s(high, vector);
        low = simd.min_f32s(low, vector);
    }
    let (mut high, mut low) = (simd.reduce_max_f32s(high), simd.reduce_min_f32s(low));
    for &value in tail {
        high = high.max(value);
        low = low.min(value);
    }
    (high, low)
}

/// The largest |value| of `values`.
#[inline(always)]
fn magnitude_of<S: pulp::Simd>(simd: S, values: &[f32]) -> f32 {
    let (head, tail) = S::as_simd_f32s(values);
    let mut high = simd.splat_f32s(0.0);
    for &vector in head {
        high = simd.max_f32s(high, simd.abs_f32s(vector));
    }
    tail.iter().fold(simd.reduce_max_f32s(high), |high, value| high.max(value.abs()))
}

/// The largest `|value| − threshold` over paired `values` and `thresholds`.
#[inline(always)]
fn largest_excess<S: pulp::Simd>(simd: S, values: &[f32], thresholds: &[f32]) -> f32 {
    let (value_head, value_tail) = S::as_simd_f32s(values);
    let (threshold_head, threshold_tail) = S::as_simd_f32s(thresholds);
    let mut excess = simd.splat_f32s(f32::NEG_INFINITY);
    for (&vector, &threshold) in value_head.iter().zip(threshold_head) {
        excess = simd.max_f32s(excess, simd.sub_f32s(simd.abs_f32s(vector), threshold));
    }
    value_tail
        .iter()
        .zip(threshold_tail)
        .fold(simd.reduce_max_f32s(excess), |excess, (value, threshold)| excess.max(value.abs() - threshold))
}

#[cfg(test)]
mod tests {
    use pulp::WithSimd;

    use super::*;

    /// The streaming list keeps the same entries as sorting everything, ties included.
    #[test]
    fn best_matches_a_full_sort() {
        let keys = [3.0, 1.0, 3.0, -2.0, 5.0, 1.0, 3.0, f32::NAN, 0.0];
        for capacity in 0..=keys.len() + 1 {
            let mut best = Best::new(capacity);
            for (id, &key) in keys.iter().enumerate() {
                best.offer(key, key, id as u64);
            }
            let mut expected: Vec<(f32, u64)> =
                keys.iter().enumerate().filter(|(_, key)| !key.is_nan()).map(|(id, &key)| (key, id as u64)).collect();
            expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            expected.truncate(capacity);
            let found: Vec<(f32, u64)> = best.entries.iter().map(|entry| (entry.key, entry.id)).collect();
            assert_eq!(found, expected, "capacity {capacity}");
        }
    }

    /// The vector reductions agree with plain scans at every length around the vector width.
    #[test]
    fn reductions_match_plain_scans() {
        struct Check;
        impl pulp::WithSimd for Check {
            type Output = ();
            fn with_simd<S: pulp::Simd>(self, simd: S) {
                for length in [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, CHUNK] {
                    let values: Vec<f32> = (0..length).map(|index| ((index * 37 % 11) as f32 - 5.0) * 0.5).collect();
                    let thresholds: Vec<f32> = (0..length).map(|index| (index % 5) as f32).collect();
                    let high = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let low = values.iter().copied().fold(f32::INFINITY, f32::min);
                    assert_eq!(extremes_of(simd, &values), (high, low), "length {length}");
                    let magnitude = values.iter().fold(0f32, |best, value| best.max(value.abs()));
                    assert_eq!(magnitude_of(simd, &values), magnitude, "length {length}");
                    let excess = values
                        .iter()
                        .zip(&thresholds)
                        .fold(f32::NEG_INFINITY, |best, (value, threshold)| best.max(value.abs() - threshold));
                    assert_eq!(largest_excess(simd, &values, &thresholds), excess, "length {length}");
                }
            }
        }
        pulp::Arch::new().dispatch(Check);
        // The scalar fallback too, which other CPUs take.
        Check.with_simd(pulp::Scalar::new());
    }

    /// Row and column scans of one tile find what a full sort of each row and column finds.
    #[test]
    fn tile_scans_match_full_sorts() {
        let (rows, width, capacity) = (9, 150, 4);
        let values: Vec<f32> = (0..rows * width).map(|index| ((index * 7919 % 1009) as f32 - 504.0) / 97.0).collect();
        let mut row_lists = vec![Best::new(capacity); rows];
        let mut column_lists = vec![Best::new(capacity); width];
        let mut extremes = vec![Extremes::new(capacity); rows];
        scan_abs_rows(&values, width, 1000, &mut row_lists);
        scan_abs_columns(&values, width, 2000, &mut column_lists);
        scan_signed_rows(&values, width, 3000, &mut extremes);
        let sorted_by = |candidates: Vec<(f32, u64)>, key: fn(f32) -> f32| {
            let mut candidates = candidates;
            candidates.sort_by(|a, b| key(b.0).total_cmp(&key(a.0)).then(a.1.cmp(&b.1)));
            candidates.truncate(capacity);
            candidates
        };
        let sorted = |candidates: Vec<(f32, u64)>| sorted_by(candidates, f32::abs);
        for (row, extremes) in extremes.iter().enumerate() {
            let candidates: Vec<(f32, u64)> =
                (0..width).map(|column| (values[row * width + column], 3000 + column as u64)).collect();
            let top: Vec<(f32, u64)> = extremes.top.entries.iter().map(|entry| (entry.value, entry.id)).collect();
            let bottom: Vec<(f32, u64)> = extremes.bottom.entries.iter().map(|entry| (entry.value, entry.id)).collect();
            assert_eq!(top, sorted_by(candidates.clone(), |value| value), "row {row} top");
            assert_eq!(bottom, sorted_by(candidates, |value| -value), "row {row} bottom");
        }
        for (row, best) in row_lists.iter().enumerate() {
            let expected =
                sorted((0..width).map(|column| (values[row * width + column], 1000 + column as u64)).collect());
            let found: Vec<(f32, u64)> = best.entries.iter().map(|entry| (entry.value, entry.id)).collect();
            assert_eq!(found, expected, "row {row}");
        }
        for (column, best) in column_lists.iter().enumerate() {
            let expected = sorted((0..rows).map(|row| (values[row * width + column], 2000 + row as u64)).collect());
            let found: Vec<(f32, u64)> = best.entries.iter().map(|entry| (entry.value, entry.id)).collect();
            assert_eq!(found, expected, "column {column}");
        }
    }
}
