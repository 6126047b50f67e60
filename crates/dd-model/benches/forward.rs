//! Recording throughput: tokens/s through our forward pass returning every layer's MLP
//! activations (no logits), batch 8 × 128, random weights, for the shapes of
//! `../shared/bench/pytorch_baseline.py` plus SmolLM2. Also replays the same matrix products
//! alone, alternating with the forward passes so both see the same machine noise, so the report
//! can say what share of the time is not GEMM.
//!
//!     RAYON_NUM_THREADS=2 cargo bench -p dd-model --bench forward [-- SHAPES] [--batches N]
//!
//! SHAPES is a comma list of gpt2-small, pythia-70m, solu-1l, smollm2 (default: all);
//! `--forward-only` skips the GEMM replay, for profiling; `--model PATH` times that model's own
//! weights instead of the shapes (what the Python package's benchmark compares `run` with).

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use dd_model::{MlpKind, ModelConfig, RunRequest, Transformer};

/// Recording allocates a fresh tensor per op; glibc returns those pages and faults them back in
/// every batch (six times the page faults, 5–13 % more CPU time), mimalloc keeps them. The
/// `deepdecipher` binary uses the same allocator.
#[global_allocator]
static ALLOCATOR: dd_alloc::Allocator = dd_alloc::Allocator;

const BATCH: usize = 8;
const POSITIONS: usize = 128;

fn shapes() -> Vec<(&'static str, ModelConfig)> {
    dd_model::config::BENCHMARK_SHAPES
        .iter()
        .filter_map(|&name| ModelConfig::benchmark_shape(name).map(|config| (name, config)))
        .collect()
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

/// The forward pass's weight GEMMs alone, at the same shapes, skipping what recording skips: the
/// last layer's W_out, and with a parallel residual the last layer's attention. Attention runs as a fused kernel, so it counts as non-GEMM work.
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
    let attention_in = random(&[rows, n_heads * d_head]);
    let parallel_residual = config.parallel_residual;
    move || {
        for layer in 0..n_layers {
            let last = layer + 1 == n_layers;
            if !(last && parallel_residual) {
                x.matmul(&qkv).expect("qkv");
                attention_in.matmul(&out).expect("out");
            }
            x.matmul(&mlp_in).expect("mlp in");
            if !last {
                mlp_hidden.matmul(&mlp_out).expect("mlp out");
            }
        }
    }
}

/// The raw GEMM rate at the shape `pytorch_baseline.py` measures, for a like-for-like comparison.
fn matmul_rate(device: &Device) -> (f64, f64) {
    let left = Tensor::randn(0f32, 1.0, (1024, 768), device).expect("left");
    let right = Tensor::randn(0f32, 1.0, (768, 3072), device).expect("right");
    let flops = 2.0 * 1024.0 * 768.0 * 3072.0;
    for _ in 0..5 {
        left.matmul(&right).expect("warm-up");
    }
    let mut rates: Vec<f64> = (0..30)
        .map(|_| {
            let start = Instant::now();
            left.matmul(&right).expect("matmul");
            flops / start.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() - 1], rates[rates.len() / 2])
}

fn main() {
    dd_alloc::keep_freed_pages();
    let arguments: Vec<String> = std::env::args().skip(1).filter(|argument| argument != "--bench").collect();
    let mut batches = 10;
    let mut selected: Option<Vec<String>> = None;
    // For profiling: no GEMM replay, so a profile shows only the forward pass.
    let mut forward_only = false;
    let mut model_path: Option<String> = None;
    let mut index = 0;
    while index < arguments.len() {
        match arguments[index].as_str() {
            "--forward-only" => forward_only = true,
            "--model" => {
                model_path = arguments.get(index + 1).cloned();
                index += 1;
            }
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
    let (best, median) = matmul_rate(&device);
    println!("matmul (1024x768)x(768x3072) fp32: best {best:.1} GFLOP/s, median {median:.1} GFLOP/s");
    println!(
        "| shape | tokens/s (mean) | ms/batch mean | ms/batch median | GEMM-only ms (median) | non-GEMM share (medians) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let loaded = model_path.map(|path| {
        let model = dd_model::load_transformer(std::path::Path::new(&path), &device).expect("the --model loads");
        (path, model)
    });
    let runs: Vec<(String, Transformer)> = match loaded {
        Some((path, model)) => vec![(path, model)],
        None => shapes()
            .into_iter()
            .filter(|(name, _)| selected.as_ref().is_none_or(|names| names.iter().any(|selected| selected == name)))
            .map(|(name, config)| (name.to_owned(), Transformer::random(config, &device).expect("random model")))
            .collect(),
    };
    for (name, model) in runs {
        let config = model.config().clone();
        let ids: Vec<u32> = (0..BATCH * POSITIONS).map(|index| (index * 7919 % config.d_vocab) as u32).collect();
        let input = Tensor::from_vec(ids, (BATCH, POSITIONS), &device).expect("ids").to_dtype(DType::U32).expect("u32");
        let request = RunRequest::all_layers(&config);
        let (forward_times, gemm_times) = time_interleaved(
            batches,
            || {
                let output = model.run(&input, &request).expect("forward");
                assert_eq!(output.layers.len(), config.n_layers);
            },
            if forward_only { Box::new(|| ()) as Box<dyn FnMut()> } else { Box::new(gemms_only(&config, &device)) },
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
