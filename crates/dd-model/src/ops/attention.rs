//! Causal self-attention on the CPU: every head's output for tiles of four query positions, against
//! keys packed into panels (as a GEMM packs its operand), over the causal half of the scores only,
//! with their softmax and the weighted values in the same pass. candle would run one tiny threaded
//! GEMM per head, which cost a fifth of GPT-2's forward time; other devices use candle's own ops.
//! The tiles also serve generation ([`super::cached`]): query rows that start after cached
//! positions, against keys and values read from the cache.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::f32_slice;
use super::heads::HeadLayout;
use super::math::{exp, lane_max, lane_sum};

/// Causal self-attention over head-major `heads` [batch, H + 2·Hkv, positions, d_head] (queries,
/// then keys, then values, as [`split_heads`](super::split_heads) makes them); returns
/// [batch, positions, H·d_head], the layout the output projection reads. On the CPU one fused pass per query position computes
/// only the scores it needs (half, by causality), their softmax and the weighted values: candle
/// would run one tiny threaded GEMM per head, which cost a fifth of GPT-2's forward time.
pub(crate) fn causal_attention(heads: &Tensor, layout: HeadLayout, scale: f64) -> candle_core::Result<Tensor> {
    if !heads.device().is_cpu() {
        return causal_attention_candle(heads, layout, scale);
    }
    heads.contiguous()?.apply_op1_no_bwd(&CausalAttention { layout, scale: scale as f32 })
}

/// [`causal_attention`] in candle's own ops, for devices without our kernel.
fn causal_attention_candle(heads: &Tensor, layout: HeadLayout, scale: f64) -> candle_core::Result<Tensor> {
    let HeadLayout { batch, positions, n_heads, n_kv_heads, d_head } = layout;
    let queries = heads.narrow(1, 0, n_heads)?.contiguous()?;
    let keys = heads.narrow(1, n_heads, n_kv_heads)?.contiguous()?;
    let values = heads.narrow(1, n_heads + n_kv_heads, n_kv_heads)?.contiguous()?;
    let group = n_heads / n_kv_heads;
    let grouped = queries.reshape((batch, n_kv_heads, group * positions, d_head))?;
    let scores = (grouped.matmul(&keys.t()?)? * scale)?;
    let rows = group * positions;
    let mask: Vec<f32> = (0..rows)
        .flat_map(|row| {
            (0..positions).map(move |column| if column > row % positions { f32::NEG_INFINITY } else { 0.0 })
        })
        .collect();
    let mask = Tensor::from_vec(mask, (rows, positions), scores.device())?;
    let weights = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask)?)?;
    let mixed = weights.matmul(&values)?.reshape((batch, n_heads, positions, d_head))?;
    mixed.transpose(1, 2)?.reshape((batch, positions, n_heads * d_head))
}

struct CausalAttention {
    layout: HeadLayout,
    scale: f32,
}

impl CustomOp1 for CausalAttention {
    fn name(&self) -> &'static str {
        "causal-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let heads = f32_slice(storage, layout)?;
        let HeadLayout { batch, positions, n_heads, n_kv_heads, d_head } = self.layout;
        if layout.dims() != [batch, self.layout.all_heads(), positions, d_head]
            || n_kv_heads == 0
            || n_heads % n_kv_heads != 0
        {
            candle_core::bail!("heads {:?} do not fit {:?}", layout.dims(), self.layout)
        }
        let block = positions * d_head;
        let head = |batch_index: usize, index: usize| {
            &heads[(batch_index * self.layout.all_heads() + index) * block..][..block]
        };
        let sequences: Vec<Sequence<'_>> = (0..batch)
            .map(|batch_index| Sequence {
                queries: &heads[batch_index * self.layout.all_heads() * block..][..n_heads * block],
                keys: (0..n_kv_heads).map(|kv_head| head(batch_index, n_heads + kv_head)).collect(),
                values: (0..n_kv_heads).map(|kv_head| head(batch_index, n_heads + n_kv_heads + kv_head)).collect(),
            })
            .collect();
        let shape = AttentionShape { n_heads, n_kv_heads, d_head, rows: positions, first_position: 0 };
        let out = attend(&sequences, shape, self.scale);
        Ok((CpuStorage::F32(out), Shape::from((batch, positions, n_heads * d_head))))
    }
}

/// One sequence's operands for [`attend`].
pub(super) struct Sequence<'a> {
    /// Head-major [H, rows, d_head].
    pub(super) queries: &'a [f32],
    /// Per key/value head, [at least first_position + rows, d_head], row t for position t.
    pub(super) keys: Vec<&'a [f32]>,
    /// As `keys`.
    pub(super) values: Vec<&'a [f32]>,
}

