//! Attention of new positions against a cache of earlier keys and values, for generation: each new
//! query row sees every cached position and the new ones up to its own. A chunk of several rows
//! (a prompt after a shared prefix) goes through [`attention`](super::attention)'s tiles, which
//! pack the cached keys into panels first; a generated token's single row reads the keys in place
//! instead, since repacking the whole cache for every token would cost more than the row's own
//! dot products.

use rayon::prelude::*;

use super::attention::{AttentionShape, QUERY_TILE, Sequence, attend};
use super::math::{exp, lane_max, lane_sum};

/// One key/value head's cache: `keys` and `values` [positions, d_head], row t for position t.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CachedHead<'a> {
    pub(crate) keys: &'a [f32],
    pub(crate) values: &'a [f32],
}

/// The shape of one [`cached_attention`] call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CachedLayout {
    pub(crate) n_heads: usize,
    pub(crate) n_kv_heads: usize,
    pub(crate) d_head: usize,
    /// New query rows.
    pub(crate) rows: usize,
    /// The position of the first new row: how many positions the cache held before them.
    pub(crate) first_position: usize,
}

/// The attention output [rows, H·d_head] (the layout the output projection reads) of head-major
/// `queries` [H, rows, d_head] at positions `first_position..`, against `heads` (one per key/value
/// head, each covering at least every position up to the last row's).
pub(crate) fn cached_attention(
    queries: &[f32],
    heads: &[CachedHead<'_>],
    layout: CachedLayout,
    scale: f32,
) -> candle_core::Result<Vec<f32>> {
    let CachedLayout { n_heads, n_kv_heads, d_head, rows, first_position } = layout;
    let visible_at_end = (first_position + rows) * d_head;
    if queries.len() != n_heads * rows * d_head
        || heads.len() != n_kv_heads
        || n_kv_heads == 0
        || n_heads % n_kv_heads != 0
        || heads.iter().any(|head| head.keys.len() < visible_at_end || head.values.len() < visible_at_end)
    {
        candle_core::bail!("cached attention: inputs do not fit {layout:?}")
    }
    if rows >= QUERY_TILE {
        // One tile of rows reads each packed key once for four queries: at 1,000 rows after a
        // 20-token prefix (SmolLM2) the prefill took 7.3 s row by row and 3 s in tiles.
        let sequence = Sequence {
            queries,
            keys: heads.iter().map(|head| head.keys).collect(),
            values: heads.iter().map(|head| head.values).collect(),
        };
        let shape = AttentionShape { n_heads, n_kv_heads, d_head, rows, first_position };
        return Ok(attend(&[sequence], shape, scale));
    }
    let group = n_heads / n_kv_heads;
    let arch = pulp::Arch::new();
    let mut out = vec![0f32; rows * n_heads * d_head];
    out.par_chunks_mut(d_head).enumerate().for_each_init(Vec::new, |scores, (index, out)| {
        let (row, head) = (index / n_heads, index % n_heads);
        let visible = first_position + row + 1;
        let cache = heads[head / group];
        scores.resize(visible, 0.0);
        arch.dispatch(CachedRow {
            query: &queries[(head * rows + row) * d_head..][..d_head],
            keys: &cache.keys[..visible * d_head],
            values: &cache.values[..visible * d_head],
            scale,
            scores,
            out,
        })
    });
    Ok(out)
}

/// One query row of one head against its visible keys; a `WithSimd` type for the reason in
/// [`super`].
struct CachedRow<'a> {
    query: &'a [f32],
    /// [visible, d_head].
    keys: &'a [f32],
    /// [visible, d_head].
    values: &'a [f32],
    scale: f32,
    /// One score per visible key, then its softmax weight.
    scores: &'a mut [f32],
    /// One row of d_head outputs, zeros on entry.
    out: &'a mut [f32],
}

