//! Seconds per neuron of Neuron2Graph's builder, on 2 cores: for a one-layer model of d_model 512
//! and 2,048 neurons (SoLU-1L's shape, random weights, SmolLM2's vocabulary and tokenizer), and for
//! the real SmolLM2-135M at layers 5, 15 and 25. Each neuron gets what a recording gives it: its 20
//! top contexts of 128 tokens of Shakespeare among `--contexts` (default 200) and 5 others as
//! random examples; neurons of a layer share one probe, as `deepdecipher n2g` does.
//!
//!     RAYON_NUM_THREADS=2 cargo bench -p dd-n2g --bench build [-- --neurons N] [--contexts N]
//!
//! Needs `scripts/fetch-test-assets.sh` (`$DD_TEST_ASSETS`, by default `/var/tmp/deepdecipher-assets`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;
use dd_data::Example;
use dd_model::{ModelConfig, Tokenizer, Transformer};
use dd_n2g::build::{BuildWork, NeuronInput, TokenTexts, build_neuron};
use dd_n2g::job::standard_config;
use dd_n2g::probe::{ModelProbe, ProbeConfig};
use dd_n2g::substitutes::{EmbeddingNeighbours, ShapeRule};

/// The forward pass allocates a fresh tensor per op; the binary uses the same allocator.
#[global_allocator]
static ALLOCATOR: dd_alloc::Allocator = dd_alloc::Allocator;

const CONTEXT: usize = 128;

