//! Element-wise MLP kernels on f32 slices, fused with the bias add. candle's CPU GELU and SiLU are
//! scalar and single-threaded (a third of a GPT-2 layer's time); these run on every core with the
//! widest SIMD the CPU has, and fall back to candle's own ops on other devices.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::config::Activation;

/// Rows handed to one rayon task: large enough to amortise scheduling, small enough to balance.
const ROWS_PER_TASK: usize = 16;

/// `act(x + bias)` for `x` of shape [rows, n] and `bias` of shape [n] (or no bias).
/// For SoLU this is the `hook_mid` value `pre · softmax(pre)`; the LayerNorm follows separately.
pub(crate) fn bias_activation(
    x: &Tensor,
    bias: Option<&Tensor>,
    activation: Activation,
) -> candle_core::Result<Tensor> {
    let x = x.contiguous()?;
    if !x.device().is_cpu() {
        return bias_activation_candle(&x, bias, activation);
    }
    let bias = bias_or_zeros(bias, x.dim(candle_core::D::Minus1)?, x.device())?;
    x.apply_op2_no_bwd(&bias, &BiasActivation { activation, solu_norm_eps: None })
}

/// [`bias_activation`] in candle's own ops, for devices without our kernels.
fn bias_activation_candle(x: &Tensor, bias: Option<&Tensor>, activation: Activation) -> candle_core::Result<Tensor> {
    let pre = match bias {
        Some(bias) => x.broadcast_add(bias)?,
        None => x.clone(),
    };
    match activation {
        Activation::GeluTanh => pre.gelu(),
        Activation::GeluErf => pre.gelu_erf(),
        Activation::Relu => pre.relu(),
        Activation::Silu => pre.silu(),
        Activation::SoluLayerNorm => pre.mul(&candle_nn::ops::softmax_last_dim(&pre)?),
    }
}

/// SoLU's `hook_post` in one pass: `LayerNorm(pre · softmax(pre))` without affine, `pre = x + bias`.
/// Used when `hook_mid` is not wanted, saving a pass over the MLP and an allocation.
pub(crate) fn bias_solu_normalized(x: &Tensor, bias: Option<&Tensor>, eps: f64) -> candle_core::Result<Tensor> {
    let x = x.contiguous()?;
    if !x.device().is_cpu() {
        let mid = bias_activation(&x, bias, Activation::SoluLayerNorm)?;
        let width = mid.dim(candle_core::D::Minus1)?;
        let ones = Tensor::ones(width, candle_core::DType::F32, mid.device())?;
        let zeros = Tensor::zeros(width, candle_core::DType::F32, mid.device())?;
        return candle_nn::ops::layer_norm(&mid, &ones, &zeros, eps as f32);
    }
    let bias = bias_or_zeros(bias, x.dim(candle_core::D::Minus1)?, x.device())?;
    x.apply_op2_no_bwd(
        &bias,
        &BiasActivation { activation: Activation::SoluLayerNorm, solu_norm_eps: Some(eps as f32) },
    )
}

/// A normalisation's parameters as the fused residual kernel reads them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NormParameters<'a> {
    /// γ, [width].
    pub(crate) scale: &'a Tensor,
    /// β, [width]; `None` for RMSNorm.
    pub(crate) shift: Option<&'a Tensor>,
    pub(crate) eps: f64,
}

