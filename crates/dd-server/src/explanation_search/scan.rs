//! The exact scan behind `explanation-search`: the integer dot product of the quantised query with
//! every row that passes the filters, over rayon in chunks, each chunk keeping its best `k`.
//!
//! The inner loop is plain Rust that LLVM vectorises (sign-extend, multiply, add pairs: `pmaddwd`)
//! inside pulp's SIMD entry point, as `dd-model`'s kernels are, so it runs with AVX2 (or AVX-512)
//! where the CPU has them without building for one CPU. The scan streams the vectors once: 118 MB
//! for 307,200 explanations of 384 dimensions, which two cores read in a few milliseconds.

use std::cmp::Ordering;
use std::ops::Range;

use rayon::prelude::*;

use super::{Hit, Row};

/// Rows one rayon task scans: large enough to amortise scheduling (384 dimensions make 768 KB),
/// small enough for filters that leave uneven work to balance.
const ROWS_PER_TASK: usize = 2048;

/// One search's scan over the index's arrays.
pub(super) struct Scan<'a> {
    /// The quantised query, widened once so the inner loop extends only the rows.
    pub(super) query: &'a [i16],
    /// The query's quantisation step.
    pub(super) query_scale: f32,
    /// Row after row, `query.len()` components each.
    pub(super) vectors: &'a [i8],
    /// Each row's quantisation step.
    pub(super) scales: &'a [f32],
    /// Each row's filter fields.
    pub(super) rows: &'a [Row],
    /// What a row must have to be ranked.
    pub(super) filter: RowFilter,
}

/// The filters in the index's terms, checked inline per row (a closure behind a pointer cost a call
/// and a `vzeroupper` per row inside the vector code).
#[derive(Debug, Clone, Copy)]
pub(super) struct RowFilter {
    /// The row's score is at least this; NaN (unscored) fails.
    pub(super) min_score: Option<f32>,
    /// The row's interned origin.
    pub(super) origin: Option<u32>,
    /// The row's layer.
    pub(super) layer: Option<u32>,
}

impl RowFilter {
    #[inline(always)]
    fn keeps(&self, row: &Row) -> bool {
        self.layer.is_none_or(|layer| row.layer == layer)
            && self.origin.is_none_or(|origin| row.origin == origin)
            // NaN (no score) fails the comparison, so it is left out whenever a minimum is set.
            && self.min_score.is_none_or(|min_score| row.score >= min_score)
    }
}

/// What a scan found.
pub(super) struct Best {
    /// Rows that passed the filters.
    pub(super) n_kept: usize,
    /// The best `k` of them, most similar first.
    pub(super) ranked: Vec<Hit>,
}

impl Scan<'_> {
    /// The `k` rows of `rows` most similar to the query among those passing the filters.
    pub(super) fn best(&self, rows: Range<usize>, k: usize) -> Best {
        let end = rows.end.min(self.rows.len());
        let starts: Vec<usize> = (rows.start..end).step_by(ROWS_PER_TASK).collect();
        let arch = pulp::Arch::new();
        let (n_kept, mut ranked) = starts
            .par_iter()
            .map(|&start| {
                let mut hits = Vec::new();
                let rows = start..(start + ROWS_PER_TASK).min(end);
                let n_kept = arch.dispatch(ChunkScan { scan: self, rows, k, hits: &mut hits });
                keep_best(&mut hits, k);
                (n_kept, hits)
            })
            .reduce(
                || (0, Vec::new()),
                |(n_a, mut a), (n_b, b)| {
                    a.extend(b);
                    keep_best(&mut a, k);
                    (n_a + n_b, a)
                },
            );
        ranked.sort_unstable_by(order);
        Best { n_kept, ranked }
    }
}