fn argument(name: &str, default: usize) -> usize {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|argument| argument == name)
        .and_then(|index| arguments.get(index + 1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Contexts of Shakespeare, BOS first.
fn contexts(tokenizer: &Tokenizer, assets: &std::path::Path, count: usize) -> Vec<Vec<u32>> {
    let text = std::fs::read_to_string(assets.join("shakespeare/hamlet_gut.txt")).expect("hamlet");
    let ids = tokenizer.encode(&text).expect("tokenize");
    let bos = tokenizer.bos_token_id().expect("SmolLM2 has a BOS");
    ids.chunks_exact(CONTEXT - 1)
        .skip(20) // past Gutenberg's header
        .take(count)
        .map(|chunk| std::iter::once(bos).chain(chunk.iter().copied()).collect())
        .collect()
}

/// What a recording keeps of each neuron: top 20 contexts by their maximum (BOS excluded), and 5
/// others; for the `n_neurons` neurons of `layer` with the largest maxima.
fn inputs(probe: &ModelProbe, layer: usize, contexts: &[Vec<u32>], n_neurons: usize) -> Vec<NeuronInput> {
    let d_mlp = probe.model().config().d_mlp;
    let rows = probe.layer_activations(layer, contexts).expect("run");
    let value = |c: usize, position: usize, neuron: usize| rows[c][position * d_mlp + neuron];
    let context_max = |c: usize, neuron: usize| (1..CONTEXT).map(|p| value(c, p, neuron)).fold(f32::MIN, f32::max);
    let mut neurons: Vec<(usize, f32)> =
        (0..d_mlp).map(|n| (n, (0..contexts.len()).map(|c| context_max(c, n)).fold(f32::MIN, f32::max))).collect();
    neurons.sort_by(|a, b| b.1.total_cmp(&a.1));
    // Every 7th of the strongest 7·N, so the neurons are not all alike.
    neurons
        .iter()
        .step_by(7)
        .take(n_neurons)
        .map(|&(neuron, max)| {
            let example = |c: usize| Example {
                dataset_index: c as u64,
                tokens: contexts[c].clone(),
                activations: (0..CONTEXT).map(|p| value(c, p, neuron)).collect(),
                max_token_index: 0,
                activation_error: 0.0,
            };
            let mut ranked: Vec<usize> = (0..contexts.len()).collect();
            ranked.sort_by(|&a, &b| context_max(b, neuron).total_cmp(&context_max(a, neuron)));
            NeuronInput {
                layer: layer as u32,
                neuron: neuron as u32,
                top: ranked[..20].iter().map(|&c| example(c)).collect(),
                random: ranked[20..].iter().step_by(37).take(5).map(|&c| example(c)).collect(),
                scale: max,
            }
        })
        .collect()
}

fn bench(name: &str, model: Transformer, tokenizer: &Tokenizer, layers: &[usize], contexts: &[Vec<u32>], n: usize) {
    let model = Arc::new(model);
    let substitutes = EmbeddingNeighbours::new(&model, tokenizer, ShapeRule::default()).expect("neighbours");
    let texts = TokenTexts::from_tokenizer(tokenizer);
    let config = standard_config(tokenizer);
    for &layer in layers {
        let probe = ModelProbe::new(Arc::clone(&model), ProbeConfig::default());
        let inputs = inputs(&probe, layer, contexts, n);
        let before = probe.counters();
        let started = Instant::now();
        let mut work = BuildWork::default();
        let mut f1 = Vec::new();
        for input in &inputs {
            let built =
                build_neuron(input, tokenizer.bos_token_id(), &probe, &substitutes, &texts, &config).expect("build");
            work.pruned_prompts += built.work.pruned_prompts;
            work.augmented_tried += built.work.augmented_tried;
            work.augmented_kept += built.work.augmented_kept;
            work.lines += built.work.lines;
            f1.extend(built.graph.scores.and_then(|s| s.held_out_top.f1()));
        }
        let seconds = started.elapsed().as_secs_f64() / inputs.len() as f64;
        let after = probe.counters();
        let mean_f1 = f1.iter().sum::<f64>() / f1.len().max(1) as f64;
        println!(
            "{name} layer {layer:>2}: {seconds:.2} s per neuron over {} neurons; per neuron {:.0} tokens run (+{:.0} \
             padding, {:.1} forward passes), {:.0} from the cache, {:.1} prompts pruned, {:.1}/{:.1} augmentations \
             kept, {:.0} lines; mean held-out F1 {mean_f1:.2}",
            inputs.len(),
            (after.tokens_run - before.tokens_run) as f64 / inputs.len() as f64,
            (after.padding_run - before.padding_run) as f64 / inputs.len() as f64,
            (after.forward_passes - before.forward_passes) as f64 / inputs.len() as f64,
            (after.tokens_cached - before.tokens_cached) as f64 / inputs.len() as f64,
            work.pruned_prompts as f64 / inputs.len() as f64,
            work.augmented_kept as f64 / inputs.len() as f64,
            work.augmented_tried as f64 / inputs.len() as f64,
            work.lines as f64 / inputs.len() as f64,
        );
    }
}

fn main() {
    dd_alloc::keep_freed_pages();
    let n_neurons = argument("--neurons", 8);
    let n_contexts = argument("--contexts", 200);
    let assets =
        std::env::var_os("DD_TEST_ASSETS").map_or_else(|| PathBuf::from("/var/tmp/deepdecipher-assets"), PathBuf::from);
    let path = assets.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let tokenizer = match Tokenizer::from_gguf(&path) {
        Ok(tokenizer) => tokenizer,
        Err(err) => {
            eprintln!("{}: {err} (run scripts/fetch-test-assets.sh)", path.display());
            std::process::exit(1);
        }
    };
    let contexts = contexts(&tokenizer, &assets, n_contexts);
    let mut one_layer = ModelConfig::benchmark_shape("solu-1l").expect("a known shape");
    one_layer.d_vocab = tokenizer.vocab_size();
    let random = Transformer::random(one_layer, &Device::Cpu).expect("random model");
    bench("d512×2048, 1 layer", random, &tokenizer, &[0], &contexts, n_neurons);
    let smollm2 = dd_model::load_transformer(&path, &Device::Cpu).expect("SmolLM2");
    bench("SmolLM2-135M", smollm2, &tokenizer, &[5, 15, 25], &contexts, n_neurons);
}
