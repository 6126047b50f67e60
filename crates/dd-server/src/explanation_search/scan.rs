//! The exact scan behind `explanation-search`: the integer dot product of the quantised query with
//! every row that passes the filters, over rayon in chunks, each chunk keeping its best `k`.
//!
//! On x86-64 with AVX2 the dot product is written with pulp's safe 256-bit operations: 16
//! components sign-extended to 16 bits, multiplied by the query's and added in pairs into eight
//! 32-bit lanes (`vpmaddwd`). Left to itself, LLVM vectorised the plain loop with 128-bit
//! registers only, at 22 ns a row of 384 against 13.5 ns (in cache, one core). Elsewhere the plain
//! loop runs inside pulp's dispatch, vectorised for the CPU found. The scan streams the vectors
//! once, 118 MB for 307,200 explanations of 384 dimensions: a search costs about one and a half
//! times reading them (`docs/benchmarks.md`).

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
        #[cfg(target_arch = "x86_64")]
        let avx2 = pulp::x86::V3::try_new().map(|simd| (simd, avx2::query_blocks(self.query)));
        let (n_kept, mut ranked) = starts
            .par_iter()
            .map(|&start| {
                let mut hits = Vec::new();
                let chunk = ChunkScan { scan: self, rows: start..(start + ROWS_PER_TASK).min(end), k, hits: &mut hits };
                #[cfg(target_arch = "x86_64")]
                let n_kept = match &avx2 {
                    Some((simd, blocks)) => pulp::Simd::vectorize(*simd, avx2::Chunk { simd: *simd, blocks, chunk }),
                    None => arch.dispatch(chunk),
                };
                #[cfg(not(target_arch = "x86_64"))]
                let n_kept = arch.dispatch(chunk);
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
        let query = self.scan.query;
        self.scan_with(|row| dot(query, row))
    }
}

impl ChunkScan<'_, '_> {
    /// Scans the rows with `dot`; inlined into each SIMD entry point, so it is compiled for its CPU.
    #[inline(always)]
    fn scan_with(self, dot: impl Fn(&[i8]) -> i32) -> usize {
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
            let similarity = (dot(vector) as f32 * scan.query_scale * scale).clamp(-1.0, 1.0);
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

/// The AVX2 dot product, through pulp's safe operations on x86-64 CPUs that have them.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use pulp::x86::V3;
    use pulp::{i8x16, i16x16};

    use super::ChunkScan;

    /// The query's components in blocks of 16, the unit of [`dot`]; a partial last block is left to
    /// the scalar tail.
    pub(super) fn query_blocks(query: &[i16]) -> Vec<i16x16> {
        query
            .chunks_exact(16)
            .filter_map(|block| <[i16; 16]>::try_from(block).ok())
            .map(pulp::bytemuck::cast::<[i16; 16], i16x16>)
            .collect()
    }

    /// A chunk scanned with [`dot`].
    pub(super) struct Chunk<'a, 'b, 'c> {
        pub(super) simd: V3,
        pub(super) blocks: &'c [i16x16],
        pub(super) chunk: ChunkScan<'a, 'b>,
    }

    impl pulp::WithSimd for Chunk<'_, '_, '_> {
        type Output = usize;

        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _simd: S) -> usize {
            let (simd, blocks, query) = (self.simd, self.blocks, self.chunk.scan.query);
            self.chunk.scan_with(|row| dot(simd, blocks, query, row))
        }
    }

    /// `query · row`: per block of 16, the row's components widened to 16 bits (`vpmovsxbw`), then
    /// multiplied by the query's and added in pairs into eight 32-bit lanes (`vpmaddwd`); two
    /// accumulators, so consecutive blocks do not wait on each other.
    #[inline(always)]
    fn dot(simd: V3, blocks: &[i16x16], query: &[i16], row: &[i8]) -> i32 {
        let mut sums = [simd.splat_i32x8(0), simd.splat_i32x8(0)];
        for (i, (block, components)) in blocks.iter().zip(row.chunks_exact(16)).enumerate() {
            let Ok(components) = <[i8; 16]>::try_from(components) else { break };
            let widened = simd.convert_i8x16_to_i16x16(pulp::bytemuck::cast::<[i8; 16], i8x16>(components));
            let products = simd.multiply_wrapping_add_adjacent_i16x16(widened, *block);
            sums[i % 2] = simd.wrapping_add_i32x8(sums[i % 2], products);
        }
        let lanes: [i32; 8] = pulp::bytemuck::cast(simd.wrapping_add_i32x8(sums[0], sums[1]));
        let done = blocks.len() * 16;
        let tail = query.get(done..).unwrap_or_default().iter().zip(row.get(done..).unwrap_or_default());
        lanes.iter().sum::<i32>() + tail.map(|(&q, &r)| i32::from(q) * i32::from(r)).sum::<i32>()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The vector product equals the plain one, with a partial last block and at the extremes.
        #[test]
        fn the_avx2_dot_product_is_the_plain_one() {
            let Some(simd) = V3::try_new() else { return };
            for dimension in [384, 16, 40, 7] {
                let query: Vec<i16> = (0..dimension).map(|i| ((i * 37) % 255) as i16 - 127).collect();
                let row: Vec<i8> = (0..dimension).map(|i| (((i * 91) % 255) as i16 - 127) as i8).collect();
                let blocks = query_blocks(&query);
                assert_eq!(dot(simd, &blocks, &query, &row), super::super::dot(&query, &row), "{dimension}");
                let extreme = vec![-127i8; dimension];
                let negated: Vec<i16> = vec![-127; dimension];
                let expected = 127 * 127 * dimension as i32;
                assert_eq!(dot(simd, &query_blocks(&negated), &negated, &extreme), expected);
            }
        }
    }
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
