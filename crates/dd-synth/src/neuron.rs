//! Generates every record of one synthetic neuron: a GELU neuron with a few trigger tokens.
//!
//! Each neuron fires strongly on 2-3 "trigger" tokens and weakly on the token
//! after one; elsewhere its pre-activation is negative, so GELU leaves small
//! negative values, as in real GPT-2 neurons. Statistics are computed exactly
//! from a sample drawn from the same process.

use dd_data::{
    ActivatingTokens, Connection, Example, ExampleGroup, ExampleGroupKind, Explanation, Explanations, FiringCounts,
    GraphNode, GraphScores, HISTOGRAM_BINS, Histogram, InputTokens, LogitAttribution, NamedScore, NeuronConnections,
    NeuronExamples, NeuronGraph, NeuronIndex, NeuronRecord, NeuronStats, NeuronSummary, SimilarNeuron, SimilarNeurons,
    TokenMean, TokenValue, Vocabulary, interestingness,
};

use crate::SynthConfig;
use crate::rng::SynthRng;
use crate::vocab::ZipfSampler;

/// Activations sampled per neuron to compute its statistics.
pub(crate) const STATS_SAMPLE: usize = 4096;

/// Entries in each token list (`activating_tokens`, each half of `input_tokens`), as in `logits`.
const TOKEN_LIST_LEN: usize = 10;

/// Entries in each half of `connections`, fewer where the earlier or later layers hold fewer neurons.
const CONNECTIONS_LEN: u64 = 10;

/// Stream id of the token- and weight-level kinds: their own stream, so adding them left every
/// other record of a seed as it was.
const TOKENS_AND_WEIGHTS_STREAM: u64 = 0x7E1C;
/// The stream of graph node activations and scores, apart so the other records did not change when
/// graphs gained them.
const GRAPH_SCORES_STREAM: u64 = 0x6EA5;

/// One generated neuron: its records plus what the layer and model records need.
pub(crate) struct GeneratedNeuron {
    pub(crate) records: Vec<NeuronRecord>,
    pub(crate) summary: NeuronSummary,
    pub(crate) score: f32,
    pub(crate) activating_tokens: Vec<u32>,
    pub(crate) important_tokens: Vec<u32>,
}

/// GELU, tanh approximation (GPT-2's `gelu_new`).
fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044_715 * x * x * x)).tanh())
}

struct NeuronModel {
    scale: f64,
    density: f64,
    triggers: Vec<u32>,
}

impl NeuronModel {
    fn background(&self, rng: &mut SynthRng) -> f64 {
        gelu(-1.6 + 0.7 * rng.normal())
    }

    fn firing(&self, rng: &mut SynthRng) -> f64 {
        gelu(self.scale * (0.75 + 0.25 * rng.unit()) + 0.3 * rng.normal())
    }
}

