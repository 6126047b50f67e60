//! The state every request shares: the served models (`ModelContext`), `GET /api`'s body, the ETag,
//! the limits, the models run on visitors' texts, the query encoder of search by meaning, and the
//! notice pages show.
//!
//! Everything derived from the catalog is built here once per state instead of on every request
//! (the original ran 26-50 SQL queries per request to rediscover it). A state never changes once
//! served: when the database grows while it is served, `reloaded` and `with_notice` build a new
//! state and the application swaps it in (`reload.rs`), so a request sees one state throughout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderValue;
use dd_data::{MLP_SOURCE, ModelDataKind, ModelRecord, Vocabulary};
use dd_store::{ModelEntry, StoreError, StoreRead};
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::explanation_search::QueryEncoder;
use crate::live::{LiveModel, LiveModelError, no_live_model};
use crate::model_context::ModelContext;
use crate::services::Service;
use crate::token_strings::TokenStrings;
use crate::wire;

/// Limits and knobs of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// A request running longer is answered with 503.
    pub request_timeout: Duration,
    /// Longest accepted request target (path and query), in bytes.
    pub max_uri_len: usize,
    /// Largest accepted request body, in bytes (the API is GET only; visitors' texts posted to `/viz/` may be larger, see `web::MAX_FORM_BYTES`).
    pub max_body_bytes: u64,
    /// Requests reading the database at once; the rest wait without holding a thread.
    pub max_concurrent_reads: usize,
    /// `max-age` of `Cache-Control` on successful responses, in seconds.
    pub cache_max_age_secs: u64,
}

impl ServerConfig {
    /// Defaults for a public deployment.
    pub fn standard() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            // Room for the longest request the OpenAPI document allows (`contract`).
            max_uri_len: crate::contract::MAX_URI_BYTES,
            max_body_bytes: 16 * 1024,
            max_concurrent_reads: 8,
            cache_max_age_secs: 3600,
        }
    }
}

/// Shared state of every request.
pub struct AppState {
    pub(crate) store: Arc<dyn StoreRead>,
    pub(crate) models: HashMap<String, Arc<ModelContext>>,
    /// `GET /api` as JSON.
    pub(crate) index_json: String,
    pub(crate) etag: HeaderValue,
    pub(crate) reads: Arc<Semaphore>,
    pub(crate) config: ServerConfig,
    /// Models the server runs on visitors' texts, by name (see [`AppState::with_live_model`]).
    pub(crate) live: HashMap<String, Arc<LiveModel>>,
    /// What the server is still adding to the database, in plain text: shown on every page and in
    /// `GET /api` (see `ReloadHandle::set_notice`).
    pub(crate) notice: Option<Arc<str>>,
    /// Embeds `explanation-search` queries (see [`AppState::with_query_encoder`]).
    pub(crate) query_encoder: Option<Arc<dyn QueryEncoder>>,
}

/// What the server can do beyond serving stored data, for a model's `available_services`.
#[derive(Debug, Clone, Copy)]
struct Abilities {
    /// It runs the model on visitors' texts (`activations`).
    runs_texts: bool,
    /// It embeds search queries (`explanation-search`).
    embeds_queries: bool,
}

impl AppState {
    /// Reads the catalog and vocabularies. Blocking: call before serving or from `spawn_blocking`.
    pub fn load(store: Arc<dyn StoreRead>, config: ServerConfig) -> Result<Self, StoreError> {
        let reads = Arc::new(Semaphore::new(config.max_concurrent_reads.max(1)));
        Self::build(store, config, reads, HashMap::new(), None, None)
    }

    /// This state over the store's catalog read again (new models, sources and kinds), with new
    /// model contexts (their search indices are built again on first use) and the same limits,
    /// read permits, live models, query encoder and notice; `None` when nothing was written since,
    /// so the built search indices are kept. Blocking, like [`load`](Self::load).
    pub(crate) fn reloaded(&self) -> Result<Option<Self>, StoreError> {
        let store = self.store.refreshed()?;
        // Every commit changes the content id, so an equal one means equal content.
        if store.catalog().content_id() == self.store.catalog().content_id() {
            return Ok(None);
        }
        let live = self.live.clone();
        let encoder = self.query_encoder.clone();
        Self::build(store, self.config.clone(), self.reads.clone(), live, encoder, self.notice.clone()).map(Some)
    }

    /// This state with `notice` in place of its notice; everything else is shared.
    pub(crate) fn with_notice(&self, notice: Option<&str>) -> Self {
        let mut state = Self {
            store: self.store.clone(),
            models: self.models.clone(),
            index_json: String::new(),
            etag: self.etag.clone(),
            // Shared across states: they read through the same connections.
            reads: self.reads.clone(),
            config: self.config.clone(),
            live: self.live.clone(),
            notice: notice.map(Arc::from),
            query_encoder: self.query_encoder.clone(),
        };
        state.etag = state.current_etag();
        state.index_json = state.index_body();
        state
    }

