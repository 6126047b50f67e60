//! The residual step: the pending block outputs and their biases added to the residual stream,
//! and the sum through one or two LayerNorms/RMSNorms (two for a parallel residual), in one pass
//! over the rows on the CPU, instead of a bias add, an add and a normalisation pass per step, each
//! with a fresh tensor; other devices use candle's own ops.

use candle_core::Tensor;
use rayon::prelude::*;

use super::cpu::{ROWS_PER_TASK, f32_slice};
use super::math::mean_and_inverse_std;

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

/// A block of rows of [`add_and_normalize`]; a `WithSimd` type for the reason in [`super`].
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{largest_difference, random};

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
}
