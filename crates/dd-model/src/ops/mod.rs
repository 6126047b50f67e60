//! CPU kernels for the steps of the forward pass where candle is slow, one file per kind of
//! kernel: the MLP non-linearities fused with the bias add ([`activation`]), the residual step with
//! its norms ([`residual`]), the Q/K/V head split with rotary ([`heads`]), causal attention
//! ([`attention`]) and, for generation, attention of new positions against cached keys
//! ([`cached`]); for the sentence encoder, bidirectional attention over padded sequences
//! ([`padded_attention`](mod@padded_attention)) and products of a few rows with a weight matrix
//! ([`few_rows`]). Each runs on every core (rayon) with the widest SIMD the CPU has (pulp), and
//! falls back to candle's own ops on other devices; unit tests hold the kernels to those fallbacks,
//! so a GPU run records the same activations. `cached` has no fallback: the cache it reads lives in
//! host memory on every device, and its test holds it to `attention` instead.
//!
//! Every kernel's inner loop is a `pulp::WithSimd` type, not a closure, so that pulp inlines the
//! loops into its AVX2/AVX-512 entry points and they are compiled for those instruction sets.
//!
//! Layers: [`math`] (shared scalar math) and [`cpu`] (candle's CPU data, rayon's blocks) are leaves;
//! `activation`, `residual`, `heads` and `cached` use them; `attention` also reads `heads`'s
//! [`HeadLayout`], and `cached` runs chunks of several rows through `attention`'s tiles;
//! `few_rows` and `padded_attention` (the sentence encoder's) use only the leaves.

mod activation;
mod attention;
mod cached;
mod cpu;
mod few_rows;
mod heads;
mod math;
mod padded_attention;
mod residual;
#[cfg(test)]
mod testing;

pub(crate) use activation::{bias_activation, bias_solu_normalized, gated_silu};
pub(crate) use attention::causal_attention;
pub(crate) use cached::{CachedHead, CachedLayout, cached_attention};
pub(crate) use few_rows::linear;
pub(crate) use heads::{HeadLayout, RotaryHost, split_heads};
pub(crate) use padded_attention::{PaddedBatch, padded_attention};
pub(crate) use residual::{NormParameters, add_and_normalize};
