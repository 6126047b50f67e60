//! A fixture for the crate's unit tests: a synthetic database served in process by the whole
//! application, with a small random model that runs visitors' texts.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use dd_model::{Tokenizer, Transformer};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::{AppState, LiveLimits, LiveModel, ServerConfig};

/// The served model's name.
pub(crate) const MODEL: &str = "m";
/// Its layers and neurons per layer.
pub(crate) const N_LAYERS: u32 = 2;
pub(crate) const N_NEURONS: u32 = 16;

/// The application over a synthetic 2 × 16 model that holds every data kind, with a random model of
/// the same shape (and a 2-layer test tokenizer) for `activations` and the pages' text boxes.
pub(crate) struct LiveApp {
    _dir: tempfile::TempDir,
    app: tower_http::normalize_path::NormalizePath<axum::Router>,
    runtime: tokio::runtime::Runtime,
    /// The model's run permits, to hold one and make it busy.
    pub(crate) runs: Arc<Semaphore>,
}

impl LiveApp {
    /// Builds the database and the model, with visitors' runs bounded by `limits`.
    pub(crate) fn new(limits: LiveLimits) -> Self {
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
        let state = AppState::load(Arc::new(store), ServerConfig::standard())
            .expect("state")
            .with_live_model(MODEL, live)
            .expect("shapes match");
        let app = crate::app(Arc::new(state));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        LiveApp { _dir: dir, app, runtime, runs }
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
