//! Recording throughput: tokens/s through our forward pass returning every layer's MLP
//! activations (no logits), batch 8 × 128, random weights, for the shapes of
//! `../shared/bench/pytorch_baseline.py` plus SmolLM2. Also replays the same matrix products
//! alone, alternating with the forward passes so both see the same machine noise, so the report
//! can say what share of the time is not GEMM.
//!
//!     RAYON_NUM_THREADS=2 cargo bench -p dd-model --bench forward [-- SHAPES] [--batches N]
//!
//! SHAPES is a comma list of gpt2-small, pythia-70m, solu-1l, smollm2 (default: all).

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use dd_model::{Activation, Architecture, MlpKind, ModelConfig, Normalization, Positions, RunRequest, Transformer};

const BATCH: usize = 8;
const POSITIONS: usize = 128;

fn shapes() -> Vec<(&'static str, ModelConfig)> {
    let layer_norm = Normalization::LayerNorm { eps: 1e-5 };
    vec![
        (
            "gpt2-small",
            ModelConfig {
                architecture: Architecture::Gpt2,
                n_layers: 12,
                d_model: 768,
                d_mlp: 3072,
                n_heads: 12,
                n_kv_heads: 12,
                d_head: 64,
                d_vocab: 50257,
                n_ctx: 1024,
                activation: Activation::GeluTanh,
                mlp: MlpKind::Plain,
                normalization: layer_norm,
                positions: Positions::Learned,
                parallel_residual: false,
            },
        ),
        (
            "pythia-70m",
            ModelConfig {
                architecture: Architecture::GptNeoX,
                n_layers: 6,
                d_model: 512,
                d_mlp: 2048,
                n_heads: 8,
                n_kv_heads: 8,
                d_head: 64,
                d_vocab: 50304,
                n_ctx: 2048,
                activation: Activation::GeluErf,
                mlp: MlpKind::Plain,
                normalization: layer_norm,
                positions: Positions::Rotary { dims: 16, base: 10_000.0, interleaved: false },
                parallel_residual: true,
            },
        ),
        (
            "solu-1l",
            ModelConfig {
                architecture: Architecture::TransformerLens,
                n_layers: 1,
                d_model: 512,
                d_mlp: 2048,
                n_heads: 8,
                n_kv_heads: 8,
                d_head: 64,
                d_vocab: 48262,
                n_ctx: 1024,
                activation: Activation::SoluLayerNorm,
                mlp: MlpKind::Plain,
                normalization: layer_norm,
                positions: Positions::Learned,
                parallel_residual: false,
            },
        ),
        (
            "smollm2",
            ModelConfig {
                architecture: Architecture::Llama,
                n_layers: 30,
                d_model: 576,
                d_mlp: 1536,
                n_heads: 9,
                n_kv_heads: 3,
                d_head: 64,
                d_vocab: 49152,
                n_ctx: 8192,
                activation: Activation::Silu,
                mlp: MlpKind::Gated,
                normalization: Normalization::RmsNorm { eps: 1e-5 },
                positions: Positions::Rotary { dims: 64, base: 100_000.0, interleaved: true },
                parallel_residual: false,
            },
        ),
    ]
}

/// Times `forward` and `gemms` alternately, `batches` times each after one untimed round, so
/// both see the same machine noise; returns the sorted durations of each.
fn time_interleaved(
    batches: usize,
    mut forward: impl FnMut(),
    mut gemms: impl FnMut(),
) -> (Vec<Duration>, Vec<Duration>) {
    forward();
    forward();
    gemms();
    let timed = |step: &mut dyn FnMut()| {
        let start = Instant::now();
        step();
        start.elapsed()
    };
    let (mut forward_times, mut gemm_times) = (Vec::with_capacity(batches), Vec::with_capacity(batches));
    for _ in 0..batches {
        forward_times.push(timed(&mut forward));
        gemm_times.push(timed(&mut gemms));
    }
    forward_times.sort_unstable();
    gemm_times.sort_unstable();
    (forward_times, gemm_times)
}

fn mean(times: &[Duration]) -> Duration {
    times.iter().sum::<Duration>() / times.len().max(1) as u32
}

