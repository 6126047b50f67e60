//! Weight-based neuron facts (`dd_model::circuits`) against a naive reference: every score of
//! every neuron computed in f64 with plain loops from the weights read back through the public
//! accessors, then sorted in full. The accessors themselves are checked against the tensors in the
//! fixture files, so a wrong accessor (say, the up projection instead of the gate) cannot make
//! both sides agree.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{DType, Device, Tensor};
use dd_model::{
    Activation, Architecture, CircuitOptions, MlpKind, ModelConfig, NeuronLink, NeuronLinks, NormWeights,
    Normalization, Positions, TokenEffects, Transformer, WeightFact, input_tokens, load_transformer, logit_attribution,
    neuron_connections, work_estimate,
};

use crate::fixture;

/// Tolerance relative to the largest |score| of the list's candidates: f32 products against f64.
const RELATIVE_TOLERANCE: f64 = 1e-4;

/// Every fixture family: HF GPT-2, NeoX with parallel and serial residual (F16, BF16), the
/// TransformerLens SoLU (W_out with the LN scale folded in) and GELU toys, the old one-layer SoLU
/// checkpoint, and Llama with separate and (GGUF) tied embeddings.
const FIXTURES: [&str; 8] =
    ["gpt2", "pythia", "neox-serial", "tl-solu", "tl-gelu", "tl-solu-old", "llama", "llama-gguf"];

/// Small tiles, so that every fixture is scored in several row blocks and column tiles and the
/// streaming merge across tiles is exercised (d_mlp is 128 or 256, the vocabulary 320).
fn small_tiles(k: usize) -> CircuitOptions {
    CircuitOptions { k, neuron_block: 48, column_block: 100 }
}

fn matrix(tensor: &Tensor) -> Vec<Vec<f64>> {
    let rows: Vec<Vec<f32>> = tensor.to_dtype(DType::F32).expect("f32").to_vec2().expect("2-D tensor");
    rows.into_iter().map(|row| row.into_iter().map(f64::from).collect()).collect()
}

fn vector(tensor: &Tensor) -> Vec<f64> {
    let values: Vec<f32> = tensor.to_dtype(DType::F32).expect("f32").to_vec1().expect("1-D tensor");
    values.into_iter().map(f64::from).collect()
}

fn dot(left: &[f64], right: &[f64]) -> f64 {
    left.iter().zip(right).map(|(a, b)| a * b).sum()
}

fn column(matrix: &[Vec<f64>], index: usize) -> Vec<f64> {
    matrix.iter().map(|row| row[index]).collect()
}

fn centred(values: &[f64]) -> Vec<f64> {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    values.iter().map(|value| value - mean).collect()
}

/// The normalisation as the forward pass defines it, in f64.
fn normalise(x: &[f64], norm: &NormWeights) -> Vec<f64> {
    let scale = vector(norm.scale());
    let width = x.len() as f64;
    let (centred, mean_square) = match norm.centres() {
        true => {
            let centred = centred(x);
            let variance = centred.iter().map(|value| value * value).sum::<f64>() / width;
            (centred, variance)
        }
        false => (x.to_vec(), x.iter().map(|value| value * value).sum::<f64>() / width),
    };
    let inverse = 1.0 / (mean_square + norm.eps()).sqrt();
    let shift = norm.shift().map(vector).unwrap_or_else(|| vec![0.0; x.len()]);
    centred.iter().zip(&scale).zip(&shift).map(|((value, scale), shift)| value * inverse * scale + shift).collect()
}

/// What the fold in front of a normalisation does to a direction written into the residual
/// stream: centre it for LayerNorm, then scale by γ.
fn fold_written(direction: &[f64], norm: &NormWeights) -> Vec<f64> {
    let scale = vector(norm.scale());
    let direction = if norm.centres() { centred(direction) } else { direction.to_vec() };
    direction.iter().zip(&scale).map(|(value, scale)| value * scale).collect()
}

/// All scores of one model, in f64: [layer][neuron][token] for the two token facts, and
/// [(l₁, l₂)][i][j] for the connections.
struct Reference {
    logits: Vec<Vec<Vec<f64>>>,
    inputs: Vec<Vec<Vec<f64>>>,
    connections: HashMap<(usize, usize), Vec<Vec<f64>>>,
}

