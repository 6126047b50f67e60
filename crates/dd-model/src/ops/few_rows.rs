//! `x·Wᵀ` for a few rows of `x` (a search query's handful of tokens), `W` stored [out, in] as
//! `nn.Linear` stores it: candle's GEMM packs the whole of `W` on every call, which for 8 rows
//! costs several times the product itself (about 440 µs for 8×384 · 384×1152 on the development
//! machine). Here each output is a dot product of an input row with a row of `W`, both contiguous,
//! so `W` streams through once per block of four input rows in the order the prefetcher expects
//! (a first version that walked `W` [in, out] down its columns spent 70 % of its time waiting on
//! those loads). More rows go to candle's GEMM, which is faster once the packing is amortised; so
//! do other devices.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::f32_slice;

/// Up to this many rows take the kernel. Timed per BERT layer (its four products, one thread): at
/// 8 rows about 0.6–0.8 ms here against 1.6–2.0 ms for candle's GEMM, at 24 rows 2.6 against 3.4,
/// at 32 rows even; above, the GEMM's packing pays off.
pub(crate) const FEW_ROWS: usize = 32;

/// Input rows that share one pass over `W`.
const ROW_BLOCK: usize = 4;
/// Rows of `W` (outputs) per block: four input rows × two outputs are eight vector accumulators,
/// half of AVX2's registers, leaving room for the six vectors loaded per step. Eight rows × one
/// output (`W` read once for eight rows, but nine loads per eight FMAs) took twice as long;
/// four × three was no faster within the noise.
const OUTPUT_BLOCK: usize = 2;
/// Outputs per rayon task: enough work (8 rows × 64 outputs × 384 = 0.4 MFLOP) to amortise a
/// task, few enough that a 384-wide output still splits over several cores.
const OUTPUTS_PER_TASK: usize = 64;

/// `x·Wᵀ` for `x` [rows, in] and `W` [out, in].
pub(crate) fn linear(x: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
    let (rows, _) = x.dims2()?;
    if !x.device().is_cpu() || rows > FEW_ROWS {
        return x.matmul(&weight.t()?);
    }
    x.contiguous()?.apply_op2_no_bwd(&weight.contiguous()?, &FewRowsLinear)
}

struct FewRowsLinear;

impl CustomOp2 for FewRowsLinear {
    fn name(&self) -> &'static str {
        "few-rows-linear"
    }

    fn cpu_fwd(
        &self,
        x_storage: &CpuStorage,
        x_layout: &Layout,
        weight_storage: &CpuStorage,
        weight_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(x_storage, x_layout)?;
        let weight = f32_slice(weight_storage, weight_layout)?;
        let (&[rows, depth], &[outputs, weight_depth]) = (x_layout.dims(), weight_layout.dims()) else {
            candle_core::bail!(
                "few-rows linear needs two matrices, got {:?} and {:?}",
                x_layout.dims(),
                weight_layout.dims()
            )
        };
        if depth != weight_depth || depth == 0 {
            candle_core::bail!("few-rows linear: {:?} · {:?}ᵀ do not fit", x_layout.dims(), weight_layout.dims())
        }
        let arch = pulp::Arch::new();
        // Each task computes a stripe of outputs for every row; the stripes are then laid side by
        // side (a copy of rows × outputs values, negligible next to the product).
        let stripes: Vec<Vec<f32>> = weight
            .par_chunks(OUTPUTS_PER_TASK * depth)
            .map(|weight_rows| {
                let mut stripe = vec![0f32; rows * weight_rows.len() / depth];
                arch.dispatch(Stripe { x, weight_rows, depth, out: &mut stripe });
                stripe
            })
            .collect();
        let mut out = vec![0f32; rows * outputs];
        for (stripe_idx, stripe) in stripes.iter().enumerate() {
            let width = stripe.len() / rows.max(1);
            for (out_row, stripe_row) in out.chunks_exact_mut(outputs).zip(stripe.chunks_exact(width)) {
                out_row[stripe_idx * OUTPUTS_PER_TASK..][..width].copy_from_slice(stripe_row);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, outputs))))
    }
}

/// The outputs of `weight_rows` for every row of `x`, into `out` [rows, weight rows]; a
/// `WithSimd` type for the reason in [`super`].
struct Stripe<'a> {
    x: &'a [f32],
    weight_rows: &'a [f32],
    depth: usize,
    out: &'a mut [f32],
}