/// One step of the residual stream: `residual + Σ (addend + bias)`, and that sum through each of
/// `norms` (one, or two for a parallel residual), in one pass over the rows on the CPU, instead of
/// a bias add, an add and a normalisation pass per step, each with a fresh tensor. Addends and the
/// residual are [rows, width]; returns the new residual and one normalised tensor per norm.
pub(crate) fn add_and_normalize(
    residual: &Tensor,
    addends: &[(Tensor, Option<Tensor>)],
    norms: &[NormParameters<'_>],
) -> candle_core::Result<(Tensor, Vec<Tensor>)> {
    if !residual.device().is_cpu() || norms.len() > 2 || addends.len() > 2 {
        return add_and_normalize_candle(residual, addends, norms);
    }
    let (rows, width) = residual.dims2()?;
    let zeros = Tensor::zeros(width, candle_core::DType::F32, residual.device())?;
    let mut inputs = vec![residual.contiguous()?];
    for (addend, bias) in addends {
        inputs.push(addend.contiguous()?);
        inputs.push(bias.as_ref().unwrap_or(&zeros).contiguous()?);
    }
    for norm in norms {
        inputs.push(norm.scale.contiguous()?);
        inputs.push(norm.shift.unwrap_or(&zeros).contiguous()?);
    }
    let guards: Vec<_> = inputs.iter().map(Tensor::storage_and_layout).collect();
    let mut slices = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let candle_core::Storage::Cpu(storage) = &**storage else { candle_core::bail!("expected CPU data") };
        slices.push(f32_slice(storage, layout)?);
    }
    let (residual_values, rest) = slices.split_first().expect("the residual is the first input");
    let (addend_values, norm_values) = rest.split_at(2 * addends.len());
    let fits = |values: &[f32], length: usize| values.len() == length;
    if !fits(residual_values, rows * width)
        || addend_values.chunks(2).any(|pair| !fits(pair[0], rows * width) || !fits(pair[1], width))
        || norm_values.iter().any(|values| !fits(values, width))
    {
        candle_core::bail!("residual step: inputs do not all fit [{rows}, {width}]")
    }
    let addend_pairs: Vec<(&[f32], &[f32])> = addend_values.chunks(2).map(|pair| (pair[0], pair[1])).collect();
    let norm_steps: Vec<RowNorm<'_>> = norm_values
        .chunks(2)
        .zip(norms)
        .map(|(pair, norm)| RowNorm {
            scale: pair[0],
            shift: pair[1],
            eps: norm.eps as f32,
            centred: norm.shift.is_some(),
        })
        .collect();

    let mut new_residual = vec![0f32; rows * width];
    let mut normalized: Vec<Vec<f32>> = norms.iter().map(|_| vec![0f32; rows * width]).collect();
    let arch = pulp::Arch::new();
    let chunk = width * ROWS_PER_TASK;
    let step = |index: usize, out: &mut [f32], normalized: &mut [&mut [f32]]| {
        arch.dispatch(ResidualRows {
            residual: &residual_values[index * chunk..][..out.len()],
            addends: &addend_pairs,
            first_value: index * chunk,
            norms: &norm_steps,
            width,
            out,
            normalized,
        })
    };
    match normalized.as_mut_slice() {
        [] => new_residual.par_chunks_mut(chunk).enumerate().for_each(|(index, out)| step(index, out, &mut [])),
        [first] => new_residual
            .par_chunks_mut(chunk)
            .zip(first.par_chunks_mut(chunk))
            .enumerate()
            .for_each(|(index, (out, first))| step(index, out, &mut [first])),
        [first, second] => new_residual
            .par_chunks_mut(chunk)
            .zip(first.par_chunks_mut(chunk))
            .zip(second.par_chunks_mut(chunk))
            .enumerate()
            .for_each(|(index, ((out, first), second))| step(index, out, &mut [first, second])),
        _ => unreachable!("at most two norms take this path"),
    }
    let device = residual.device();
    let normalized = normalized
        .into_iter()
        .map(|values| Tensor::from_vec(values, (rows, width), device))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok((Tensor::from_vec(new_residual, (rows, width), device)?, normalized))
}

/// [`add_and_normalize`] in candle's own ops, for devices without our kernels.
fn add_and_normalize_candle(
    residual: &Tensor,
    addends: &[(Tensor, Option<Tensor>)],
    norms: &[NormParameters<'_>],
) -> candle_core::Result<(Tensor, Vec<Tensor>)> {
    let mut sum = residual.clone();
    for (addend, bias) in addends {
        sum = (sum + addend)?;
        if let Some(bias) = bias {
            sum = sum.broadcast_add(bias)?;
        }
    }
    let normalized = norms
        .iter()
        .map(|norm| match norm.shift {
            Some(shift) => candle_nn::ops::layer_norm(&sum, norm.scale, shift, norm.eps as f32),
            None => candle_nn::ops::rms_norm(&sum, norm.scale, norm.eps as f32),
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok((sum, normalized))
}

/// One normalisation as [`ResidualRows`] applies it.
struct RowNorm<'a> {
    scale: &'a [f32],
    shift: &'a [f32],
    eps: f32,
    /// LayerNorm subtracts the mean; RMSNorm does not.
    centred: bool,
}

/// A block of rows of [`add_and_normalize`]; see [`ActivationRows`] for why it is a type.
struct ResidualRows<'a, 'b> {
    residual: &'a [f32],
    /// (values of the whole batch, bias) per addend.
    addends: &'a [(&'a [f32], &'a [f32])],
    /// Where this block starts in the batch's values.
    first_value: usize,
    norms: &'a [RowNorm<'a>],
    width: usize,
    out: &'a mut [f32],
    normalized: &'a mut [&'b mut [f32]],
}