fn reference(model: &Transformer) -> Reference {
    let config = model.config();
    let unembedding = matrix(model.unembedding());
    let embedding = matrix(model.token_embedding());
    let final_norm = model.final_norm();
    let layers: Vec<_> = (0..config.n_layers).map(|layer| model.mlp_weights(layer).expect("layer")).collect();
    let mut logits = Vec::new();
    let mut inputs = Vec::new();
    for weights in &layers {
        let output = matrix(&weights.output);
        let input = matrix(&weights.input);
        let bias = weights.input_bias.as_ref().map(vector).unwrap_or_else(|| vec![0.0; config.d_mlp]);
        logits.push(
            output
                .iter()
                .map(|direction| {
                    let folded = fold_written(direction, &final_norm);
                    (0..config.d_vocab).map(|token| dot(&folded, &column(&unembedding, token))).collect()
                })
                .collect(),
        );
        let normalised: Vec<Vec<f64>> = embedding.iter().map(|row| normalise(row, &weights.norm)).collect();
        inputs.push(
            (0..config.d_mlp)
                .map(|neuron| {
                    let reads = column(&input, neuron);
                    normalised.iter().map(|row| dot(row, &reads) + bias[neuron]).collect()
                })
                .collect(),
        );
    }
    let mut connections = HashMap::new();
    for (source, source_weights) in layers.iter().enumerate() {
        let output = matrix(&source_weights.output);
        for (target, target_weights) in layers.iter().enumerate().skip(source + 1) {
            let input = matrix(&target_weights.input);
            // W_out[i] · c(γ ∘ W_in[:, j]), the reading side folded as TransformerLens does.
            let folded: Vec<Vec<f64>> = (0..config.d_mlp)
                .map(|neuron| {
                    let scaled: Vec<f64> = column(&input, neuron)
                        .iter()
                        .zip(vector(target_weights.norm.scale()))
                        .map(|(value, scale)| value * scale)
                        .collect();
                    if target_weights.norm.centres() { centred(&scaled) } else { scaled }
                })
                .collect();
            let scores = output.iter().map(|row| folded.iter().map(|reads| dot(row, reads)).collect()).collect();
            connections.insert((source, target), scores);
        }
    }
    Reference { logits, inputs, connections }
}

/// Checks one ranked list against all its candidates `(id, score)`: the length is min(k, count),
/// ids are distinct, the order follows `key`, our score for an id is the reference's, and at every
/// rank its key is the key of the reference's entry at that rank, so the set matches up to exact
/// or near ties.
fn check_ranked(what: &str, found: &[(u64, f32)], candidates: &[(u64, f64)], k: usize, key: fn(f64) -> f64) {
    assert_eq!(found.len(), k.min(candidates.len()), "{what}: length");
    let scale = candidates.iter().fold(0f64, |largest, (_, score)| largest.max(score.abs()));
    let tolerance = RELATIVE_TOLERANCE * scale.max(1e-12);
    let mut sorted: Vec<f64> = candidates.iter().map(|&(_, score)| score).collect();
    sorted.sort_by(|a, b| key(*b).total_cmp(&key(*a)));
    let by_id: HashMap<u64, f64> = candidates.iter().copied().collect();
    let mut seen = std::collections::HashSet::new();
    for (rank, &(id, score)) in found.iter().enumerate() {
        assert!(seen.insert(id), "{what}: id {id} listed twice");
        let expected = by_id.get(&id).unwrap_or_else(|| panic!("{what}: id {id} is not a candidate"));
        let score = f64::from(score);
        assert!((score - expected).abs() <= tolerance, "{what}: id {id} scored {score}, reference {expected}");
        // Compared by key: for |score| lists, near-ties may have opposite signs.
        assert!(
            (key(score) - key(sorted[rank])).abs() <= tolerance,
            "{what}: rank {rank} holds {score}, the reference's rank {rank} is {}",
            sorted[rank]
        );
        if rank > 0 {
            let (previous_id, previous) = found[rank - 1];
            let (previous, current) = (key(f64::from(previous)), key(score));
            assert!(
                previous > current || (previous == current && previous_id < id),
                "{what}: ranks {} and {rank} out of order",
                rank - 1
            );
        }
    }
}

