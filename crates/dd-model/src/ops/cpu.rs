//! How the kernels reach candle's CPU data and share it out over rayon: the f32 slice a layout
//! addresses, a bias as the kernels read it, and the rows handed to one task.

use candle_core::{CpuStorage, Layout, Tensor};

/// Rows handed to one rayon task: large enough to amortise scheduling, small enough to balance.
pub(super) const ROWS_PER_TASK: usize = 16;

/// The bias as the kernels read it: contiguous, or zeros for a layer without one.
pub(super) fn bias_or_zeros(
    bias: Option<&Tensor>,
    width: usize,
    device: &candle_core::Device,
) -> candle_core::Result<Tensor> {
    match bias {
        Some(bias) => bias.contiguous(),
        None => Tensor::zeros(width, candle_core::DType::F32, device),
    }
}

/// The contiguous f32 data a layout addresses.
pub(super) fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else { candle_core::bail!("expected f32 data") };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("expected contiguous data"),
    }
}