impl pulp::WithSimd for ResidualRows<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let width = self.width;
        for (row, (out, residual)) in
            self.out.chunks_exact_mut(width).zip(self.residual.chunks_exact(width)).enumerate()
        {
            out.copy_from_slice(residual);
            for (values, bias) in self.addends {
                let addend = &values[self.first_value + row * width..][..width];
                for ((out, &value), &bias) in out.iter_mut().zip(addend).zip(*bias) {
                    *out += value + bias;
                }
            }
            for (norm, normalized) in self.norms.iter().zip(self.normalized.iter_mut()) {
                let normalized = &mut normalized[row * width..][..width];
                normalize_row_into(out, norm, normalized);
            }
        }
    }
}

/// `norm(row)` into `out`.
#[inline(always)]
fn normalize_row_into(row: &[f32], norm: &RowNorm<'_>, out: &mut [f32]) {
    let (mean, inverse_std) = mean_and_inverse_std(row, norm.centred, norm.eps);
    for (((out, &value), &scale), &shift) in out.iter_mut().zip(row).zip(norm.scale).zip(norm.shift) {
        *out = (value - mean) * inverse_std * scale + shift;
    }
}

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
    fn all_heads(self) -> usize {
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
pub(crate) fn split_heads(
    qkv: &Tensor,
    bias: Option<&Tensor>,
    layout: HeadLayout,
    rotary: Option<&RotaryHost>,
) -> candle_core::Result<Tensor> {
    let qkv = qkv.contiguous()?;
    let bias = bias_or_zeros(bias, layout.all_heads() * layout.d_head, qkv.device())?;
    qkv.apply_op2_no_bwd(&bias, &SplitHeads { layout, rotary: rotary.cloned() })
}

struct SplitHeads {
    layout: HeadLayout,
    rotary: Option<RotaryHost>,
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
        if let Some(rotary) = &self.rotary {
            let half = rotary.dims / 2;
            if rotary.dims > d_head || rotary.cos.len() < positions * half || rotary.sin.len() < positions * half {
                candle_core::bail!("rotary tables do not cover {positions} positions of {d_head} channels")
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
                out_block,
            })
        });
        Ok((CpuStorage::F32(out), Shape::from((batch, all_heads, positions, d_head))))
    }
}

/// One head of one sequence for [`SplitHeads`]; see [`ActivationRows`] for why it is a type.
struct SplitHeadBlock<'a> {
    qkv_rows: &'a [f32],
    bias: &'a [f32],
    column: usize,
    width: usize,
    rotary: Option<&'a RotaryHost>,
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
            let cos = &rotary.cos[position * half..][..half];
            let sin = &rotary.sin[position * half..][..half];
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

/// Causal self-attention over head-major `heads` [batch, H + 2·Hkv, positions, d_head] (queries,
/// then keys, then values, as [`split_heads`] makes them); returns [batch, positions, H·d_head],
/// the layout the output projection reads. On the CPU one fused pass per query position computes
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
        let shape = AttentionShape { n_heads, n_kv_heads, positions, d_head };
        let key_row = positions.next_multiple_of(KEY_ROW_MULTIPLE);
        let arch = pulp::Arch::new();

        let mut key_panels = vec![0f32; batch * n_kv_heads * d_head * key_row];
        key_panels.par_chunks_mut(d_head * key_row).enumerate().for_each(|(block, panels)| {
            let (batch_index, kv_head) = (block / n_kv_heads, block % n_kv_heads);
            let keys = &heads[shape.head_start(batch_index, n_heads + kv_head)..][..positions * d_head];
            arch.dispatch(KeyPanels { keys, d_head, panels })
        });

        let width = n_heads * d_head;
        let mut out = vec![0f32; batch * positions * width];
        let (scale, key_panels) = (self.scale, &key_panels);
        out.par_chunks_mut(positions * width).enumerate().for_each(|(batch_index, sequence)| {
            sequence.par_chunks_mut(QUERY_TILE * width).enumerate().for_each_init(
                || TileScratch {
                    scores: vec![0f32; QUERY_TILE * key_row],
                    query_columns: vec![0f32; QUERY_TILE * d_head],
                    weight_columns: vec![0f32; QUERY_TILE * key_row],
                },
                |scratch, (tile, out_rows)| {
                    arch.dispatch(AttentionTile {
                        shape,
                        batch_index,
                        first_position: tile * QUERY_TILE,
                        scale,
                        heads,
                        key_panels,
                        key_row,
                        scratch,
                        out_rows,
                    })
                },
            );
        });
        Ok((CpuStorage::F32(out), Shape::from((batch, positions, n_heads * d_head))))
    }
}