/// The exclusive or of `vectors` taken eight bytes at a time, in the scan's chunks over rayon: its
/// memory read once with next to no arithmetic, the floor under a search's time (the benchmark's).
pub(super) fn read_all(vectors: &[i8], dimension: usize) -> u64 {
    vectors
        .par_chunks(ROWS_PER_TASK * dimension.max(1))
        .map(|chunk| {
            let words = chunk.chunks_exact(8);
            let tail = words.remainder().iter().fold(0u64, |acc, &value| acc ^ u64::from(value as u8));
            words.fold(tail, |acc, word| {
                let bytes: [u8; 8] = std::array::from_fn(|i| word[i] as u8);
                acc ^ u64::from_le_bytes(bytes)
            })
        })
        .reduce(|| 0, |a, b| a ^ b)
}

/// Most similar first, then by row (layer, neuron, position), so equal scores keep one order
/// whatever the thread count.
fn order(a: &Hit, b: &Hit) -> Ordering {
    b.similarity.total_cmp(&a.similarity).then(a.row.cmp(&b.row))
}

/// Keeps the best `k` of `hits`, in no order.
fn keep_best(hits: &mut Vec<Hit>, k: usize) {
    if hits.len() <= k {
        return;
    }
    if k == 0 {
        hits.clear();
        return;
    }
    hits.select_nth_unstable_by(k - 1, order);
    hits.truncate(k);
}

/// One task's rows, of which it keeps at least the best `k` in `hits`; a `WithSimd` type so that
/// [`dot`] is compiled for the CPU's widest vectors. It answers how many rows passed the filters.
struct ChunkScan<'a, 'b> {
    scan: &'a Scan<'a>,
    rows: Range<usize>,
    k: usize,
    hits: &'b mut Vec<Hit>,
}

impl pulp::WithSimd for ChunkScan<'_, '_> {
    type Output = usize;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> usize {
        let scan = self.scan;
        let dimension = scan.query.len();
        // Rows come in increasing order, so one no more similar than the k-th best kept so far
        // ranks below it (ties go to the lower row) and cannot enter the top k: most rows are
        // dropped by one comparison instead of being stored and selected.
        let mut threshold = f32::NEG_INFINITY;
        let mut n_kept = 0;
        for index in self.rows {
            let (Some(row), Some(&scale)) = (scan.rows.get(index), scan.scales.get(index)) else { break };
            if !scan.filter.keeps(row) {
                continue;
            }
            n_kept += 1;
            let Some(vector) = scan.vectors.get(index * dimension..(index + 1) * dimension) else { break };
            // Both sides are unit vectors up to quantisation, whose rounding may pass 1 a little.
            let similarity = (dot(scan.query, vector) as f32 * scan.query_scale * scale).clamp(-1.0, 1.0);
            if similarity <= threshold {
                continue;
            }
            self.hits.push(Hit { row: index as u32, similarity });
            if self.k > 0 && self.hits.len() >= self.k.saturating_mul(2).max(64) {
                keep_best(self.hits, self.k);
                threshold = self.hits.iter().map(|hit| hit.similarity).fold(f32::INFINITY, f32::min);
            }
        }
        n_kept
    }
}

/// The integer dot product; exact, since |component| ≤ 127 and dimensions are at most
/// `MAX_DIMENSION`, so the sum fits an `i32`.
#[inline(always)]
fn dot(query: &[i16], row: &[i8]) -> i32 {
    // Integer addition is associative, so LLVM reorders this into independent vector lanes.
    query.iter().zip(row).map(|(&q, &r)| i32::from(q) * i32::from(r)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_k_are_kept_in_order() {
        let mut hits: Vec<Hit> = [0.5, 0.9, 0.1, 0.9, 0.7]
            .iter()
            .enumerate()
            .map(|(row, &similarity)| Hit { row: row as u32, similarity })
            .collect();
        keep_best(&mut hits, 3);
        hits.sort_unstable_by(order);
        let rows: Vec<u32> = hits.iter().map(|hit| hit.row).collect();
        assert_eq!(rows, [1, 3, 4], "ties by row");
        keep_best(&mut hits, 0);
        assert!(hits.is_empty());
        assert_eq!(dot(&[127, -127, 3], &[127, 127, -2]), -6);
    }
}
