//! A fixture for the crate's unit tests: a synthetic database served in process by the whole
//! application, with a small random model that runs visitors' texts and a small deterministic
//! query encoder for search by meaning.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use dd_data::{
    ExplanationProvenance, Explanations, NamedScore, NeuronDataKind, NeuronRecord, SimulatedSequence, TextEmbedding,
};
use dd_model::{Tokenizer, Transformer};
use dd_store::{EncodeOptions, SqliteStore, StoreRead, StoreWriter};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::{AppState, LiveLimits, LiveModel, QueryEncoder, ServerConfig};

/// The served model's name.
pub(crate) const MODEL: &str = "m";
/// Its layers and neurons per layer.
pub(crate) const N_LAYERS: u32 = 2;
pub(crate) const N_NEURONS: u32 = 16;

/// The embedding model of the fixture's explanations and of [`BagOfWords`].
pub(crate) const TEST_EMBEDDING_MODEL: &str = "test-bag-of-words";
/// Its dimension, that of `all-MiniLM-L6-v2`.
pub(crate) const TEST_DIMENSION: usize = 384;
/// The neuron whose generated explanation carries markup, for the escaping tests.
pub(crate) const MARKUP_NEURON: (u32, u32) = (1, 3);
/// The text of that explanation.
pub(crate) const MARKUP_TEXT: &str = "closes <script>alert(\"x\")</script> tags & quotes";
/// What the fixture's generated explanations are about, by half the neuron index modulo 4.
pub(crate) const TOPICS: [&str; 4] = ["apples and pears", "rivers and lakes", "verbs in the past", "prime numbers"];

/// A stand-in sentence encoder: each lower-cased word adds ±1 to a dimension picked by its hash,
/// and the sum is normalised. Texts that share words have a positive cosine, which is all the
/// tests need of meaning.
pub(crate) fn bag_of_words(text: &str) -> Vec<f32> {
    let mut vector = vec![0f32; TEST_DIMENSION];
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
        let hash = word
            .chars()
            .flat_map(char::to_lowercase)
            .fold(0xcbf2_9ce4_8422_2325u64, |hash, c| (hash ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3));
        vector[(hash % TEST_DIMENSION as u64) as usize] += if hash >> 63 == 0 { 1.0 } else { -1.0 };
    }
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|value| *value /= norm);
    }
    vector
}

/// The test query encoder, [`bag_of_words`] under [`TEST_EMBEDDING_MODEL`].
pub(crate) struct BagOfWords;

impl QueryEncoder for BagOfWords {
    fn model_name(&self) -> &str {
        TEST_EMBEDDING_MODEL
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>, String> {
        Ok(bag_of_words(text))
    }
}

/// The application over a synthetic 2 × 16 model that holds every data kind, with a random model of
/// the same shape (and a 2-layer test tokenizer) for `activations` and the pages' text boxes.
pub(crate) struct LiveApp {
    dir: tempfile::TempDir,
    app: tower_http::normalize_path::NormalizePath<axum::Router>,
    runtime: tokio::runtime::Runtime,
    /// The model's run permits, to hold one and make it busy.
    pub(crate) runs: Arc<Semaphore>,
}

impl LiveApp {
    /// Builds the database and the model, with visitors' runs bounded by `limits` and queries
    /// embedded by [`BagOfWords`].
    pub(crate) fn new(limits: LiveLimits) -> Self {
        Self::build(limits, Some(Arc::new(BagOfWords)))
    }

    /// The same application without a query encoder, as `serve` without `--embedder`.
    pub(crate) fn without_query_encoder(limits: LiveLimits) -> Self {
        Self::build(limits, None)
    }

    fn build(limits: LiveLimits, encoder: Option<Arc<dyn QueryEncoder>>) -> Self {
        let tokenizer_path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../dd-model/tests/fixtures/tokenizers/tiny-tokenizer.json");
        let tokenizer = Tokenizer::from_tokenizer_json(std::path::Path::new(tokenizer_path)).expect("tokenizer");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("live.db");
        let synth = dd_synth::SynthConfig {
            model_name: MODEL.into(),
            n_layers: N_LAYERS,
            d_mlp: N_NEURONS,
            n_examples: 2,
            n_bottom_examples: 0,
            n_tokens: 8,
            vocab_size: tokenizer.vocab_size() as u32,
            seed: 3,
            replace: false,
            n_threads: 1,
        };
        dd_synth::synthesize(&path, &synth, &mut |_, _| {}).expect("synth");
        add_explanation_details(&path);
        let mut config = dd_model::ModelConfig::benchmark_shape("gpt2-small").expect("shape");
        config.n_layers = N_LAYERS as usize;
        config.d_model = 16;
        config.d_mlp = N_NEURONS as usize;
        config.n_heads = 2;
        config.n_kv_heads = 2;
        config.d_head = 8;
        config.d_vocab = tokenizer.vocab_size();
        config.n_ctx = 64;
        let transformer = Transformer::random(config, &candle_core::Device::Cpu).expect("model");
        let live = LiveModel::new(transformer, Arc::new(tokenizer), limits);
        let runs = live.runs();
        let store = dd_store::SqliteStore::open(&path, &dd_store::ReadConfig::serving()).expect("open");
        let mut state = AppState::load(Arc::new(store), ServerConfig::standard())
            .expect("state")
            .with_live_model(MODEL, live)
            .expect("shapes match");
        if let Some(encoder) = encoder {
            state = state.with_query_encoder(encoder);
        }
        let app = crate::app(Arc::new(state));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        LiveApp { dir, app, runtime, runs }
    }