/// Query positions per attention tile: each loaded key and value serves this many queries.
const QUERY_TILE: usize = 4;

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

#[derive(Clone, Copy)]
struct AttentionShape {
    n_heads: usize,
    n_kv_heads: usize,
    positions: usize,
    d_head: usize,
}

impl AttentionShape {
    /// Where `head` of sequence `batch_index` starts in the head-major input.
    fn head_start(self, batch_index: usize, head: usize) -> usize {
        (batch_index * (self.n_heads + 2 * self.n_kv_heads) + head) * self.positions * self.d_head
    }
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
/// see [`ActivationRows`] for why it is a type.
struct AttentionTile<'a> {
    shape: AttentionShape,
    batch_index: usize,
    first_position: usize,
    scale: f32,
    /// Head-major queries, keys and values of the whole batch.
    heads: &'a [f32],
    /// [`KeyPanels`] of every (sequence, kv head), `d_head · key_row` floats each.
    key_panels: &'a [f32],
    key_row: usize,
    scratch: &'a mut TileScratch,
    /// The tile's rows of the [batch·positions, H·d_head] output.
    out_rows: &'a mut [f32],
}

impl pulp::WithSimd for AttentionTile<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let AttentionShape { n_heads, n_kv_heads, d_head, .. } = self.shape;
        let (key_row, first) = (self.key_row, self.first_position);
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
            let query_start = self.shape.head_start(self.batch_index, head) + first * d_head;
            for (channel, column) in query_columns.chunks_exact_mut(QUERY_TILE).enumerate() {
                for (row, slot) in column.iter_mut().enumerate() {
                    *slot = self.heads[query_start + row.min(rows - 1) * d_head + channel];
                }
            }

            let panels_start = (self.batch_index * n_kv_heads + kv_head) * d_head * key_row;
            let panels = &self.key_panels[panels_start..][..d_head * key_row];
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

            let values_start = self.shape.head_start(self.batch_index, n_heads + n_kv_heads + kv_head);
            let values = &self.heads[values_start..][..visible * d_head];
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

/// Independent accumulators per reduction. Floating-point sums and maxima are not reassociated by
/// the compiler, so a single running value is a serial chain; eight lanes vectorise.
const LANES: usize = 8;