/// The attention output [batch, rows, H·d_head] of every sequence's query rows, which are
/// positions `first_position..` and see every key up to their own position. The caller has
/// checked the operands against `shape`.
pub(super) fn attend(sequences: &[Sequence<'_>], shape: AttentionShape, scale: f32) -> Vec<f32> {
    let AttentionShape { n_heads, n_kv_heads, d_head, rows, first_position } = shape;
    let total = first_position + rows;
    let key_row = total.next_multiple_of(KEY_ROW_MULTIPLE);
    let arch = pulp::Arch::new();

    let mut key_panels = vec![0f32; sequences.len() * n_kv_heads * d_head * key_row];
    key_panels.par_chunks_mut(d_head * key_row).enumerate().for_each(|(block, panels)| {
        let keys = &sequences[block / n_kv_heads].keys[block % n_kv_heads][..total * d_head];
        arch.dispatch(KeyPanels { keys, d_head, panels })
    });

    let width = n_heads * d_head;
    let mut out = vec![0f32; sequences.len() * rows * width];
    let sequence_panels = n_kv_heads * d_head * key_row;
    out.par_chunks_mut(rows * width).zip(sequences).enumerate().for_each(|(index, (out, sequence))| {
        let key_panels = &key_panels[index * sequence_panels..][..sequence_panels];
        out.par_chunks_mut(QUERY_TILE * width).enumerate().for_each_init(
            || TileScratch {
                scores: vec![0f32; QUERY_TILE * key_row],
                query_columns: vec![0f32; QUERY_TILE * d_head],
                weight_columns: vec![0f32; QUERY_TILE * key_row],
            },
            |scratch, (tile, out_rows)| {
                arch.dispatch(AttentionTile {
                    shape,
                    first_row: tile * QUERY_TILE,
                    scale,
                    sequence,
                    key_panels,
                    key_row,
                    scratch,
                    out_rows,
                })
            },
        );
    });
    out
}

/// Query positions per attention tile: each loaded key and value serves this many queries.
pub(super) const QUERY_TILE: usize = 4;

/// Keys are padded to a multiple of this many positions: a panel of two vectors of the widest
/// SIMD (AVX-512), so every panel is whole whatever the instruction set.
const KEY_ROW_MULTIPLE: usize = 32;

/// One sequence's keys of one kv head, [positions, d_head], rearranged into panels of two vectors'
/// width of positions, each panel [d_head, 2·lanes] ("packed" as a GEMM packs its right operand):
/// the score tile is then a broadcast-and-FMA product over one contiguous panel, instead of dot
/// products that each end in a horizontal sum. Padding positions stay zero.
struct KeyPanels<'a> {
    keys: &'a [f32],
    d_head: usize,
    panels: &'a mut [f32],
}

impl pulp::WithSimd for KeyPanels<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let panel_width = 2 * S::F32_LANES;
        for (position, key) in self.keys.chunks_exact(self.d_head).enumerate() {
            let start = (position / panel_width) * self.d_head * panel_width + position % panel_width;
            for (slot, &value) in self.panels[start..].iter_mut().step_by(panel_width).zip(key) {
                *slot = value;
            }
        }
    }
}

/// The shape of one [`attend`] call.
#[derive(Clone, Copy, Debug)]
pub(super) struct AttentionShape {
    pub(super) n_heads: usize,
    pub(super) n_kv_heads: usize,
    pub(super) d_head: usize,
    /// Query rows per sequence.
    pub(super) rows: usize,
    /// The position of the first query row (0 unless keys of earlier positions are cached).
    pub(super) first_position: usize,
}

/// A worker's scratch for [`AttentionTile`], reused across tiles.
struct TileScratch {
    /// [`QUERY_TILE`] rows of `key_row` scores, then softmax weights.
    scores: Vec<f32>,
    /// The tile's queries by channel: `[channel][row]`.
    query_columns: Vec<f32>,
    /// The weights by key: `[key][row]`, zero past each row's position.
    weight_columns: Vec<f32>,
}

/// Every head's attention output at up to [`QUERY_TILE`] consecutive positions of one sequence;
/// a `WithSimd` type for the reason in [`super`].
struct AttentionTile<'a> {
    shape: AttentionShape,
    /// The tile's first query row.
    first_row: usize,
    scale: f32,
    sequence: &'a Sequence<'a>,
    /// [`KeyPanels`] of the sequence's kv heads, `d_head · key_row` floats each.
    key_panels: &'a [f32],
    key_row: usize,
    scratch: &'a mut TileScratch,
    /// The tile's rows of the [rows, H·d_head] output.
    out_rows: &'a mut [f32],
}