impl pulp::WithSimd for CachedRow<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let d_head = self.query.len();
        let (query, query_tail) = S::as_simd_f32s(self.query);
        let zero = simd.splat_f32s(0.0);
        for (score, key) in self.scores.iter_mut().zip(self.keys.chunks_exact(d_head)) {
            let (key, key_tail) = S::as_simd_f32s(key);
            // Two accumulators halve the chain of dependent multiply-adds per score.
            let mut sums = [zero; 2];
            for (pair, keys) in query.chunks(2).zip(key.chunks(2)) {
                for ((sum, &query), &key) in sums.iter_mut().zip(pair).zip(keys) {
                    *sum = simd.mul_add_f32s(query, key, *sum);
                }
            }
            let tail: f32 = query_tail.iter().zip(key_tail).map(|(&query, &key)| query * key).sum();
            *score = (simd.reduce_sum_f32s(simd.add_f32s(sums[0], sums[1])) + tail) * self.scale;
        }

        let max = lane_max(self.scores);
        for score in self.scores.iter_mut() {
            *score = exp(*score - max);
        }
        let inverse_sum = 1.0 / lane_sum(self.scores);

        let (out, out_tail) = S::as_mut_simd_f32s(self.out);
        for (&score, value) in self.scores.iter().zip(self.values.chunks_exact(d_head)) {
            let weight = score * inverse_sum;
            let (value, value_tail) = S::as_simd_f32s(value);
            let splat = simd.splat_f32s(weight);
            for (out, &value) in out.iter_mut().zip(value) {
                *out = simd.mul_add_f32s(splat, value, *out);
            }
            for (out, &value) in out_tail.iter_mut().zip(value_tail) {
                *out += weight * value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{largest_difference, random};
    use crate::ops::{HeadLayout, causal_attention};

    /// New rows against a cache must give the rows of one causal pass over the whole sequence,
    /// grouped-query heads, head widths with and without whole vectors; splits at 0 (no cache) and
    /// mid-sequence (tiles, one ending part-way), and before the last three rows and the last row
    /// (row by row).
    #[test]
    fn cached_rows_match_one_causal_pass() {
        for (positions, d_head, split, seed) in [(9, 8, 0, 1), (37, 12, 20, 2), (40, 16, 37, 4), (70, 64, 69, 3)] {
            let (n_heads, n_kv_heads) = (6, 2);
            let layout = HeadLayout { batch: 1, positions, n_heads, n_kv_heads, d_head };
            let heads = random(&[1, n_heads + 2 * n_kv_heads, positions, d_head], seed);
            let scale = 0.35;
            let whole = causal_attention(&heads, layout, scale).expect("causal kernel").squeeze(0).expect("squeeze");

            let values: Vec<f32> = heads.flatten_all().and_then(|flat| flat.to_vec1()).expect("values");
            let head = |index: usize| &values[index * positions * d_head..][..positions * d_head];
            let rows = positions - split;
            let queries: Vec<f32> = (0..n_heads).flat_map(|index| head(index)[split * d_head..].to_vec()).collect();
            let cache: Vec<CachedHead<'_>> = (0..n_kv_heads)
                .map(|kv_head| CachedHead {
                    keys: head(n_heads + kv_head),
                    values: head(n_heads + n_kv_heads + kv_head),
                })
                .collect();
            let cached_layout = CachedLayout { n_heads, n_kv_heads, d_head, rows, first_position: split };
            let cached = cached_attention(&queries, &cache, cached_layout, scale as f32).expect("cached kernel");
            let cached = candle_core::Tensor::from_vec(cached, (rows, n_heads * d_head), &candle_core::Device::Cpu)
                .expect("tensor");
            let expected = whole.narrow(0, split, rows).expect("rows");
            assert!(largest_difference(&cached, &expected) < 1e-5, "{cached_layout:?}");
        }
    }

    #[test]
    fn cached_attention_rejects_a_short_cache() {
        let layout = CachedLayout { n_heads: 2, n_kv_heads: 1, d_head: 4, rows: 1, first_position: 3 };
        let short = vec![0f32; 3 * 4];
        let heads = [CachedHead { keys: &short, values: &short }];
        assert!(cached_attention(&[0.0; 8], &heads, layout, 1.0).is_err());
    }
}