/// The sum of `values` over [`LANES`] accumulators.
#[inline(always)]
fn lane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for lane in 0..LANES {
            lanes[lane] += chunk[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The maximum of `values` (−∞ when empty) over [`LANES`] accumulators.
#[inline(always)]
fn lane_max(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(f32::NEG_INFINITY, |max, &value| max.max(value));
    for chunk in chunks {
        for lane in 0..LANES {
            lanes[lane] = lanes[lane].max(chunk[lane]);
        }
    }
    lanes.iter().fold(tail, |max, &value| max.max(value))
}

/// `silu(gate) · up` for `x` of shape [rows, 2n] holding `[gate | up]` per row; returns [rows, n].
pub(crate) fn gated_silu(x: &Tensor) -> candle_core::Result<Tensor> {
    let x = x.contiguous()?;
    let n_columns = x.dim(candle_core::D::Minus1)? / 2;
    if !x.device().is_cpu() {
        let gate = x.narrow(candle_core::D::Minus1, 0, n_columns)?;
        let up = x.narrow(candle_core::D::Minus1, n_columns, n_columns)?;
        return gate.silu()?.mul(&up);
    }
    x.apply_op1_no_bwd(&GatedSilu)
}

struct BiasActivation {
    activation: Activation,
    /// For SoLU: also apply the MLP LayerNorm (no affine) with this epsilon.
    solu_norm_eps: Option<f32>,
}

impl CustomOp2 for BiasActivation {
    fn name(&self) -> &'static str {
        "bias-activation"
    }

    fn cpu_fwd(
        &self,
        x_storage: &CpuStorage,
        x_layout: &Layout,
        bias_storage: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(x_storage, x_layout)?;
        let bias = f32_slice(bias_storage, bias_layout)?;
        let n_columns = bias.len();
        if n_columns == 0 || x.len() % n_columns != 0 || x_layout.dims().last() != Some(&n_columns) {
            candle_core::bail!("bias of {n_columns} does not fit input {:?}", x_layout.dims())
        }
        let mut out = vec![0f32; x.len()];
        let (activation, solu_norm_eps) = (self.activation, self.solu_norm_eps);
        let arch = pulp::Arch::new();
        out.par_chunks_mut(n_columns * ROWS_PER_TASK).zip(x.par_chunks(n_columns * ROWS_PER_TASK)).for_each(
            |(out_rows, x_rows)| arch.dispatch(ActivationRows { activation, solu_norm_eps, x_rows, bias, out_rows }),
        );
        Ok((CpuStorage::F32(out), x_layout.shape().clone()))
    }
}

struct GatedSilu;

impl CustomOp1 for GatedSilu {
    fn name(&self) -> &'static str {
        "gated-silu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout)?;
        let dims = layout.dims();
        let Some((&width, leading)) = dims.split_last() else { candle_core::bail!("gated-silu needs a matrix") };
        if width % 2 != 0 || width == 0 {
            candle_core::bail!("gated-silu needs an even, positive width, got {width}")
        }
        let n_columns = width / 2;
        let mut out = vec![0f32; x.len() / 2];
        let arch = pulp::Arch::new();
        out.par_chunks_mut(n_columns * ROWS_PER_TASK)
            .zip(x.par_chunks(width * ROWS_PER_TASK))
            .for_each(|(out_rows, x_rows)| arch.dispatch(GatedSiluRows { n_columns, x_rows, out_rows }));
        let mut out_dims = leading.to_vec();
        out_dims.push(n_columns);
        Ok((CpuStorage::F32(out), Shape::from(out_dims)))
    }
}

/// A block of rows of [`BiasActivation`]. A `WithSimd` type, not a closure, so that pulp inlines
/// the loops into its AVX2/AVX-512 entry points and they are compiled for those instruction sets.
struct ActivationRows<'a> {
    activation: Activation,
    solu_norm_eps: Option<f32>,
    x_rows: &'a [f32],
    bias: &'a [f32],
    out_rows: &'a mut [f32],
}

impl pulp::WithSimd for ActivationRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let n_columns = self.bias.len();
        for (out_row, x_row) in self.out_rows.chunks_exact_mut(n_columns).zip(self.x_rows.chunks_exact(n_columns)) {
            activation_row(self.activation, x_row, self.bias, out_row);
            if let Some(eps) = self.solu_norm_eps {
                normalize_row(out_row, eps);
            }
        }
    }
}

/// A block of rows of [`GatedSilu`]; see [`ActivationRows`] for why it is a type.
struct GatedSiluRows<'a> {
    /// Output width; input rows are twice as wide.
    n_columns: usize,
    x_rows: &'a [f32],
    out_rows: &'a mut [f32],
}

impl pulp::WithSimd for GatedSiluRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let n_columns = self.n_columns;
        for (out_row, x_row) in self.out_rows.chunks_exact_mut(n_columns).zip(self.x_rows.chunks_exact(2 * n_columns)) {
            let (gate, up) = x_row.split_at(n_columns);
            for ((out, &gate), &up) in out_row.iter_mut().zip(gate).zip(up) {
                *out = gate / (1.0 + exp(-gate)) * up;
            }
        }
    }
}

/// The bias as the kernels read it: contiguous, or zeros for a layer without one.
fn bias_or_zeros(bias: Option<&Tensor>, width: usize, device: &candle_core::Device) -> candle_core::Result<Tensor> {
    match bias {
        Some(bias) => bias.contiguous(),
        None => Tensor::zeros(width, candle_core::DType::F32, device),
    }
}

/// The contiguous f32 data a layout addresses.
fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else { candle_core::bail!("expected f32 data") };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("expected contiguous data"),
    }
}