fn check_token_effects(what: &str, effects: &TokenEffects, scores: &[f64], k: usize) {
    let candidates: Vec<(u64, f64)> = scores.iter().enumerate().map(|(token, &score)| (token as u64, score)).collect();
    let top: Vec<(u64, f32)> = effects.top.iter().map(|effect| (u64::from(effect.token), effect.value)).collect();
    let bottom: Vec<(u64, f32)> = effects.bottom.iter().map(|effect| (u64::from(effect.token), effect.value)).collect();
    check_ranked(&format!("{what} top"), &top, &candidates, k, |score| score);
    check_ranked(&format!("{what} bottom"), &bottom, &candidates, k, |score| -score);
}

fn check_links(what: &str, links: &[NeuronLink], candidates: &[(u64, f64)], d_mlp: usize, k: usize) {
    let found: Vec<(u64, f32)> = links
        .iter()
        .map(|link| {
            assert!((link.neuron as usize) < d_mlp, "{what}: neuron {} out of range", link.neuron);
            (u64::from(link.layer) * d_mlp as u64 + u64::from(link.neuron), link.score)
        })
        .collect();
    check_ranked(what, &found, candidates, k, f64::abs);
}

/// Runs `compute` with a progress callback and checks that its reports add up to the work
/// estimate of `fact`.
fn with_progress_check<T>(
    name: &str,
    config: &ModelConfig,
    fact: WeightFact,
    compute: impl FnOnce(&(dyn Fn(u64) + Sync)) -> T,
) -> T {
    let reported = AtomicU64::new(0);
    let result = compute(&|scores| {
        reported.fetch_add(scores, Ordering::Relaxed);
    });
    assert_eq!(reported.into_inner(), work_estimate(config, fact).scores, "{name}: progress of {fact:?}");
    result
}

/// Runs all three facts on `model` with `options` and checks them against the reference, and
/// their progress reports against the work estimates.
fn check_model(name: &str, model: &Transformer, options: &CircuitOptions, reference: &Reference) {
    let config = model.config();
    let (layers, d_mlp, k) = (config.n_layers, config.d_mlp, options.k);
    let logits = with_progress_check(name, config, WeightFact::LogitAttribution, |progress| {
        logit_attribution(model, options, progress).expect("logits")
    });
    let inputs = with_progress_check(name, config, WeightFact::InputTokens, |progress| {
        input_tokens(model, options, progress).expect("input tokens")
    });
    let connections = with_progress_check(name, config, WeightFact::NeuronConnections, |progress| {
        neuron_connections(model, options, progress).expect("connections")
    });
    for (facts, scores, label) in [(&logits, &reference.logits, "logits"), (&inputs, &reference.inputs, "inputs")] {
        assert_eq!(facts.len(), layers, "{name} {label}: layers");
        for (layer, neurons) in facts.iter().enumerate() {
            assert_eq!(neurons.len(), d_mlp, "{name} {label}: neurons of layer {layer}");
            for (neuron, effects) in neurons.iter().enumerate() {
                check_token_effects(&format!("{name} {label} L{layer}N{neuron}"), effects, &scores[layer][neuron], k);
            }
        }
    }
    assert_eq!(connections.len(), layers, "{name} connections: layers");
    for (layer, neurons) in connections.iter().enumerate() {
        assert_eq!(neurons.len(), d_mlp, "{name} connections: neurons of layer {layer}");
        for (neuron, NeuronLinks { inputs, outputs }) in neurons.iter().enumerate() {
            let earlier: Vec<(u64, f64)> = (0..layer)
                .flat_map(|source| {
                    let scores = &reference.connections[&(source, layer)];
                    (0..d_mlp).map(move |from| ((source * d_mlp + from) as u64, scores[from][neuron]))
                })
                .collect();
            let later: Vec<(u64, f64)> = (layer + 1..layers)
                .flat_map(|target| {
                    let scores = &reference.connections[&(layer, target)];
                    (0..d_mlp).map(move |to| ((target * d_mlp + to) as u64, scores[neuron][to]))
                })
                .collect();
            check_links(&format!("{name} L{layer}N{neuron} inputs"), inputs, &earlier, d_mlp, k);
            check_links(&format!("{name} L{layer}N{neuron} outputs"), outputs, &later, d_mlp, k);
        }
    }
}