impl pulp::WithSimd for Stripe<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Stripe { x, weight_rows, depth, out } = self;
        let width = weight_rows.len() / depth;
        for (x_block, out_block) in x.chunks(ROW_BLOCK * depth).zip(out.chunks_mut(ROW_BLOCK * width)) {
            match x_block.len() / depth {
                4 => row_block::<S, 4>(simd, x_block, weight_rows, depth, out_block),
                3 => row_block::<S, 3>(simd, x_block, weight_rows, depth, out_block),
                2 => row_block::<S, 2>(simd, x_block, weight_rows, depth, out_block),
                _ => row_block::<S, 1>(simd, x_block, weight_rows, depth, out_block),
            }
        }
    }
}

/// Every output of `weight_rows` for `ROWS` input rows, into `out_block` [ROWS, weight rows].
#[inline(always)]
fn row_block<S: pulp::Simd, const ROWS: usize>(
    simd: S,
    x_block: &[f32],
    weight_rows: &[f32],
    depth: usize,
    out_block: &mut [f32],
) {
    let x_rows: [&[f32]; ROWS] = std::array::from_fn(|row| &x_block[row * depth..][..depth]);
    let width = weight_rows.len() / depth;
    let mut output = 0;
    while output + OUTPUT_BLOCK <= width {
        let weights: [&[f32]; OUTPUT_BLOCK] =
            std::array::from_fn(|pair| &weight_rows[(output + pair) * depth..][..depth]);
        let totals = dots::<S, ROWS, OUTPUT_BLOCK>(simd, x_rows, weights);
        for (row, row_totals) in totals.iter().enumerate() {
            out_block[row * width + output..][..OUTPUT_BLOCK].copy_from_slice(row_totals);
        }
        output += OUTPUT_BLOCK;
    }
    for last in output..width {
        let totals = dots::<S, ROWS, 1>(simd, x_rows, [&weight_rows[last * depth..][..depth]]);
        for (row, row_totals) in totals.iter().enumerate() {
            out_block[row * width + last] = row_totals[0];
        }
    }
}

/// The `ROWS × OUTPUTS` dot products of the `x` rows with the `W` rows, one vector accumulator
/// each. Written with pulp's vector types: the same loop over arrays of lanes stayed scalar.
#[inline(always)]
fn dots<S: pulp::Simd, const ROWS: usize, const OUTPUTS: usize>(
    simd: S,
    x_rows: [&[f32]; ROWS],
    weights: [&[f32]; OUTPUTS],
) -> [[f32; OUTPUTS]; ROWS] {
    let x_split: [(&[S::f32s], &[f32]); ROWS] = std::array::from_fn(|row| S::as_simd_f32s(x_rows[row]));
    let weight_split: [(&[S::f32s], &[f32]); OUTPUTS] = std::array::from_fn(|output| S::as_simd_f32s(weights[output]));
    let n_vectors = x_split[0].0.len();
    let mut totals = [[simd.splat_f32s(0.0); OUTPUTS]; ROWS];
    for vector_idx in 0..n_vectors {
        let weight_vectors: [S::f32s; OUTPUTS] = std::array::from_fn(|output| weight_split[output].0[vector_idx]);
        for row in 0..ROWS {
            let x_vector = x_split[row].0[vector_idx];
            for output in 0..OUTPUTS {
                totals[row][output] = simd.mul_add_f32s(x_vector, weight_vectors[output], totals[row][output]);
            }
        }
    }
    std::array::from_fn(|row| {
        std::array::from_fn(|output| {
            let tail: f32 = x_split[row].1.iter().zip(weight_split[output].1).map(|(x, weight)| x * weight).sum();
            simd.reduce_sum_f32s(totals[row][output]) + tail
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{largest_difference, random};

    /// Every row count the kernel takes (whole and partial row blocks), depths with and without a
    /// partial lane block, an odd number of outputs, one task or several, against candle's GEMM.
    #[test]
    fn few_rows_kernel_matches_candle_matmul() {
        for (rows, depth, outputs) in [(1, 384, 1152), (3, 37, 301), (7, 64, 16), (8, 384, 384), (32, 96, 1536)] {
            let x = random(&[rows, depth], rows as u64);
            let weight = random(&[outputs, depth], outputs as u64);
            let kernel = linear(&x, &weight).expect("kernel");
            let reference = x.matmul(&weight.t().expect("transpose")).expect("candle");
            let difference = largest_difference(&kernel, &reference);
            // Sums of up to 384 products of values up to 3: a few ulps of ~100.
            assert!(difference < 1e-3, "{rows}×{depth} · ({outputs}×{depth})ᵀ: {difference}");
        }
    }
}
