//! Bidirectional self-attention over padded sequences on the CPU, as an encoder (the sentence
//! encoder's BERT) computes it: each query position of each head against every real key of its
//! sequence, the softmax and the weighted values in one pass, read straight from the Q/K/V product
//! and written in the layout the output projection reads. candle would need a copy into head-major
//! layout, one tiny threaded GEMM per head for the scores and another for the values, and a copy
//! back; for a search query that was most of the time outside the linear layers. Other devices use
//! candle's own ops.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{ROWS_PER_TASK, f32_slice};
use super::math::{exp, lane_max, lane_sum};

/// The shape of a batch of padded sequences.
#[derive(Clone, Debug)]
pub(crate) struct PaddedBatch {
    /// Positions per sequence, padding included.
    pub(crate) positions: usize,
    /// Real tokens of each sequence; the rest of its positions are padding.
    pub(crate) lengths: Vec<usize>,
    pub(crate) n_heads: usize,
    pub(crate) d_head: usize,
}

/// Attention for `qkv` [sequences · positions, 3 · n_heads · d_head]: each row holds the queries of
/// every head, then the keys, then the values (heads side by side, as BERT's `query`, `key` and
/// `value` projections concatenated give them), the queries already scaled by 1/√d_head. Padded
/// keys get no weight, exactly as transformers' additive mask of the float minimum gives them;
/// padded query rows come back zero. Returns [sequences · positions, n_heads · d_head].
pub(crate) fn padded_attention(qkv: &Tensor, batch: &PaddedBatch) -> candle_core::Result<Tensor> {
    if !qkv.device().is_cpu() {
        return padded_attention_candle(qkv, batch);
    }
    qkv.contiguous()?.apply_op1_no_bwd(&PaddedAttention { batch: batch.clone() })
}

/// [`padded_attention`] in candle's own ops, for devices without our kernel.
fn padded_attention_candle(qkv: &Tensor, batch: &PaddedBatch) -> candle_core::Result<Tensor> {
    let PaddedBatch { positions, ref lengths, n_heads, d_head } = *batch;
    let n_sequences = lengths.len();
    let width = n_heads * d_head;
    let heads = qkv.reshape((n_sequences, positions, 3, n_heads, d_head))?.permute((2, 0, 3, 1, 4))?.contiguous()?;
    let (queries, keys, values) = (heads.get(0)?, heads.get(1)?, heads.get(2)?);
    let mask: Vec<f32> = lengths
        .iter()
        .flat_map(|&length| (0..positions).map(move |key| if key < length { 0.0 } else { f32::MIN }))
        .collect();
    let mask = Tensor::from_vec(mask, (n_sequences, 1, 1, positions), qkv.device())?;
    let scores = queries.matmul(&keys.t()?)?.broadcast_add(&mask)?;
    let weights = candle_nn::ops::softmax_last_dim(&scores)?;
    let mixed = weights.matmul(&values)?.transpose(1, 2)?.reshape((n_sequences * positions, width))?;
    let is_query: Vec<f32> = lengths
        .iter()
        .flat_map(|&length| (0..positions).map(move |query| if query < length { 1.0 } else { 0.0 }))
        .collect();
    mixed.broadcast_mul(&Tensor::from_vec(is_query, (n_sequences * positions, 1), qkv.device())?)
}

struct PaddedAttention {
    batch: PaddedBatch,
}

impl CustomOp1 for PaddedAttention {
    fn name(&self) -> &'static str {
        "padded-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let qkv = f32_slice(storage, layout)?;
        let PaddedBatch { positions, ref lengths, n_heads, d_head } = self.batch;
        let width = n_heads * d_head;
        let rows = lengths.len() * positions;
        if layout.dims() != [rows, 3 * width] || lengths.iter().any(|&length| length > positions) {
            candle_core::bail!("qkv {:?} does not fit {:?}", layout.dims(), self.batch)
        }
        let mut out = vec![0f32; rows * width];
        let arch = pulp::Arch::new();
        out.par_chunks_mut(ROWS_PER_TASK * width).enumerate().for_each_init(
            || vec![0f32; positions],
            |scores, (chunk_idx, out_rows)| {
                arch.dispatch(AttentionRows {
                    qkv,
                    batch: &self.batch,
                    first_row: chunk_idx * ROWS_PER_TASK,
                    scores,
                    out_rows,
                })
            },
        );
        Ok((CpuStorage::F32(out), Shape::from((rows, width))))
    }
}

