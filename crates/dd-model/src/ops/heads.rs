//! The Q/K/V head split: the fused projection plus its bias, cut into head-major query, key and
//! value heads with rotary positions applied to the query and key heads, in one pass on the CPU
//! (instead of a bias add, three transposing copies and the rotary's copies); on other devices
//! `model.rs` splits with candle's ops. [`HeadLayout`] also tells
//! [`causal_attention`](super::causal_attention) where each head is.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{bias_or_zeros, f32_slice};

/// How the fused Q/K/V projection is split into heads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadLayout {
    pub(crate) batch: usize,
    pub(crate) positions: usize,
    pub(crate) n_heads: usize,
    pub(crate) n_kv_heads: usize,
    pub(crate) d_head: usize,
}

impl HeadLayout {
    /// Query, key and value heads together.
    pub(super) fn all_heads(self) -> usize {
        self.n_heads + 2 * self.n_kv_heads
    }
}

/// Rotary tables on the host, shared by every call: `cos[t·half + i]`, `sin[t·half + i]`.
#[derive(Clone, Debug)]
pub(crate) struct RotaryHost {
    pub(crate) cos: std::sync::Arc<Vec<f32>>,
    pub(crate) sin: std::sync::Arc<Vec<f32>>,
    /// Rotated channels per head.
    pub(crate) dims: usize,
    /// Adjacent channel pairs (GGUF) rather than halves (HF, GPT-NeoX).
    pub(crate) interleaved: bool,
}

/// CPU only: the fused projection `qkv` [batch·positions, (H + 2·Hkv)·d_head] plus `bias`, split
/// into head-major [batch, H + 2·Hkv, positions, d_head] with rotary applied to the query and key
/// heads, in one pass (instead of a bias add, three transposing copies and the rotary's copies).
/// The rows are positions `first_position..` (after a cache of earlier positions, when generating).
pub(crate) fn split_heads(
    qkv: &Tensor,
    bias: Option<&Tensor>,
    layout: HeadLayout,
    rotary: Option<&RotaryHost>,
    first_position: usize,
) -> candle_core::Result<Tensor> {
    let qkv = qkv.contiguous()?;
    let bias = bias_or_zeros(bias, layout.all_heads() * layout.d_head, qkv.device())?;
    qkv.apply_op2_no_bwd(&bias, &SplitHeads { layout, rotary: rotary.cloned(), first_position })
}

struct SplitHeads {
    layout: HeadLayout,
    rotary: Option<RotaryHost>,
    first_position: usize,
}

impl CustomOp2 for SplitHeads {
    fn name(&self) -> &'static str {
        "split-heads"
    }

    fn cpu_fwd(
        &self,
        qkv_storage: &CpuStorage,
        qkv_layout: &Layout,
        bias_storage: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let qkv = f32_slice(qkv_storage, qkv_layout)?;
        let bias = f32_slice(bias_storage, bias_layout)?;
        let HeadLayout { batch, positions, d_head, .. } = self.layout;
        let all_heads = self.layout.all_heads();
        let width = all_heads * d_head;
        if qkv_layout.dims() != [batch * positions, width] || bias.len() != width {
            candle_core::bail!("projection {:?} does not fit {:?}", qkv_layout.dims(), self.layout)
        }
        let last_position = self.first_position + positions;
        if let Some(rotary) = &self.rotary {
            let half = rotary.dims / 2;
            if rotary.dims > d_head
                || rotary.cos.len() < last_position * half
                || rotary.sin.len() < last_position * half
            {
                candle_core::bail!("rotary tables do not cover {last_position} positions of {d_head} channels")
            }
        }
        let mut out = vec![0f32; batch * width * positions];
        let arch = pulp::Arch::new();
        let rotated_heads = self.layout.n_heads + self.layout.n_kv_heads;
        out.par_chunks_mut(positions * d_head).enumerate().for_each(|(block, out_block)| {
            let (batch_index, head) = (block / all_heads, block % all_heads);
            arch.dispatch(SplitHeadBlock {
                qkv_rows: &qkv[batch_index * positions * width..(batch_index + 1) * positions * width],
                bias: &bias[head * d_head..(head + 1) * d_head],
                column: head * d_head,
                width,
                rotary: self.rotary.as_ref().filter(|_| head < rotated_heads),
                first_position: self.first_position,
                out_block,
            })
        });
        Ok((CpuStorage::F32(out), Shape::from((batch, all_heads, positions, d_head))))
    }
}

/// One head of one sequence for [`SplitHeads`]; a `WithSimd` type for the reason in [`super`].
struct SplitHeadBlock<'a> {
    qkv_rows: &'a [f32],
    bias: &'a [f32],
    column: usize,
    width: usize,
    rotary: Option<&'a RotaryHost>,
    /// The position of the first row, where the rotary tables are read from.
    first_position: usize,
    out_block: &'a mut [f32],
}

impl pulp::WithSimd for SplitHeadBlock<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let d_head = self.bias.len();
        for (position, out) in self.out_block.chunks_exact_mut(d_head).enumerate() {
            let source = &self.qkv_rows[position * self.width + self.column..][..d_head];
            for ((out, &value), &bias) in out.iter_mut().zip(source).zip(self.bias) {
                *out = value + bias;
            }
            let Some(rotary) = self.rotary else { continue };
            let half = rotary.dims / 2;
            let cos = &rotary.cos[(self.first_position + position) * half..][..half];
            let sin = &rotary.sin[(self.first_position + position) * half..][..half];
            if rotary.interleaved {
                for (pair, (&cos, &sin)) in out[..rotary.dims].chunks_exact_mut(2).zip(cos.iter().zip(sin)) {
                    let (first, second) = (pair[0], pair[1]);
                    pair[0] = first * cos - second * sin;
                    pair[1] = second * cos + first * sin;
                }
            } else {
                let (low, high) = out[..rotary.dims].split_at_mut(half);
                for (((low, high), &cos), &sin) in low.iter_mut().zip(high.iter_mut()).zip(cos).zip(sin) {
                    let (first, second) = (*low, *high);
                    *low = first * cos - second * sin;
                    *high = second * cos + first * sin;
                }
            }
        }
    }
}