/// One row of `act(x + bias)`. Every branch is a straight loop the compiler vectorises.
#[inline(always)]
fn activation_row(activation: Activation, x: &[f32], bias: &[f32], out: &mut [f32]) {
    match activation {
        Activation::GeluTanh => {
            for ((out, &x), &bias) in out.iter_mut().zip(x).zip(bias) {
                *out = gelu_tanh(x + bias);
            }
        }
        Activation::GeluErf => {
            for ((out, &x), &bias) in out.iter_mut().zip(x).zip(bias) {
                *out = gelu_erf(x + bias);
            }
        }
        Activation::Relu => {
            for ((out, &x), &bias) in out.iter_mut().zip(x).zip(bias) {
                *out = (x + bias).max(0.0);
            }
        }
        Activation::Silu => {
            for ((out, &x), &bias) in out.iter_mut().zip(x).zip(bias) {
                let pre = x + bias;
                *out = pre / (1.0 + exp(-pre));
            }
        }
        Activation::SoluLayerNorm => {
            // One exp per element: e^(pre - max) is kept in `out`, then pre · e / Σe with pre
            // recomputed from the input (cheaper than a second exp).
            for ((out, &x), &bias) in out.iter_mut().zip(x).zip(bias) {
                *out = x + bias;
            }
            let max = lane_max(out);
            for out in out.iter_mut() {
                *out = exp(*out - max);
            }
            let inverse_sum = 1.0 / lane_sum(out);
            for ((out, &x), &bias) in out.iter_mut().zip(x).zip(bias) {
                *out *= (x + bias) * inverse_sum;
            }
        }
    }
}

/// LayerNorm without affine, in place.
#[inline(always)]
fn normalize_row(row: &mut [f32], eps: f32) {
    let (mean, inverse_std) = mean_and_inverse_std(row, true, eps);
    for value in row.iter_mut() {
        *value = (*value - mean) * inverse_std;
    }
}

/// The mean (zero unless `centred`, as RMSNorm does not centre) and 1/√(variance + eps) of a row,
/// with the two-pass variance PyTorch uses.
#[inline(always)]
fn mean_and_inverse_std(row: &[f32], centred: bool, eps: f32) -> (f32, f32) {
    let width = row.len() as f32;
    let mean = if centred { lane_sum(row) / width } else { 0.0 };
    let mut lanes = [0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&value| (value - mean) * (value - mean)).sum();
    for chunk in chunks {
        for lane in 0..LANES {
            lanes[lane] += (chunk[lane] - mean) * (chunk[lane] - mean);
        }
    }
    (mean, 1.0 / ((lanes.iter().sum::<f32>() + tail) / width + eps).sqrt())
}

/// GELU with the tanh approximation, rewritten as x·sigmoid(2u): 0.5·(1 + tanh(u)) = sigmoid(2u).
#[inline(always)]
pub(crate) fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let u = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    x / (1.0 + exp(-2.0 * u))
}

/// Exact GELU, x·Φ(x), with erfc from Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7).
/// For negative x the complement is computed directly, so the tail keeps its relative precision.
#[inline(always)]
pub(crate) fn gelu_erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_7, -1.453_152_1, 1.061_405_4];
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * z);
    let polynomial = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    // erfc(z) for z ≥ 0.
    let complement = polynomial * exp(-z * z);
    let one_plus_erf = if x < 0.0 { complement } else { 2.0 - complement };
    0.5 * x * one_plus_erf
}

