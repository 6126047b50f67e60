//! Inputs and comparisons the kernels' unit tests share.

use candle_core::Tensor;

/// A tensor of `shape` with values spread over [-3, 3), the same for the same `seed`.
pub(super) fn random(shape: &[usize], seed: u64) -> Tensor {
    // A fixed LCG: the comparisons need no statistical quality, only variety.
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 6.0
        })
        .collect();
    Tensor::from_vec(values, shape, &candle_core::Device::Cpu).expect("tensor")
}

/// The largest absolute difference between two tensors of the same shape.
pub(super) fn largest_difference(left: &Tensor, right: &Tensor) -> f32 {
    assert_eq!(left.dims(), right.dims());
    (left - right)
        .and_then(|difference| difference.abs())
        .and_then(|abs| abs.flatten_all())
        .and_then(|flat| flat.max(0))
        .and_then(|max| max.to_scalar::<f32>())
        .expect("difference")
}