pub(crate) fn generate(
    config: &SynthConfig,
    vocabulary: &Vocabulary,
    sampler: &ZipfSampler,
    layer: u32,
    index: u32,
) -> GeneratedNeuron {
    let mut rng = SynthRng::new(config.seed, &[u64::from(layer), u64::from(index)]);
    let vocab_size = u64::from(config.vocab_size);
    let n_triggers = 2 + rng.below(2) as usize;
    let model = NeuronModel {
        scale: (1.2 + 0.6 * rng.normal()).exp().clamp(0.5, 30.0),
        density: (-4.5 + 1.2 * rng.normal()).exp().min(0.5),
        triggers: (0..n_triggers)
            .map(|_| (30 + rng.below(vocab_size.saturating_sub(30).max(1))).min(vocab_size - 1) as u32)
            .collect(),
    };

    let mut top: Vec<Example> =
        (0..config.n_examples).map(|_| top_example(config, sampler, &model, &mut rng)).collect();
    top.sort_by(|a, b| b.max_activation().total_cmp(&a.max_activation()));
    let mut groups = vec![ExampleGroup { kind: ExampleGroupKind::Top, examples: top }];
    if config.n_bottom_examples > 0 {
        let mut bottom: Vec<Example> =
            (0..config.n_bottom_examples).map(|_| bottom_example(config, sampler, &mut rng)).collect();
        bottom.sort_by(|a, b| a.min_activation().total_cmp(&b.min_activation()));
        groups.push(ExampleGroup { kind: ExampleGroupKind::Bottom, examples: bottom });
    }

    let stats = stats(&model, &mut rng);
    let score = interestingness(&stats);
    let summary = NeuronSummary::from_stats(&stats);
    let random_token = |rng: &mut SynthRng| rng.below(vocab_size) as u32;
    let logits = LogitAttribution {
        top: (0..10)
            .map(|i| TokenValue {
                token: random_token(&mut rng),
                value: (model.scale * 0.4 / (1.0 + 0.2 * f64::from(i))) as f32,
            })
            .collect(),
        bottom: (0..10)
            .map(|i| TokenValue {
                token: random_token(&mut rng),
                value: -(model.scale * 0.3 / (1.0 + 0.2 * f64::from(i))) as f32,
            })
            .collect(),
    };
    let display = |token: u32| vocabulary.token(token).unwrap_or("?").trim().to_owned();
    let explanation = Explanations {
        explanations: vec![Explanation {
            text: format!(
                "fires on \"{}\"{}",
                display(model.triggers[0]),
                model.triggers[1..].iter().map(|&t| format!(", \"{}\"", display(t))).collect::<String>()
            ),
            origin: "synthetic".into(),
            author: Some("dd-synth".into()),
            scores: vec![NamedScore { name: "ev_correlation_score".into(), value: (rng.unit() * 0.8) as f32 }],
            ..Explanation::default()
        }],
    };
    let context_tokens: Vec<u32> = (0..2).map(|_| sampler.sample(&mut rng)).collect();
    let mut nodes: Vec<GraphNode> = model
        .triggers
        .iter()
        .map(|&t| GraphNode {
            token: normalise(&display(t)),
            token_id: Some(t),
            required: vec![],
            importance: 1.0,
            activation: None,
            is_end: true,
        })
        .collect();
    let n_activating = nodes.len() as u32;
    nodes.extend(context_tokens.iter().enumerate().map(|(i, &t)| GraphNode {
        token: normalise(&display(t)),
        token_id: Some(t),
        required: vec![i as u32 % n_activating],
        importance: (0.3 + 0.5 * rng.unit()) as f32,
        activation: None,
        is_end: true,
    }));
    let mut graph_rng = SynthRng::new(config.seed, &[u64::from(layer), u64::from(index), GRAPH_SCORES_STREAM]);
    let graph = scored_graph(config, &stats, nodes, n_activating, &mut graph_rng);
    let n_layers = u64::from(config.n_layers);
    let mut similar: Vec<SimilarNeuron> = (0..4)
        .map(|_| SimilarNeuron {
            layer: rng.below(n_layers) as u32,
            index: rng.below(u64::from(config.d_mlp)) as u32,
            similarity: (0.4 + 0.55 * rng.unit()) as f32,
        })
        .collect();
    similar.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    let mut weights_rng = SynthRng::new(config.seed, &[u64::from(layer), u64::from(index), TOKENS_AND_WEIGHTS_STREAM]);
    let [activating, inputs, connections] = tokens_and_weights(config, sampler, &model, layer, &mut weights_rng);

    GeneratedNeuron {
        records: vec![
            NeuronRecord::Examples(NeuronExamples { groups }),
            NeuronRecord::Stats(stats),
            NeuronRecord::Logits(logits),
            NeuronRecord::Explanations(explanation),
            NeuronRecord::Graph(graph),
            NeuronRecord::Similar(SimilarNeurons { neurons: similar }),
            activating,
            inputs,
            connections,
        ],
        summary,
        score,
        activating_tokens: model.triggers,
        important_tokens: context_tokens,
    }
}