/// The forward pass's matrix products alone, at the same shapes (the last layer's W_out is
/// skipped, as recording does).
fn gemms_only(config: &ModelConfig, device: &Device) -> impl FnMut() {
    let rows = BATCH * POSITIONS;
    let ModelConfig { d_model, d_mlp, n_heads, n_kv_heads, d_head, n_layers, .. } = *config;
    let random = |shape: &[usize]| Tensor::randn(0f32, 1.0, shape, device).expect("tensor");
    let mlp_width = if config.mlp == MlpKind::Gated { 2 * d_mlp } else { d_mlp };
    let x = random(&[rows, d_model]);
    let qkv = random(&[d_model, (n_heads + 2 * n_kv_heads) * d_head]);
    let out = random(&[n_heads * d_head, d_model]);
    let mlp_in = random(&[d_model, mlp_width]);
    let mlp_hidden = random(&[rows, d_mlp]);
    let mlp_out = random(&[d_mlp, d_model]);
    let group = n_heads / n_kv_heads;
    let queries = random(&[BATCH, n_kv_heads, group * POSITIONS, d_head]);
    let keys_t = random(&[BATCH, n_kv_heads, d_head, POSITIONS]);
    let weights = random(&[BATCH, n_kv_heads, group * POSITIONS, POSITIONS]);
    let values = random(&[BATCH, n_kv_heads, POSITIONS, d_head]);
    let attention_in = random(&[rows, n_heads * d_head]);
    move || {
        for layer in 0..n_layers {
            x.matmul(&qkv).expect("qkv");
            queries.matmul(&keys_t).expect("scores");
            weights.matmul(&values).expect("mix");
            attention_in.matmul(&out).expect("out");
            x.matmul(&mlp_in).expect("mlp in");
            if layer + 1 < n_layers {
                mlp_hidden.matmul(&mlp_out).expect("mlp out");
            }
        }
    }
}

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).filter(|argument| argument != "--bench").collect();
    let mut batches = 10;
    let mut selected: Option<Vec<String>> = None;
    let mut index = 0;
    while index < arguments.len() {
        match arguments[index].as_str() {
            "--batches" => {
                batches = arguments.get(index + 1).and_then(|value| value.parse().ok()).unwrap_or(batches);
                index += 1;
            }
            list => selected = Some(list.split(',').map(str::to_owned).collect()),
        }
        index += 1;
    }
    let device = Device::Cpu;
    println!(
        "threads: {}  batch {BATCH} × {POSITIONS}, {batches} timed batches after 2 warm-ups, interleaved with the same GEMMs alone",
        candle_core::utils::get_num_threads()
    );
    println!(
        "| shape | tokens/s (mean) | ms/batch mean | ms/batch median | GEMM-only ms (median) | non-GEMM share (medians) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, config) in shapes() {
        if selected.as_ref().is_some_and(|names| !names.iter().any(|selected| selected == name)) {
            continue;
        }
        let model = Transformer::random(config.clone(), &device).expect("random model");
        let ids: Vec<u32> = (0..BATCH * POSITIONS).map(|index| (index * 7919 % config.d_vocab) as u32).collect();
        let input = Tensor::from_vec(ids, (BATCH, POSITIONS), &device).expect("ids").to_dtype(DType::U32).expect("u32");
        let request = RunRequest::all_layers(&config);
        let (forward_times, gemm_times) = time_interleaved(
            batches,
            || {
                let output = model.run(&input, &request).expect("forward");
                assert_eq!(output.layers.len(), config.n_layers);
            },
            gemms_only(&config, &device),
        );
        let (mean, median) = (mean(&forward_times), forward_times[batches / 2]);
        let gemm_median = gemm_times[batches / 2];
        let tokens_per_second = (BATCH * POSITIONS) as f64 / mean.as_secs_f64();
        let non_gemm = 1.0 - gemm_median.as_secs_f64() / median.as_secs_f64();
        println!(
            "| {name} | {tokens_per_second:.0} | {:.1} | {:.1} | {:.1} | {:.0} % |",
            mean.as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e3,
            gemm_median.as_secs_f64() * 1e3,
            non_gemm * 100.0
        );
    }
}