/// e^x to about 2 ulp (Cephes `expf`), written so it vectorises: range reduction to
/// r ∈ [-ln2/2, ln2/2], a degree-6 polynomial, and the power of two built from the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = x.mul_add(LOG2_E, 0.5).floor();
    let r = (-n).mul_add(LN2_LOW, (-n).mul_add(LN2_HIGH, x));
    // Fused multiply-adds: the kernels run inside pulp's AVX2+FMA (or AVX-512) entry points, where
    // each is one instruction; only the scalar fallback for CPUs without FMA would call libm.
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let y = (p * r).mul_add(r, r + 1.0);
    // 2^n from n's bits: n is a whole number in [-126, 128] after the clamp, and adding 1.5·2^23
    // puts it in the low mantissa bits. `n as i32` would saturate, which the compiler does one
    // lane at a time (eight scalar conversions per vector, half the cost of GELU).
    const ROUNDING_SHIFT: f32 = 12_582_912.0;
    let exponent = (n + ROUNDING_SHIFT).to_bits().wrapping_sub(ROUNDING_SHIFT.to_bits()).wrapping_add(127);
    y * f32::from_bits(exponent << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from f64 libm, the independent source.
    fn gelu_tanh_reference(x: f64) -> f64 {
        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
    }

    /// erf by its Taylor series (|x| ≤ 3) or continued fraction tail, in f64: an independent check.
    fn erf_reference(x: f64) -> f64 {
        if x.abs() > 5.0 {
            return x.signum();
        }
        let mut sum = 0f64;
        let mut term = x;
        let mut n = 0f64;
        while term.abs() > 1e-17 * sum.abs().max(1e-300) || n < 5.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
            if n > 200.0 {
                break;
            }
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    }

    fn samples() -> impl Iterator<Item = f32> {
        (-2000..=2000).map(|step| step as f32 * 0.005)
    }

    fn random(shape: &[usize], seed: u64) -> Tensor {
        // A fixed LCG: the comparison below needs no statistical quality, only variety.
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let values: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 6.0
            })
            .collect();
        Tensor::from_vec(values, shape, &candle_core::Device::Cpu).expect("tensor")
    }

    fn largest_difference(left: &Tensor, right: &Tensor) -> f32 {
        assert_eq!(left.dims(), right.dims());
        (left - right)
            .and_then(|difference| difference.abs())
            .and_then(|abs| abs.flatten_all())
            .and_then(|flat| flat.max(0))
            .and_then(|max| max.to_scalar::<f32>())
            .expect("difference")
    }

    /// The kernels and the candle fallbacks other devices use must agree, so a GPU run records
    /// the same activations.
    #[test]
    fn kernels_match_candle_fallbacks() {
        let x = random(&[37, 48], 1);
        let bias = random(&[48], 2);
        for activation in
            [Activation::GeluTanh, Activation::GeluErf, Activation::Relu, Activation::Silu, Activation::SoluLayerNorm]
        {
            let kernel = bias_activation(&x, Some(&bias), activation).expect("kernel");
            let fallback = bias_activation_candle(&x, Some(&bias), activation).expect("fallback");
            assert!(largest_difference(&kernel, &fallback) < 1e-5, "{activation:?}");
        }
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

    /// The fused residual step against candle's ops: two addends, one without a bias, through a
    /// LayerNorm and an RMSNorm; a width with a tail past the eight lanes.
    #[test]
    fn residual_step_matches_candle() {
        let (rows, width) = (37, 45);
        let residual = random(&[rows, width], 6);
        let addends = vec![(random(&[rows, width], 7), Some(random(&[width], 8))), (random(&[rows, width], 9), None)];
        let (scale, shift, rms_scale) = (random(&[width], 10), random(&[width], 11), random(&[width], 12));
        let norms = [
            NormParameters { scale: &scale, shift: Some(&shift), eps: 1e-5 },
            NormParameters { scale: &rms_scale, shift: None, eps: 1e-6 },
        ];
        let (sum, normalized) = add_and_normalize(&residual, &addends, &norms).expect("kernel");
        let (expected_sum, expected) = add_and_normalize_candle(&residual, &addends, &norms).expect("fallback");
        assert!(largest_difference(&sum, &expected_sum) < 1e-5);
        assert_eq!(normalized.len(), 2);
        for (actual, expected) in normalized.iter().zip(&expected) {
            assert!(largest_difference(actual, expected) < 1e-4);
        }
    }

    #[test]
    fn exp_matches_libm() {
        for x in (-8700..=8800).map(|step| step as f32 * 0.01) {
            let expected = (x as f64).exp();
            let relative = ((exp(x) as f64) - expected).abs() / expected;
            assert!(relative < 3e-7, "exp({x}): relative error {relative}");
        }
    }

    #[test]
    fn gelu_kernels_match_f64_references() {
        for x in samples() {
            let tanh_error = (gelu_tanh(x) as f64 - gelu_tanh_reference(x as f64)).abs();
            assert!(tanh_error < 2e-6, "gelu_tanh({x}) off by {tanh_error}");
            let erf_expected = 0.5 * x as f64 * (1.0 + erf_reference(x as f64 / std::f64::consts::SQRT_2));
            let erf_error = (gelu_erf(x) as f64 - erf_expected).abs();
            assert!(erf_error < 2e-6, "gelu_erf({x}) off by {erf_error}");
        }
    }
}
