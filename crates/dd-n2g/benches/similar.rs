//! Criterion benchmark of similar neurons over a gpt2-small-sized neuron store: 12 layers × 3,072
//! neurons, about 1.4 M (token, neuron) entries, tokens drawn from a Zipf distribution over the
//! 50,257-token vocabulary (a handful of activating tokens and a few dozen context tokens per
//! neuron). The original took 676 s for such a store; the goal is ≤ 10 s on 2 cores.
//!
//! `cargo bench -p dd-n2g --bench similar`

use std::collections::BTreeSet;

use criterion::{Criterion, criterion_group, criterion_main};
use dd_data::{NeuronIndex, TokenIndex};
use dd_n2g::index::{GraphTokens, token_index};
use dd_n2g::rng::SplitMix64;
use dd_n2g::similar::{SimilarityConfig, similar_neurons};

const N_LAYERS: u32 = 12;
const NEURONS_PER_LAYER: u32 = 3_072;
const VOCAB: usize = 50_257;
/// Zipf exponent of token frequencies; about 1 for words in text.
const ZIPF_EXPONENT: f64 = 1.0;

/// The fixture's deterministic generator, with the draws this benchmark needs.
struct Rng(SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn unit(&mut self) -> f64 {
        self.0.unit()
    }

    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// Draws `count` distinct token ranks by inverting the Zipf CDF.
fn draw_tokens(rng: &mut Rng, cdf: &[f64], count: u64) -> Vec<String> {
    let mut tokens = BTreeSet::new();
    while (tokens.len() as u64) < count {
        let u = rng.unit();
        tokens.insert(cdf.partition_point(|&c| c < u).min(cdf.len() - 1));
    }
    tokens.into_iter().map(|rank| format!("tok{rank}")).collect()
}

/// The store: per neuron 1–8 activating and 15–52 context tokens (38 on average).
fn gpt2_small_store() -> TokenIndex {
    let weights: Vec<f64> = (1..=VOCAB).map(|rank| (rank as f64).powf(-ZIPF_EXPONENT)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(VOCAB);
    let mut running = 0.0;
    for weight in weights {
        running += weight / total;
        cdf.push(running);
    }
    let mut rng = Rng(SplitMix64::new(2023));
    let mut graphs = Vec::new();
    for layer in 0..N_LAYERS {
        for index in 0..NEURONS_PER_LAYER {
            let n_activating = rng.range(1, 8);
            let n_important = rng.range(15, 52);
            let tokens = GraphTokens {
                activating: draw_tokens(&mut rng, &cdf, n_activating),
                important: draw_tokens(&mut rng, &cdf, n_important),
            };
            graphs.push((NeuronIndex { layer, index }, tokens));
        }
    }
    token_index(graphs)
}

fn bench_similar(c: &mut Criterion) {
    let index = gpt2_small_store();
    let n_entries: usize = index.entries.iter().map(|e| e.activating.len() + e.important.len()).sum();
    let largest = index.entries.iter().map(|e| e.activating.len().max(e.important.len())).max().unwrap_or(0);
    let squares: usize = index.entries.iter().map(|e| e.activating.len().pow(2) + e.important.len().pow(2)).sum();
    println!(
        "store: {} tokens, {n_entries} entries, largest posting list {largest}, Σ posting² = {squares}",
        index.entries.len()
    );
    let result = similar_neurons(&index, &SimilarityConfig::STANDARD);
    let n_pairs: usize = result.iter().map(|(_, s)| s.neurons.len()).sum();
    println!("standard config: {} neurons, {n_pairs} neighbours listed", result.len());

    let mut group = c.benchmark_group("similar");
    group.sample_size(10);
    for min_similarity in [0.4f32, 0.2] {
        let config = SimilarityConfig { min_similarity, ..SimilarityConfig::STANDARD };
        group.bench_function(format!("gpt2_small_store_min_{min_similarity}"), |b| {
            b.iter(|| similar_neurons(&index, &config))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_similar);
criterion_main!(benches);