    fn build(
        store: Arc<dyn StoreRead>,
        config: ServerConfig,
        reads: Arc<Semaphore>,
        mut live: HashMap<String, Arc<LiveModel>>,
        query_encoder: Option<Arc<dyn QueryEncoder>>,
        notice: Option<Arc<str>>,
    ) -> Result<Self, StoreError> {
        let mut models = HashMap::new();
        for entry in store.catalog().models() {
            let vocabulary = match store.model_record(entry, ModelDataKind::Vocabulary)? {
                Some(ModelRecord::Vocabulary(vocabulary)) => vocabulary,
                _ => Vocabulary::default(),
            };
            let context = ModelContext {
                entry: entry.clone(),
                metadata_json: String::new(),
                tokens: TokenStrings::new(vocabulary),
                search: Mutex::new(None),
                token_search: Mutex::new(None),
                explanation_search: Mutex::new(None),
            };
            models.insert(entry.metadata.name.clone(), Arc::new(context));
        }
        live.retain(|name, _| models.contains_key(name));
        let etag = HeaderValue::from_static("W/\"0\"");
        let mut state =
            Self { store, models, index_json: String::new(), etag, reads, config, live, notice, query_encoder };
        state.etag = state.current_etag();
        state.describe_models();
        Ok(state)
    }

    /// One weak ETag for every URL, derived from all a response depends on: the content id (which
    /// every write changes), the version, whether visitors' texts run (pages cached before a restart
    /// with or without the model must not be served after it), the query encoder's model (search
    /// results and `available_services` depend on it), and the notice.
    fn current_etag(&self) -> HeaderValue {
        let mut etag = format!("W/\"{}-{}", self.store.catalog().content_id(), env!("CARGO_PKG_VERSION"));
        if !self.live.is_empty() {
            etag.push_str("-live");
        }
        if let Some(encoder) = &self.query_encoder {
            etag.push_str(&format!("-q{:016x}", fnv1a(encoder.model_name().as_bytes())));
        }
        if let Some(notice) = &self.notice {
            etag.push_str(&format!("-n{:016x}", fnv1a(notice.as_bytes())));
        }
        etag.push('"');
        HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("W/\"0\""))
    }

    /// Builds each model's metadata JSON and `GET /api`'s body; again when a live model or a query
    /// encoder is added, since `available_services` then lists `activations` or `explanation-search`.
    pub(crate) fn describe_models(&mut self) {
        for entry in self.store.catalog().models() {
            let metadata = metadata_object(entry, self.abilities(&entry.metadata.name));
            let metadata_json = serde_json::to_string(&metadata).unwrap_or_default();
            // Only this struct holds the contexts while it is being built, so `get_mut` succeeds.
            match self.models.get_mut(&entry.metadata.name).and_then(Arc::get_mut) {
                Some(context) => context.metadata_json = metadata_json,
                None => tracing::error!(model = %entry.metadata.name, "cannot update the model's metadata"),
            }
        }
        self.index_json = self.index_body();
    }

    /// `GET /api`'s body.
    fn index_body(&self) -> String {
        let models = self
            .store
            .catalog()
            .models()
            .iter()
            .map(|entry| metadata_object(entry, self.abilities(&entry.metadata.name)))
            .collect();
        let notice = self.notice.as_deref().map(str::to_owned);
        serde_json::to_string(&wire::ModelsResponse { models, notice }).unwrap_or_default()
    }

    /// What the server can do for the model `name` beyond its stored data.
    fn abilities(&self, name: &str) -> Abilities {
        Abilities { runs_texts: self.live.contains_key(name), embeds_queries: self.query_encoder.is_some() }
    }

    /// The notice pages show, if any.
    pub(crate) fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// The served models' names, sorted.
    pub fn model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.models.keys().cloned().collect();
        names.sort();
        names
    }

    /// Builds every model's token-search index on a background thread, so that the first visitor's
    /// search does not wait for it (about a second per 40,000 neurons), then, when the server has a
    /// query encoder, every model's index of embedded explanations. A search that arrives during
    /// a build waits for it instead of starting another.
    pub fn warm_search_indexes(self: &Arc<Self>) {
        let state = self.clone();
        let spawned = std::thread::Builder::new().name("search-index".into()).spawn(move || {
            for model in state.models.values() {
                let Some(source) = model.source(None) else { continue };
                if let Err(error) = model.token_index(state.store.as_ref(), source) {
                    tracing::warn!(model = %model.entry.metadata.name, error = %error.message(), "building the search index");
                }
            }
            // Without an encoder no query can be embedded, so the index would only take memory.
            let Some(encoder) = &state.query_encoder else { return };
            for model in state.models.values() {
                let Some(source) = model.source(None) else { continue };
                if !source.has_neuron_kind(dd_data::NeuronDataKind::Explanations) {
                    continue;
                }
                let built = model.explanation_index(state.store.as_ref(), source, Some(encoder.model_name()));
                if let Err(error) = built {
                    tracing::warn!(model = %model.entry.metadata.name, error = %error.message(), "building the explanation index");
                }
            }
        });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the search-index thread; indexes are built on first search");
        }
    }

    /// The served model named `name`.
    pub(crate) fn model(&self, name: &str) -> Option<&Arc<ModelContext>> {
        self.models.get(name)
    }

    /// Lets visitors run `live` on the pages of the served model `model_name`.
    pub fn with_live_model(mut self, model_name: &str, live: LiveModel) -> Result<Self, LiveModelError> {
        let Some(model) = self.model(model_name) else { return Err(LiveModelError::UnknownModel(model_name.into())) };
        let live = live.fitted_to(model_name, model)?;
        self.live.insert(model_name.to_owned(), Arc::new(live));
        self.etag = self.current_etag();
        self.describe_models();
        Ok(self)
    }

    /// Embeds `explanation-search` queries with `encoder` (`serve --embedder DIR`), for every
    /// served model whose explanations carry embeddings of the encoder's model. Kept by
    /// `ReloadHandle::reload`.
    pub fn with_query_encoder(mut self, encoder: Arc<dyn QueryEncoder>) -> Self {
        self.query_encoder = Some(encoder);
        self.etag = self.current_etag();
        self.describe_models();
        self
    }

    /// The query encoder; 404 `no_query_encoder` when the server has none.
    pub(crate) fn query_encoder(&self) -> Result<&Arc<dyn QueryEncoder>, ApiError> {
        self.query_encoder.as_ref().ok_or_else(|| {
            ApiError::not_found(
                "no_query_encoder",
                "this server has no sentence encoder to embed queries, so it cannot search explanations by \
                 meaning; start it with `deepdecipher serve --embedder DIR`",
            )
        })
    }

    /// The model run on visitors' texts for the served model `name`; 404 when the server does not run it.
    pub(crate) fn live_model(&self, name: &str) -> Result<Arc<LiveModel>, ApiError> {
        self.live.get(name).cloned().ok_or_else(|| no_live_model(name))
    }
}