/// Every fixture, several tiles per product, k = 7.
#[test]
fn fixtures_match_the_naive_reference() {
    for name in FIXTURES {
        let model = load_transformer(&fixture(name), &Device::Cpu).unwrap_or_else(|err| panic!("{name}: {err}"));
        let reference = reference(&model);
        check_model(name, &model, &small_tiles(7), &reference);
    }
}

/// The default options (one tile per product on these sizes) agree too.
#[test]
fn default_tiles_match_the_naive_reference() {
    for name in ["gpt2", "llama-gguf"] {
        let model = load_transformer(&fixture(name), &Device::Cpu).expect("fixture");
        let reference = reference(&model);
        check_model(name, &model, &CircuitOptions::new(5), &reference);
    }
}

/// A k above the number of candidates returns every candidate, fully sorted: all 320 tokens, and
/// every neuron of the other layer (none for inputs of layer 0 or outputs of the last layer).
#[test]
fn k_beyond_the_candidates_returns_everything_sorted() {
    for name in ["tl-solu", "llama"] {
        let model = load_transformer(&fixture(name), &Device::Cpu).expect("fixture");
        let reference = reference(&model);
        check_model(name, &model, &small_tiles(1000), &reference);
        let config = model.config();
        let links = neuron_connections(&model, &small_tiles(1000), &|_| ()).expect("connections");
        assert!(links[0].iter().all(|links| links.inputs.is_empty() && links.outputs.len() == config.d_mlp));
        assert!(links[1].iter().all(|links| links.inputs.len() == config.d_mlp && links.outputs.is_empty()));
        let logits = logit_attribution(&model, &small_tiles(1000), &|_| ()).expect("logits");
        assert!(logits.iter().flatten().all(|effects| effects.top.len() == 320 && effects.bottom.len() == 320));
    }
}

/// k = 0 keeps nothing, keeps the [layer][neuron] shape, and still completes the progress bar.
#[test]
fn k_zero_keeps_nothing() {
    let model = load_transformer(&fixture("gpt2"), &Device::Cpu).expect("fixture");
    let reference = reference(&model);
    check_model("gpt2 k=0", &model, &small_tiles(0), &reference);
    let logits = logit_attribution(&model, &small_tiles(0), &|_| ()).expect("logits");
    assert_eq!((logits.len(), logits[1].len()), (2, 128));
    assert!(logits.iter().flatten().all(|effects| effects.top.is_empty() && effects.bottom.is_empty()));
}

/// Tile sizes of zero are refused with an input error rather than looping or panicking.
#[test]
fn empty_tiles_are_refused() {
    let model = load_transformer(&fixture("gpt2"), &Device::Cpu).expect("fixture");
    for options in
        [CircuitOptions { neuron_block: 0, ..small_tiles(3) }, CircuitOptions { column_block: 0, ..small_tiles(3) }]
    {
        let error = logit_attribution(&model, &options, &|_| ()).expect_err("zero tile");
        assert!(error.to_string().contains("tile sizes must be positive"), "{error}");
        assert!(neuron_connections(&model, &options, &|_| ()).is_err());
        assert!(input_tokens(&model, &options, &|_| ()).is_err());
    }
}

/// Four layers, so connection tiles span layer boundaries (the fixtures have at most two), with a
/// tile width that does not divide d_mlp; random weights (γ = 1) for both norm kinds.
#[test]
fn tiles_spanning_layers_match_the_naive_reference() {
    for (normalization, mlp, activation) in [
        (Normalization::LayerNorm { eps: 1e-5 }, MlpKind::Plain, Activation::GeluTanh),
        (Normalization::RmsNorm { eps: 1e-6 }, MlpKind::Gated, Activation::Silu),
    ] {
        let config = ModelConfig {
            architecture: Architecture::Gpt2,
            n_layers: 4,
            d_model: 24,
            d_mlp: 40,
            n_heads: 2,
            n_kv_heads: 2,
            d_head: 12,
            d_vocab: 90,
            n_ctx: 16,
            activation,
            mlp,
            normalization,
            positions: Positions::Learned,
            parallel_residual: false,
        };
        let model = Transformer::random(config, &Device::Cpu).expect("random model");
        let reference = reference(&model);
        check_model("random", &model, &CircuitOptions { k: 6, neuron_block: 7, column_block: 33 }, &reference);
    }
}