    /// The database the application serves, for tests that read it directly.
    pub(crate) fn database(&self) -> std::path::PathBuf {
        self.dir.path().join("live.db")
    }

    /// Status and body text of the answer to `request`.
    pub(crate) fn send(&self, request: Request<Body>) -> (u16, String) {
        let response = self.runtime.block_on(self.app.clone().oneshot(request)).expect("response");
        let status = response.status();
        let body = self.runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).expect("body");
        (status.as_u16(), String::from_utf8_lossy(&body).into_owned())
    }

    /// Status and body text of `GET target`.
    pub(crate) fn get(&self, target: &str) -> (u16, String) {
        self.send(Request::get(target).body(Body::empty()).expect("request"))
    }
}

/// Gives the synthetic explanations what generated ones have, and adds generated ones: every
/// neuron's synthetic explanation gets an embedding, a provenance and its first top example as a
/// simulated held-out sequence (predicted at half the true values, plus a constant); even neurons
/// get a second, generated explanation about one of [`TOPICS`], scored `index / 16`, and so do
/// three odd ones, for the index's counts and the escaping tests: neuron 1/5's has no embedding,
/// neuron 0/7's is embedded by another model, and [`MARKUP_NEURON`]'s says [`MARKUP_TEXT`].
fn add_explanation_details(path: &Path) {
    let mut records = Vec::new();
    {
        let store = SqliteStore::open(path, &dd_store::ReadConfig::serving()).expect("open");
        let entry = store.catalog().model(MODEL).expect("model").clone();
        let source = entry.sources.first().expect("mlp").clone();
        for layer in 0..N_LAYERS {
            for index in 0..N_NEURONS {
                let read = |kind| store.neuron_record(&source, layer, index, kind).expect("read");
                let Some(NeuronRecord::Explanations(explanations)) = read(NeuronDataKind::Explanations) else {
                    panic!("synth writes explanations");
                };
                let Some(NeuronRecord::Examples(examples)) = read(NeuronDataKind::Examples) else {
                    panic!("synth writes examples");
                };
                let example = examples.groups.first().and_then(|group| group.examples.first()).expect("an example");
                records.push((layer, index, detailed(layer, index, explanations, example)));
            }
        }
    }
    let mut writer = StoreWriter::open(path, EncodeOptions::STANDARD).expect("writer");
    let catalog = writer.catalog().expect("catalog");
    let source = catalog.model(MODEL).expect("model").sources.first().expect("mlp").id;
    let mut batch = writer.batch().expect("batch");
    for (layer, index, explanations) in &records {
        batch.put_neuron(source, *layer, *index, &NeuronRecord::Explanations(explanations.clone())).expect("put");
    }
    batch.commit().expect("commit");
    writer.finish().expect("finish");
}

/// One neuron's explanations as [`add_explanation_details`] describes them.
fn detailed(layer: u32, index: u32, mut explanations: Explanations, example: &dd_data::Example) -> Explanations {
    let embed = |text: &str| Some(TextEmbedding::quantize(TEST_EMBEDDING_MODEL, &bag_of_words(text)));
    let provenance = |prompt: String| ExplanationProvenance {
        prompt_version: "test-prompt/1".into(),
        prompt,
        simulator: Some("test-simulator".into()),
        created: "2026-12-06T10:40:00Z".into(),
    };
    if let Some(first) = explanations.explanations.first_mut() {
        first.embedding = embed(&first.text);
        first.provenance = Some(provenance(format!("Explain neuron {layer}/{index} from <these> examples.")));
        first.simulations = vec![SimulatedSequence {
            token_ids: example.tokens.clone(),
            true_activations: example.activations.clone(),
            simulated_activations: example.activations.iter().map(|value| 0.5 * value + 0.25).collect(),
        }];
    }
    if index % 2 == 0 || matches!((layer, index), MARKUP_NEURON | (1, 5) | (0, 7)) {
        let text = match (layer, index) {
            MARKUP_NEURON => MARKUP_TEXT.to_owned(),
            _ => format!("{} in layer {layer}", TOPICS[(index / 2 % 4) as usize]),
        };
        let embedding = match (layer, index) {
            (1, 5) => None,
            (0, 7) => Some(TextEmbedding::quantize("another-encoder", &bag_of_words(&text))),
            _ => embed(&text),
        };
        explanations.explanations.push(dd_data::Explanation {
            origin: "generated".into(),
            author: Some("test-explainer".into()),
            scores: vec![
                NamedScore { name: "ev_correlation_score".into(), value: index as f32 / 16.0 },
                NamedScore { name: "rsquared_score".into(), value: index as f32 / 32.0 - 0.25 },
            ],
            provenance: Some(provenance(format!("Explain {text}"))),
            simulations: Vec::new(),
            embedding,
            text,
        });
    }
    explanations
}