/// 64-bit FNV-1a: a hash that stays the same across builds and platforms, for the ETag.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// The metadata object of a model as `GET /api` lists it on a server that serves only stored data
/// (no `serve --model` or `--embedder`): for readers of a database outside a server.
pub fn stored_metadata_object(entry: &ModelEntry) -> wire::MetadataObject {
    metadata_object(entry, Abilities { runs_texts: false, embeds_queries: false })
}

/// The metadata object of a model, with what the server can do for it.
fn metadata_object(entry: &ModelEntry, abilities: Abilities) -> wire::MetadataObject {
    let metadata = &entry.metadata;
    let mlp = entry.source(MLP_SOURCE);
    let available_services = match mlp {
        Some(source) => Service::ALL
            .iter()
            .filter(|s| match s {
                Service::Activations => abilities.runs_texts,
                Service::ExplanationSearch => abilities.embeds_queries && s.available(entry, source),
                _ => s.available(entry, source),
            })
            .map(|s| s.name().to_owned())
            .collect(),
        None => vec![Service::Metadata.name().to_owned()],
    };
    wire::MetadataObject {
        name: metadata.name.clone(),
        num_layers: metadata.n_layers,
        layer_size: metadata.d_mlp,
        activation_function: metadata.activation_function.clone(),
        num_total_neurons: metadata.n_neurons(),
        num_total_parameters: metadata.n_parameters,
        dataset: metadata.dataset.clone(),
        training_dataset: metadata.training_dataset.clone(),
        available_services,
        architecture: metadata.architecture.clone(),
        d_model: metadata.d_model,
        context_length: metadata.context_length,
        provenance: wire::ProvenanceObject {
            data_source: metadata.provenance.data_source.clone(),
            model_source: metadata.provenance.model_source.clone(),
            weights: metadata.provenance.weights.clone(),
            tokens_recorded: metadata.provenance.tokens_recorded,
            tool_version: metadata.provenance.tool_version.clone(),
            recorded_at: metadata.provenance.recorded_at.clone(),
        },
        sources: entry
            .sources
            .iter()
            .map(|s| wire::SourceObject {
                name: s.info.name.clone(),
                num_layers: s.info.n_layers,
                layer_size: s.info.units_per_layer,
            })
            .collect(),
    }
}
