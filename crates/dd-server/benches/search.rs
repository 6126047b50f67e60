//! Criterion benchmark of `token-search` on a gpt2-xl-sized index: 48 × 6,400 = 307,200 neurons, each
//! with 20 activating tokens and an 8-node graph drawn from a Zipf-like 50,000-token vocabulary (four
//! spellings per word, so insensitive matching merges forms), built in memory by the code the
//! server runs after reading records. Times a one-token query and a two-term intersection, each
//! including the first page of 20 serialised to JSON; also prints their p50 and p99 over 2,000
//! queries drawn by the same Zipf law, which criterion does not report.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dd_data::{
    ActivatingTokens, GraphNode, GraphScores, Histogram, NeuronGraph, NeuronIndex, NeuronStats, TokenMean, Vocabulary,
};
use dd_server::bench::{SearchNeuron, TokenSearch};

const N_LAYERS: u32 = 48;
const UNITS: u32 = 6_400;
const VOCAB: usize = 50_000;
const TOKENS_PER_NEURON: usize = 20;
const GRAPH_NODES: usize = 8;

/// SplitMix64: deterministic and fast.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Token ids by a Zipf law (P(rank r) ∝ 1/(r + 1)), from the inverse of its cumulative table.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                total += 1.0 / (r as f64 + 1.0);
                total
            })
            .collect::<Vec<_>>();
        Zipf(cumulative.iter().map(|c| c / total).collect())
    }

    fn sample(&self, rng: &mut Rng) -> u32 {
        let u = rng.unit();
        self.0.partition_point(|&c| c < u).min(self.0.len() - 1) as u32
    }
}

/// `w{n}`, `·w{n}`, `W{n}`, `·W{n}` for each word n: four spellings of one normalised token.
fn vocabulary() -> Vocabulary {
    let tokens = (0..VOCAB)
        .map(|id| {
            let word = id / 4;
            match id % 4 {
                0 => format!("w{word}"),
                1 => format!("·w{word}"),
                2 => format!("W{word}"),
                _ => format!("·W{word}"),
            }
        })
        .collect();
    Vocabulary { tokens }
}

fn neuron(rng: &mut Rng, zipf: &Zipf, layer: u32, index: u32) -> SearchNeuron {
    let scale = 1.0 + 4.0 * rng.unit();
    let stats = NeuronStats {
        count: 1_000_000,
        max: scale,
        min: -0.17,
        mean: 0.05 * scale * rng.unit(),
        variance: (0.1 + rng.unit()) * scale * scale * 0.05,
        skewness: 0.0,
        kurtosis: 3.0,
        density: 0.1,
        histogram: Histogram { lower: -0.17, upper: scale as f32, counts: vec![1] },
        bos: None,
    };
    let tokens = (0..TOKENS_PER_NEURON)
        .map(|rank| TokenMean {
            token: zipf.sample(rng),
            mean: (scale * (1.0 - rank as f64 / 40.0) * (0.5 + 0.5 * rng.unit())) as f32,
            count: 1 + rng.next() % 5_000,
        })
        .collect();
    let nodes = (0..GRAPH_NODES)
        .map(|i| GraphNode {
            token: String::new(),
            token_id: Some(zipf.sample(rng)),
            required: vec![],
            importance: rng.unit() as f32,
            activation: Some(if i < GRAPH_NODES / 2 { 0.5 + 0.5 * rng.unit() } else { 0.4 * rng.unit() } as f32),
            is_end: true,
        })
        .collect();
    let counts = dd_data::FiringCounts::default();
    let graph = NeuronGraph {
        subgraph_indices: vec![0, 0, (GRAPH_NODES / 2) as u32],
        nodes,
        scores: Some(GraphScores { threshold: 0.5, scale: scale as f32, held_out_top: counts, random: counts }),
    };
    SearchNeuron {
        neuron: NeuronIndex { layer, index },
        stats: Some(stats),
        activating: Some(ActivatingTokens { tokens }),
        graph: Some(graph),
    }
}

/// A query token drawn by the Zipf law, spelled as a visitor types it.
fn query_word(rng: &mut Rng, zipf: &Zipf) -> String {
    format!("w{}", zipf.sample(rng) / 4)
}

/// p50 and p99 of `run` over `n` calls.
fn percentiles(n: usize, mut run: impl FnMut(usize) -> usize) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..n)
        .map(|i| {
            let start = Instant::now();
            std::hint::black_box(run(i));
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    (times[n / 2], times[n * 99 / 100])
}

fn bench_search(c: &mut Criterion) {
    let vocabulary = vocabulary();
    let zipf = Zipf::new(VOCAB);
    let mut rng = Rng(7);
    let started = Instant::now();
    let neurons = (0..N_LAYERS).flat_map(|layer| (0..UNITS).map(move |index| (layer, index)));
    let mut neuron_rng = Rng(11);
    let index = TokenSearch::build(
        &vocabulary,
        UNITS,
        neurons.map(|(layer, index)| neuron(&mut neuron_rng, &zipf, layer, index)),
    );
    eprintln!("built the index of {} neurons in {:.1?}", N_LAYERS * UNITS, started.elapsed());

    let one: Vec<String> = (0..2_000).map(|_| query_word(&mut rng, &zipf)).collect();
    let two: Vec<String> =
        (0..2_000).map(|_| format!("{},{}", query_word(&mut rng, &zipf), query_word(&mut rng, &zipf))).collect();
    for (name, queries) in [("one token", &one), ("two terms", &two)] {
        let (p50, p99) = percentiles(queries.len(), |i| index.page_json(&queries[i], 20).len());
        eprintln!("{name}: p50 {p50:.1?}, p99 {p99:.1?} over {} Zipf-drawn queries, first 20 as JSON", queries.len());
    }
    let common = index.page_json("w0", 20);
    assert!(common.contains("\"total\":"), "{common}");

    let mut group = c.benchmark_group("token_search");
    let mut i = 0;
    group.bench_function("one_token_page_20", |b| {
        b.iter(|| {
            i = (i + 1) % one.len();
            index.page_json(&one[i], 20)
        })
    });
    group.bench_function("two_terms_page_20", |b| {
        b.iter(|| {
            i = (i + 1) % two.len();
            index.page_json(&two[i], 20)
        })
    });
    group.bench_function("most_common_token_page_20", |b| b.iter(|| index.page_json("w0", 20)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5));
    targets = bench_search
}
criterion_main!(benches);
