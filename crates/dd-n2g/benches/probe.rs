//! The probe's throughput on the real SmolLM2-135M (the test asset): tokens/s for N2G-sized
//! prompts (a BOS and 19 random tokens) at layers 5, 15 and 25, with the cache off so every call
//! runs the model, for a few batch sizes; and the time a second neuron of the same layer takes when
//! its prompts are cached.
//!
//!     RAYON_NUM_THREADS=2 cargo bench -p dd-n2g --bench probe [-- --prompts N] [--rounds N]
//!
//! Needs `scripts/fetch-test-assets.sh` (it reads `$DD_TEST_ASSETS`, by default
//! `/var/tmp/deepdecipher-assets`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::Device;
use dd_n2g::probe::{ActivationSource, ModelProbe, ProbeConfig};
use dd_n2g::rng::SplitMix64;

/// The forward pass allocates a fresh tensor per op; the binary uses the same allocator.
#[global_allocator]
static ALLOCATOR: dd_alloc::Allocator = dd_alloc::Allocator;

const PROMPT_TOKENS: usize = 20;
const LAYERS: [usize; 3] = [5, 15, 25];

fn argument(name: &str, default: usize) -> usize {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|argument| argument == name)
        .and_then(|index| arguments.get(index + 1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The fastest of `rounds` timed calls after one untimed one.
fn fastest(rounds: usize, mut call: impl FnMut()) -> Duration {
    call();
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            call();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    dd_alloc::keep_freed_pages();
    let prompts = argument("--prompts", 256);
    let rounds = argument("--rounds", 3);
    let assets =
        std::env::var_os("DD_TEST_ASSETS").map_or_else(|| PathBuf::from("/var/tmp/deepdecipher-assets"), PathBuf::from);
    let path = assets.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let model = match dd_model::load_transformer(&path, &Device::Cpu) {
        Ok(model) => Arc::new(model),
        Err(err) => {
            eprintln!("{}: {err} (run scripts/fetch-test-assets.sh)", path.display());
            std::process::exit(1);
        }
    };
    let vocab = model.config().d_vocab;
    let mut random = SplitMix64::new(1);
    let sequences: Vec<Vec<u32>> = (0..prompts)
        .map(|_| std::iter::once(0).chain((1..PROMPT_TOKENS).map(|_| random.below(vocab) as u32)).collect())
        .collect();
    let tokens = (prompts * PROMPT_TOKENS) as f64;
    println!(
        "SmolLM2-135M, {prompts} prompts of {PROMPT_TOKENS} tokens, {} rayon threads",
        rayon::current_num_threads()
    );
    println!("{:>6} {:>14} {:>12} {:>12}", "layer", "batch tokens", "tokens/s", "ms/call");
    for layer in LAYERS {
        for max_batch_tokens in [PROMPT_TOKENS * 16, 4096, 16384] {
            let probe = ModelProbe::new(Arc::clone(&model), ProbeConfig { max_batch_tokens, cache_bytes: 0 });
            let time = fastest(rounds, || {
                probe.activations(layer, &[0], &sequences).expect("activations");
            });
            println!(
                "{layer:>6} {max_batch_tokens:>14} {:>12.0} {:>12.1}",
                tokens / time.as_secs_f64(),
                time.as_secs_f64() * 1e3
            );
        }
        let probe = ModelProbe::new(Arc::clone(&model), ProbeConfig::default());
        probe.activations(layer, &[0], &sequences).expect("fills the cache");
        let cached = fastest(rounds, || {
            probe.activations(layer, &[1, 2, 3], &sequences).expect("cached");
        });
        println!(
            "{layer:>6} {:>14} {:>12.0} {:>12.3}",
            "cached",
            tokens / cached.as_secs_f64(),
            cached.as_secs_f64() * 1e3
        );
    }
}