impl pulp::WithSimd for AttentionTile<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let AttentionShape { n_heads, n_kv_heads, d_head, rows: sequence_rows, .. } = self.shape;
        // Positions of the tile's first row (its first visible keys end there).
        let (key_row, first) = (self.key_row, self.shape.first_position + self.first_row);
        let TileScratch { scores, query_columns, weight_columns } = self.scratch;
        let width = n_heads * d_head;
        let rows = self.out_rows.len() / width;
        let visible = first + rows;
        let lanes = S::F32_LANES;
        let panel_floats = 2 * lanes * d_head;
        let row_vectors = key_row / lanes;
        let group = n_heads / n_kv_heads;
        let zero = simd.splat_f32s(0.0);
        for head in 0..n_heads {
            let kv_head = head / group;
            // Rows past the sequence's end repeat its last query; their scores are not used.
            let query_start = (head * sequence_rows + self.first_row) * d_head;
            for (channel, column) in query_columns.chunks_exact_mut(QUERY_TILE).enumerate() {
                for (row, slot) in column.iter_mut().enumerate() {
                    *slot = self.sequence.queries[query_start + row.min(rows - 1) * d_head + channel];
                }
            }

            let panels = &self.key_panels[kv_head * d_head * key_row..][..d_head * key_row];
            let score_vectors = S::as_mut_simd_f32s(&mut scores[..QUERY_TILE * key_row]).0;
            for (panel_index, panel) in panels.chunks_exact(panel_floats).take(visible.div_ceil(2 * lanes)).enumerate()
            {
                let mut sums = [[zero; 2]; QUERY_TILE];
                for (keys, queries) in
                    S::as_simd_f32s(panel).0.chunks_exact(2).zip(query_columns.chunks_exact(QUERY_TILE))
                {
                    let (&[low, high], &[q0, q1, q2, q3]) = (keys, queries) else { continue };
                    for (sum, query) in sums.iter_mut().zip([q0, q1, q2, q3]) {
                        let query = simd.splat_f32s(query);
                        sum[0] = simd.mul_add_f32s(query, low, sum[0]);
                        sum[1] = simd.mul_add_f32s(query, high, sum[1]);
                    }
                }
                for (row, sum) in sums.iter().enumerate() {
                    score_vectors[row * row_vectors + 2 * panel_index..][..2].copy_from_slice(sum);
                }
            }

            // Softmax over each row's visible keys, stored by key; later keys and absent rows get
            // weight zero.
            let weights = &mut weight_columns[..visible * QUERY_TILE];
            weights.fill(0.0);
            for row in 0..rows {
                let seen = &mut scores[row * key_row..][..first + row + 1];
                for score in seen.iter_mut() {
                    *score *= self.scale;
                }
                let max = lane_max(seen);
                for score in seen.iter_mut() {
                    *score = exp(*score - max);
                }
                let inverse_sum = 1.0 / lane_sum(seen);
                for (slot, &score) in weights[row..].iter_mut().step_by(QUERY_TILE).zip(seen.iter()) {
                    *slot = score * inverse_sum;
                }
            }

            let values = &self.sequence.values[kv_head][..visible * d_head];
            let out_column = head * d_head;
            if d_head % (2 * lanes) != 0 {
                for row in 0..rows {
                    let out = &mut self.out_rows[row * width + out_column..][..d_head];
                    for (&weight, value) in weights[row..].iter().step_by(QUERY_TILE).zip(values.chunks_exact(d_head)) {
                        for (out, &value) in out.iter_mut().zip(value) {
                            *out += weight * value;
                        }
                    }
                }
                continue;
            }
            let value_vectors = S::as_simd_f32s(values).0;
            let head_vectors = d_head / lanes;
            for column in (0..head_vectors).step_by(2) {
                let mut sums = [[zero; 2]; QUERY_TILE];
                let lows = value_vectors[column..].iter().step_by(head_vectors);
                let highs = value_vectors[column + 1..].iter().step_by(head_vectors);
                for ((&low, &high), key_weights) in lows.zip(highs).zip(weights.chunks_exact(QUERY_TILE)) {
                    let &[w0, w1, w2, w3] = key_weights else { continue };
                    for (sum, weight) in sums.iter_mut().zip([w0, w1, w2, w3]) {
                        let weight = simd.splat_f32s(weight);
                        sum[0] = simd.mul_add_f32s(weight, low, sum[0]);
                        sum[1] = simd.mul_add_f32s(weight, high, sum[1]);
                    }
                }
                for (row, sum) in sums.iter().enumerate().take(rows) {
                    let out = &mut self.out_rows[row * width + out_column..][..d_head];
                    S::as_mut_simd_f32s(out).0[column..][..2].copy_from_slice(sum);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{largest_difference, random};

    /// The kernel and the candle fallback other devices use must agree, so a GPU run records the
    /// same activations.
    #[test]
    fn attention_kernel_matches_candle_fallback() {
        // Head widths with and without whole vector pairs; positions that end mid-tile and span
        // several key tiles.
        for (positions, d_head, seed) in [(7, 8, 3), (37, 32, 4), (70, 64, 5)] {
            let layout = HeadLayout { batch: 2, positions, n_heads: 6, n_kv_heads: 2, d_head };
            let heads = random(&[2, 10, positions, d_head], seed);
            let kernel = causal_attention(&heads, layout, 0.35).expect("kernel");
            let fallback = causal_attention_candle(&heads, layout, 0.35).expect("fallback");
            assert!(largest_difference(&kernel, &fallback) < 1e-5, "{layout:?}");
        }
    }
}