/// The `activating_tokens`, `input_tokens` and `connections` records of a neuron.
///
/// The triggers lead both token lists, as they would in a recorded neuron: they are the tokens it
/// fires on, so they have the highest mean activation and, through the direct path, the largest
/// input effect. Connections link to random neurons of earlier and later layers with weights that
/// fall off with rank and have random signs. No list names a token or neuron twice.
fn tokens_and_weights(
    config: &SynthConfig,
    sampler: &ZipfSampler,
    model: &NeuronModel,
    layer: u32,
    rng: &mut SynthRng,
) -> [NeuronRecord; 3] {
    let vocab_size = u64::from(config.vocab_size);
    let firing_mean = gelu(model.scale * 0.875);
    let mut activating: Vec<TokenMean> = Vec::with_capacity(TOKEN_LIST_LEN);
    for &token in &model.triggers {
        if activating.iter().all(|t| t.token != token) {
            let mean = (firing_mean * (0.6 + 0.3 * rng.unit())) as f32;
            // Triggers are rare tokens (ids past the common ones): seen a few hundred times at most.
            activating.push(TokenMean { token, mean, count: 1 + rng.below(400) });
        }
    }
    // The rest are the weak firing after a trigger, spread over ordinary text: lower means, on
    // Zipf-frequent tokens seen far more often.
    while activating.len() < TOKEN_LIST_LEN {
        let Some(token) = fresh_token(|t| activating.iter().any(|a| a.token == t), rng, |rng| sampler.sample(rng))
        else {
            break;
        };
        let rank = activating.len() as f64;
        let mean = gelu(model.scale * 0.3) * (0.5 + 0.5 * rng.unit()) / (1.0 + 0.3 * rank);
        activating.push(TokenMean { token, mean: mean as f32, count: 10 + rng.below(100_000) });
    }

    let mut input_tokens: Vec<TokenValue> = Vec::with_capacity(2 * TOKEN_LIST_LEN);
    for &token in &model.triggers {
        if input_tokens.iter().all(|t| t.token != token) {
            input_tokens.push(TokenValue { token, value: (model.scale * (0.5 + 0.2 * rng.unit())) as f32 });
        }
    }
    // Top entries first, then bottom ones, drawn from one pool so no token is in both halves.
    let mut n_top = input_tokens.len();
    while input_tokens.len() < 2 * TOKEN_LIST_LEN {
        let taken = |t: u32| input_tokens.iter().any(|v| v.token == t);
        let Some(token) = fresh_token(taken, rng, |rng| rng.below(vocab_size) as u32) else { break };
        let value = if n_top < TOKEN_LIST_LEN {
            n_top += 1;
            model.scale * 0.3 / (1.0 + 0.2 * n_top as f64)
        } else {
            -model.scale * 0.25 / (1.0 + 0.2 * (input_tokens.len() - n_top) as f64)
        };
        input_tokens.push(TokenValue { token, value: value as f32 });
    }
    let bottom = input_tokens.split_off(n_top);
    let mut top = input_tokens;
    top.sort_by(|a, b| b.value.total_cmp(&a.value));

    let d_mlp = u64::from(config.d_mlp);
    let connections = |first_layer: u32, n_layers: u32, rng: &mut SynthRng| -> Vec<Connection> {
        let first = u64::from(first_layer) * d_mlp;
        distinct_below(u64::from(n_layers) * d_mlp, CONNECTIONS_LEN, rng)
            .into_iter()
            .enumerate()
            .map(|(rank, offset)| {
                let global = first + offset;
                let sign = if rng.below(4) == 0 { -1.0 } else { 1.0 };
                Connection {
                    neuron: NeuronIndex { layer: (global / d_mlp) as u32, index: (global % d_mlp) as u32 },
                    weight: (sign * (0.4 + 0.2 * rng.unit()) / (1.0 + 0.3 * rank as f64)) as f32,
                }
            })
            .collect()
    };
    let inputs = connections(0, layer, rng);
    let outputs = connections(layer + 1, config.n_layers.saturating_sub(layer + 1), rng);

    [
        NeuronRecord::ActivatingTokens(ActivatingTokens::from_unsorted(activating)),
        NeuronRecord::InputTokens(InputTokens { top, bottom }),
        NeuronRecord::Connections(NeuronConnections::from_unsorted(inputs, outputs)),
    ]
}

/// A token from `draw` that is not `taken`, or `None` when a few draws all were: a tiny
/// vocabulary then gives a shorter list instead of a loop that never ends.
fn fresh_token(
    taken: impl Fn(u32) -> bool,
    rng: &mut SynthRng,
    mut draw: impl FnMut(&mut SynthRng) -> u32,
) -> Option<u32> {
    (0..16).map(|_| draw(rng)).find(|&token| !taken(token))
}

