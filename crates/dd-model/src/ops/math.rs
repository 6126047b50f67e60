//! Scalar math the kernels share, written so the compiler vectorises it inside pulp's SIMD entry
//! points: `exp`, sums and maxima over independent lanes, and a row's mean and inverse standard
//! deviation for the norms.

/// Independent accumulators per reduction. Floating-point sums and maxima are not reassociated by
/// the compiler, so a single running value is a serial chain; eight lanes vectorise.
const LANES: usize = 8;

/// The sum of `values` over [`LANES`] accumulators.
#[inline(always)]
pub(super) fn lane_sum(values: &[f32]) -> f32 {
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
pub(super) fn lane_max(values: &[f32]) -> f32 {
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

/// The mean (zero unless `centred`, as RMSNorm does not centre) and 1/√(variance + eps) of a row,
/// with the two-pass variance PyTorch uses.
#[inline(always)]
pub(super) fn mean_and_inverse_std(row: &[f32], centred: bool, eps: f32) -> (f32, f32) {
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

/// e^x to about 2 ulp (Cephes `expf`), written so it vectorises: range reduction to
/// r ∈ [-ln2/2, ln2/2], a degree-6 polynomial, and the power of two built from the exponent bits.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
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

    #[test]
    fn exp_matches_libm() {
        for x in (-8700..=8800).map(|step| step as f32 * 0.01) {
            let expected = (x as f64).exp();
            let relative = ((exp(x) as f64) - expected).abs() / expected;
            assert!(relative < 3e-7, "exp({x}): relative error {relative}");
        }
    }
}
