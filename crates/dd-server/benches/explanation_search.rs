//! Benchmark of `explanation-search` at gpt2-xl's size: 48 × 6,400 = 307,200 explanations with
//! 384-dimensional embeddings (all-MiniLM-L6-v2's), built in memory by the code the server runs
//! after reading records, then searched with random unit queries: p50, p90 and p99 over 200
//! queries without filters, with `min_score` (about half the rows pass), with `layer` (one of 48),
//! and with the page serialised to JSON. The query's embedding is not timed (the encoder's cost).
//! With `--database N`, it also writes N neurons' explanations as `deepdecipher explain` would
//! (prompt, one held-out simulation, five scores, embedding) to a SQLite file and times the index
//! build the server runs on first search.
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p dd-server --bench explanation_search [-- --database 307200]`

use std::time::{Duration, Instant};

use dd_data::{
    Explanation, ExplanationProvenance, Explanations, NamedScore, NeuronIndex, NeuronRecord, SimulatedSequence,
    TextEmbedding,
};
use dd_server::bench::ExplanationSearch;

const N_LAYERS: u32 = 48;
const UNITS: u32 = 6_400;
const DIMENSION: usize = 384;
const QUERIES: usize = 200;

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

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A random unit vector (uniform components, normalised: far enough from any other).
    fn unit_vector(&mut self) -> Vec<f32> {
        let vector: Vec<f32> = (0..DIMENSION).map(|_| self.unit() * 2.0 - 1.0).collect();
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        vector.iter().map(|x| x / norm).collect()
    }
}

const WORDS: [&str; 16] = [
    "the", "end", "of", "a", "sentence", "names", "cities", "verbs", "past", "tense", "numbers", "code", "brackets",
    "quotes", "plural", "nouns",
];

/// One generated explanation as the explainer writes it; `full` adds the prompt and a simulation,
/// as the database holds them (the in-memory index keeps neither).
fn explanation(rng: &mut Rng, full: bool) -> Explanation {
    let text: Vec<&str> = (0..8 + rng.next() % 8).map(|_| WORDS[(rng.next() % 16) as usize]).collect();
    let score = rng.unit() * 1.2 - 0.2;
    let scores = [
        "ev_correlation_score",
        "rsquared_score",
        "absolute_dev_explained_score",
        "ev_correlation_score_top",
        "ev_correlation_score_random",
    ]
    .iter()
    .map(|name| NamedScore { name: (*name).to_owned(), value: score * (0.8 + 0.4 * rng.unit()) })
    .collect();
    let (provenance, simulations) = if full {
        // OpenAI's format: the instructions, then a token and its activation (0 to 10) per line.
        let mut prompt = String::from(
            "We're studying neurons in a neural network. Each neuron looks for some particular thing in a short \
             document. Look at the parts of the document the neuron activates for and summarize in a single \
             sentence what the neuron is looking for.\n\nNeuron 1\nActivations:\n<start>\n",
        );
        for _ in 0..128 {
            prompt.push_str(&format!("w{}\t{}\n", rng.next() % 50_000, rng.next() % 11));
        }
        prompt.push_str("<end>\n\nExplanation of neuron 1 behavior: the main thing this neuron does is find");
        let provenance = ExplanationProvenance {
            prompt_version: "oai-token-activation-pairs/1".into(),
            prompt,
            simulator: Some("gpt-4o-mini".into()),
            created: "2026-12-06T10:40:00Z".into(),
        };
        let token_ids: Vec<u32> = (0..64).map(|_| (rng.next() % 50_257) as u32).collect();
        let true_activations: Vec<f32> = (0..64).map(|_| rng.unit() * 4.0 - 0.2).collect();
        let simulated_activations = true_activations.iter().map(|a| a * 0.5 + rng.unit()).collect();
        (Some(provenance), vec![SimulatedSequence { token_ids, true_activations, simulated_activations }])
    } else {
        (None, Vec::new())
    };
    Explanation {
        text: text.join(" "),
        origin: "generated".into(),
        author: Some("gpt-4o-mini".into()),
        scores,
        provenance,
        simulations,
        embedding: Some(TextEmbedding::quantize("all-MiniLM-L6-v2", &rng.unit_vector())),
    }
}

fn neurons(rng: &mut Rng, n_layers: u32, full: bool) -> impl Iterator<Item = (NeuronIndex, Explanations)> + '_ {
    (0..n_layers)
        .flat_map(|layer| (0..UNITS).map(move |index| NeuronIndex { layer, index }))
        .map(move |neuron| (neuron, Explanations { explanations: vec![explanation(rng, full)] }))
}

/// p50, p90 and p99 of `time` over [`QUERIES`] random queries.
fn percentiles(name: &str, queries: &[Vec<f32>], mut time: impl FnMut(&[f32])) {
    // Two rounds untimed, so the first timed query finds the pool started and the pages warm.
    for query in queries.iter().take(2) {
        time(query);
    }
    let mut times: Vec<Duration> = queries
        .iter()
        .map(|query| {
            let started = Instant::now();
            time(query);
            started.elapsed()
        })
        .collect();
    times.sort();
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)].as_secs_f64() * 1e3;
    println!("{name:<40} p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms", at(50), at(90), at(99));
}

fn main() {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!("explanation-search: {N_LAYERS} × {UNITS} explanations, {DIMENSION} dimensions, {threads} rayon threads");
    let mut rng = Rng(42);
    let started = Instant::now();
    let index = ExplanationSearch::build(neurons(&mut rng, N_LAYERS, false));
    println!(
        "built in {:.2} s (generating the records included): {} explanations, {:.1} MB on the heap",
        started.elapsed().as_secs_f64(),
        index.len(),
        index.heap_bytes() as f64 / 1e6
    );
    let parts: Vec<String> =
        index.heap_parts().iter().map(|(part, bytes)| format!("{part} {:.1} MB", *bytes as f64 / 1e6)).collect();
    println!("  {}", parts.join(", "));
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| rng.unit_vector()).collect();
    let mut sink = 0usize;
    // The floor: the same vectors read once without a dot product, on the same threads.
    percentiles("read every vector once (the floor)", &queries, |_| sink += index.read_all() as usize % 2);
    percentiles("top 20, no filter", &queries, |query| sink += index.search(query, 20, None).0);
    percentiles("top 100, no filter", &queries, |query| sink += index.search(query, 100, None).0);
    percentiles("top 20, min_score 0.5 (about half pass)", &queries, |query| {
        sink += index.search(query, 20, Some(0.5)).0;
    });
    percentiles("top 20 as the page's JSON", &queries, |query| sink += index.page_json(query, 20).len());
    println!("({sink} rows counted, so nothing is optimised away)");

    // The same search where the vectors fit in a core's L2 cache (768 KB of 2 MB): the arithmetic
    // and the fixed cost of a query, without memory.
    let small = ExplanationSearch::build(neurons(&mut rng, 1, false).take(2048));
    percentiles("in L2 cache: 2,048 explanations, top 20", &queries, |query| sink += small.search(query, 20, None).0);

    if let Some(n_neurons) = database_size() {
        database_build(&mut rng, n_neurons);
    }
}

/// `--database N` on the command line.
fn database_size() -> Option<u32> {
    let arguments: Vec<String> = std::env::args().collect();
    let at = arguments.iter().position(|argument| argument == "--database")?;
    arguments.get(at + 1)?.parse().ok()
}

/// Writes `n_neurons` neurons' full explanations (layers of 6,400) and times the server's build.
fn database_build(rng: &mut Rng, n_neurons: u32) {
    use dd_store::{EncodeOptions, EncodedNeuron, StoreWrite, StoreWriter};
    use rayon::prelude::*;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("explanations.db");
    let n_layers = n_neurons.div_ceil(UNITS);
    let metadata = dd_data::ModelMetadata {
        name: "m".into(),
        architecture: "synthetic".into(),
        n_layers: u64::from(n_layers),
        d_mlp: u64::from(UNITS),
        d_model: 1600,
        activation_function: "gelu".into(),
        dataset: "bench".into(),
        training_dataset: None,
        n_parameters: 0,
        context_length: 1024,
        provenance: dd_data::Provenance {
            data_source: "bench".into(),
            model_source: None,
            weights: None,
            tokens_recorded: 0,
            tool_version: "0".into(),
            recorded_at: "1970-01-01T00:00:00Z".into(),
        },
    };
    let started = Instant::now();
    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("writer");
    let (_, source) = writer.add_model(&metadata).expect("model");
    let options = writer.encode_options();
    for layer in 0..n_layers {
        let records: Vec<(u32, NeuronRecord)> = (0..UNITS.min(n_neurons - layer * UNITS))
            .map(|index| {
                (index, NeuronRecord::Explanations(Explanations { explanations: vec![explanation(rng, true)] }))
            })
            .collect();
        let encoded: Vec<(u32, EncodedNeuron)> = records
            .par_iter()
            .map(|(index, record)| (*index, EncodedNeuron::new(record, &options).expect("encode")))
            .collect();
        let mut batch = writer.batch().expect("batch");
        for (index, neuron) in &encoded {
            batch.put_encoded_neuron(source, layer, *index, neuron).expect("put");
        }
        batch.commit().expect("commit");
    }
    writer.finish().expect("finish");
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "database of {n_neurons} neurons' explanations written in {:.1} s: {:.0} MB ({:.0} B per explanation)",
        started.elapsed().as_secs_f64(),
        bytes as f64 / 1e6,
        bytes as f64 / f64::from(n_neurons)
    );
    let started = Instant::now();
    let index = ExplanationSearch::from_database(&path, "m").expect("build");
    println!(
        "index built from the database in {:.2} s: {} explanations, {:.1} MB on the heap",
        started.elapsed().as_secs_f64(),
        index.len(),
        index.heap_bytes() as f64 / 1e6
    );
}