/// The attention output of a block of rows; a `WithSimd` type for the reason in [`super`].
struct AttentionRows<'a> {
    qkv: &'a [f32],
    batch: &'a PaddedBatch,
    first_row: usize,
    /// Scratch for one row's scores, `[positions]`.
    scores: &'a mut [f32],
    out_rows: &'a mut [f32],
}

impl pulp::WithSimd for AttentionRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let PaddedBatch { positions, ref lengths, n_heads, d_head } = *self.batch;
        let width = n_heads * d_head;
        for (row_offset, out_row) in self.out_rows.chunks_exact_mut(width).enumerate() {
            let row = self.first_row + row_offset;
            let (sequence, position) = (row / positions, row % positions);
            let length = lengths[sequence];
            if position >= length {
                continue;
            }
            let sequence_rows = &self.qkv[sequence * positions * 3 * width..][..length * 3 * width];
            let query_row = &sequence_rows[position * 3 * width..][..width];
            for head in 0..n_heads {
                let query = &query_row[head * d_head..][..d_head];
                let scores = &mut self.scores[..length];
                for (key_position, score) in scores.iter_mut().enumerate() {
                    let key = &sequence_rows[key_position * 3 * width + width + head * d_head..][..d_head];
                    *score = dot(query, key);
                }
                let max = lane_max(scores);
                for score in scores.iter_mut() {
                    *score = exp(*score - max);
                }
                let inverse_total = 1.0 / lane_sum(scores);
                let out = &mut out_row[head * d_head..][..d_head];
                for (key_position, &weight) in scores.iter().enumerate() {
                    let value = &sequence_rows[key_position * 3 * width + 2 * width + head * d_head..][..d_head];
                    let weight = weight * inverse_total;
                    for (out, &value) in out.iter_mut().zip(value) {
                        *out = weight.mul_add(value, *out);
                    }
                }
            }
        }
    }
}

/// The dot product over eight independent lanes, so it vectorises (see `math::lane_sum`).
#[inline(always)]
fn dot(left: &[f32], right: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut lanes = [0f32; LANES];
    let (left_chunks, right_chunks) = (left.chunks_exact(LANES), right.chunks_exact(LANES));
    let tail: f32 = left_chunks.remainder().iter().zip(right_chunks.remainder()).map(|(a, b)| a * b).sum();
    for (left, right) in left_chunks.zip(right_chunks) {
        for lane in 0..LANES {
            lanes[lane] = left[lane].mul_add(right[lane], lanes[lane]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{largest_difference, random};

    /// The kernel and the candle fallback agree: sequences with and without padding, one of a
    /// single token, head widths with and without whole lane blocks.
    #[test]
    fn padded_attention_kernel_matches_candle_fallback() {
        for (positions, lengths, n_heads, d_head, seed) in
            [(7, vec![7], 12, 32, 1), (9, vec![9, 3, 1, 5], 4, 12, 2), (40, vec![40, 33, 17], 3, 32, 3)]
        {
            let batch = PaddedBatch { positions, lengths: lengths.clone(), n_heads, d_head };
            // Scaled as the queries and keys of a trained model are, so the softmax is not one-hot.
            let qkv = (random(&[lengths.len() * positions, 3 * n_heads * d_head], seed) * 0.35).expect("scale");
            let kernel = padded_attention(&qkv, &batch).expect("kernel");
            let fallback = padded_attention_candle(&qkv, &batch).expect("fallback");
            let difference = largest_difference(&kernel, &fallback);
            assert!(difference < 1e-5, "{batch:?}: {difference}");
        }
    }
}
