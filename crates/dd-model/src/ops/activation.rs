//! The MLP non-linearities on f32 rows, fused with the bias add: GELU (tanh and erf), ReLU, SiLU,
//! SiLU(gate)·up for gated MLPs, and SoLU (`pre · softmax(pre)`, optionally with its LayerNorm).
//! candle's CPU GELU and SiLU are scalar and single-threaded (a third of a GPT-2 layer's time);
//! these run on every core with the widest SIMD the CPU has, and fall back to candle's own ops on
//! other devices.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{ROWS_PER_TASK, bias_or_zeros, f32_slice};
use super::math::{exp, lane_max, lane_sum, mean_and_inverse_std};
use crate::config::Activation;

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

/// A block of rows of [`BiasActivation`]; a `WithSimd` type for the reason in [`super`].
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

/// A block of rows of [`GatedSilu`]; a `WithSimd` type for the reason in [`super`].
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

/// GELU with the tanh approximation, rewritten as x·sigmoid(2u): 0.5·(1 + tanh(u)) = sigmoid(2u).
#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let u = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    x / (1.0 + exp(-2.0 * u))
}

/// Exact GELU, x·Φ(x), with erfc from Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7).
/// For negative x the complement is computed directly, so the tail keeps its relative precision.
#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{largest_difference, random};

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

    /// The kernels and the candle fallbacks other devices use must agree, so a GPU run records
    /// the same activations.
    #[test]
    fn activation_kernels_match_candle_fallbacks() {
        let x = random(&[37, 48], 1);
        let bias = random(&[48], 2);
        for activation in
            [Activation::GeluTanh, Activation::GeluErf, Activation::Relu, Activation::Silu, Activation::SoluLayerNorm]
        {
            let kernel = bias_activation(&x, Some(&bias), activation).expect("kernel");
            let fallback = bias_activation_candle(&x, Some(&bias), activation).expect("fallback");
            assert!(largest_difference(&kernel, &fallback) < 1e-5, "{activation:?}");
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