/// The accessors return the tensors the fixture files hold, in our layout: GPT-2's Conv1D weights
/// as stored, Llama's gate (not up) projection and down projection transposed from nn.Linear,
/// TransformerLens SoLU's W_out with the MLP LayerNorm scale folded in, and the tied unembedding.
#[test]
fn accessors_return_the_file_tensors() {
    let device = Device::Cpu;
    let close = |what: &str, ours: &Tensor, file: &Tensor| {
        assert_eq!(ours.dims(), file.dims(), "{what}: shape");
        let difference = (ours - file).expect("subtract").abs().expect("abs").max_all().expect("max");
        let difference = difference.to_scalar::<f32>().expect("scalar");
        assert!(difference <= 1e-6, "{what}: differs by {difference}");
    };

    let model = load_transformer(&fixture("gpt2"), &device).expect("gpt2");
    let file = candle_core::safetensors::load(fixture("gpt2").join("model.safetensors"), &device).expect("file");
    let weights = model.mlp_weights(1).expect("layer 1");
    close("gpt2 W_in", &weights.input, &file["transformer.h.1.mlp.c_fc.weight"]);
    close("gpt2 b_in", weights.input_bias.as_ref().expect("bias"), &file["transformer.h.1.mlp.c_fc.bias"]);
    close("gpt2 W_out", &weights.output, &file["transformer.h.1.mlp.c_proj.weight"]);
    close("gpt2 ln_2", weights.norm.scale(), &file["transformer.h.1.ln_2.weight"]);
    close("gpt2 ln_2 bias", weights.norm.shift().expect("LayerNorm shift"), &file["transformer.h.1.ln_2.bias"]);
    assert!(weights.norm.centres());
    close("gpt2 ln_f", model.final_norm().scale(), &file["transformer.ln_f.weight"]);
    close("gpt2 wte", model.token_embedding(), &file["transformer.wte.weight"]);
    close("gpt2 tied unembedding", model.unembedding(), &file["transformer.wte.weight"].t().expect("transpose"));
    assert!(model.mlp_weights(2).is_err(), "gpt2 has two layers");

    let model = load_transformer(&fixture("llama"), &device).expect("llama");
    let file = candle_core::safetensors::load(fixture("llama").join("model.safetensors"), &device).expect("file");
    let weights = model.mlp_weights(1).expect("layer 1");
    let transposed = |name: &str| file[name].t().expect("transpose").contiguous().expect("contiguous");
    close("llama gate", &weights.input, &transposed("model.layers.1.mlp.gate_proj.weight"));
    close("llama down", &weights.output, &transposed("model.layers.1.mlp.down_proj.weight"));
    assert!(weights.input_bias.is_none());
    close("llama norm", weights.norm.scale(), &file["model.layers.1.post_attention_layernorm.weight"]);
    assert!(!weights.norm.centres() && weights.norm.shift().is_none());
    close("llama final norm", model.final_norm().scale(), &file["model.norm.weight"]);
    close("llama unembedding", model.unembedding(), &transposed("lm_head.weight"));

    let model = load_transformer(&fixture("tl-solu"), &device).expect("tl-solu");
    let file: HashMap<String, Tensor> =
        candle_core::pickle::read_all(fixture("tl-solu").join("model_final.pth")).expect("file").into_iter().collect();
    let weights = model.mlp_weights(0).expect("layer 0");
    let scale = file["blocks.0.mlp.ln.w"].unsqueeze(1).expect("column");
    close("solu W_in", &weights.input, &file["blocks.0.mlp.W_in"]);
    close("solu W_out", &weights.output, &file["blocks.0.mlp.W_out"].broadcast_mul(&scale).expect("fold"));
    close("solu ln2", weights.norm.scale(), &file["blocks.0.ln2.w"]);
}