/// Up to `k` distinct values below `n`, in random order.
fn distinct_below(n: u64, k: u64, rng: &mut SynthRng) -> Vec<u64> {
    let k = k.min(n);
    if n <= 4 * k {
        // Few candidates: a partial Fisher-Yates shuffle, so no draw is ever rejected.
        let mut all: Vec<u64> = (0..n).collect();
        for i in 0..k as usize {
            let j = i + rng.below(n - i as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(k as usize);
        return all;
    }
    // Many candidates: a repeat is rare (under one in four), so drawing again is cheap.
    let mut chosen = Vec::with_capacity(k as usize);
    while (chosen.len() as u64) < k {
        let value = rng.below(n);
        if !chosen.contains(&value) {
            chosen.push(value);
        }
    }
    chosen
}

/// The graph with node activations (triggers at or above N2G's 0.5, context below it) and scores on
/// held-out top and random examples whose counts add up.
fn scored_graph(
    config: &SynthConfig,
    stats: &NeuronStats,
    mut nodes: Vec<GraphNode>,
    n_activating: u32,
    rng: &mut SynthRng,
) -> NeuronGraph {
    for (i, node) in nodes.iter_mut().enumerate() {
        let activating = (i as u32) < n_activating;
        let activation = if activating { 0.6 + 0.4 * rng.unit() } else { 0.05 + 0.35 * rng.unit() };
        node.activation = Some(activation as f32);
    }
    let mut counts = |texts: u32, firing_rate: f64| {
        let tokens = u64::from(texts) * u64::from(config.n_tokens);
        let firing = ((tokens as f64) * firing_rate * rng.unit()).round() as u64;
        let true_positives = ((firing as f64) * (0.4 + 0.6 * rng.unit())).round() as u64;
        let predicted = (true_positives + ((tokens - firing) as f64 * 0.02 * rng.unit()).round() as u64).min(tokens);
        FiringCounts { texts, tokens, firing, predicted, true_positives }
    };
    let held_out_top = counts(config.n_examples.div_ceil(2), 0.1);
    let random = counts(config.n_examples.div_ceil(4), 0.01);
    let scores = GraphScores { threshold: 0.5, scale: stats.max.max(f64::MIN_POSITIVE) as f32, held_out_top, random };
    NeuronGraph { subgraph_indices: vec![0, 0, n_activating], nodes, scores: Some(scores) }
}

/// Neuron2Graph's token normalisation: lower-case and stripped.
pub(crate) fn normalise(token: &str) -> String {
    token.trim().to_lowercase()
}

fn top_example(config: &SynthConfig, sampler: &ZipfSampler, model: &NeuronModel, rng: &mut SynthRng) -> Example {
    let n_tokens = config.n_tokens as usize;
    let mut tokens: Vec<u32> = (0..n_tokens).map(|_| sampler.sample(rng)).collect();
    let mut activations: Vec<f32> = (0..n_tokens).map(|_| model.background(rng) as f32).collect();
    let n_firing = 1 + rng.below(3) as usize;
    for _ in 0..n_firing.min(n_tokens) {
        let position = rng.below(n_tokens as u64) as usize;
        tokens[position] = model.triggers[rng.below(model.triggers.len() as u64) as usize];
        activations[position] = model.firing(rng) as f32;
        if position + 1 < n_tokens {
            activations[position + 1] = gelu(model.scale * 0.3 * rng.unit()) as f32;
        }
    }
    finish_example(tokens, activations, rng, |a, b| a > b)
}

fn bottom_example(config: &SynthConfig, sampler: &ZipfSampler, rng: &mut SynthRng) -> Example {
    let n_tokens = config.n_tokens as usize;
    let tokens: Vec<u32> = (0..n_tokens).map(|_| sampler.sample(rng)).collect();
    // GELU's minimum is about -0.17 at x = -0.75: the bottom examples sit there.
    let activations: Vec<f32> = (0..n_tokens).map(|_| gelu(-0.75 + 0.5 * rng.normal()) as f32).collect();
    finish_example(tokens, activations, rng, |a, b| a < b)
}

fn finish_example(
    tokens: Vec<u32>,
    activations: Vec<f32>,
    rng: &mut SynthRng,
    better: impl Fn(f32, f32) -> bool,
) -> Example {
    let mut best = 0;
    for (i, &a) in activations.iter().enumerate() {
        if better(a, activations[best]) {
            best = i;
        }
    }
    Example {
        dataset_index: rng.below(10_000_000),
        tokens,
        activations,
        max_token_index: best as u32,
        activation_error: 0.0,
    }
}

/// Exact statistics (two-pass moments) of a sample of the neuron's activations.
fn stats(model: &NeuronModel, rng: &mut SynthRng) -> NeuronStats {
    let sample: Vec<f64> = (0..STATS_SAMPLE)
        .map(|_| if rng.unit() < model.density { model.firing(rng) } else { model.background(rng) })
        .collect();
    let n = sample.len() as f64;
    let mean = sample.iter().sum::<f64>() / n;
    let moment = |k: i32| sample.iter().map(|x| (x - mean).powi(k)).sum::<f64>() / n;
    let variance = moment(2);
    let (skewness, kurtosis) =
        if variance > 0.0 { (moment(3) / variance.powf(1.5), moment(4) / (variance * variance)) } else { (0.0, 0.0) };
    let max = sample.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = sample.iter().copied().fold(f64::INFINITY, f64::min);
    let mut counts = vec![0u64; HISTOGRAM_BINS];
    let width = (max - min) / HISTOGRAM_BINS as f64;
    for &x in &sample {
        let bin = if width > 0.0 { ((x - min) / width) as usize } else { 0 };
        counts[bin.min(HISTOGRAM_BINS - 1)] += 1;
    }
    let density = sample.iter().filter(|&&x| x > 0.0).count() as f64 / n;
    NeuronStats {
        count: sample.len() as u64,
        max,
        min,
        mean,
        variance,
        skewness,
        kurtosis,
        density,
        histogram: Histogram { lower: min as f32, upper: (max as f32).max(min as f32 + f32::EPSILON), counts },
        // Synthetic texts have no BOS token.
        bos: None,
    }
}
