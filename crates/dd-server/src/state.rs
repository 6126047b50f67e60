//! What the server computes once at start-up: per-model metadata JSON, escaped token strings, and limits.
//!
//! A served database is immutable, so everything derived from the catalog is
//! built here once instead of on every request (the original ran 26-50 SQL
//! queries per request to rediscover it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderValue;
use dd_data::{MLP_SOURCE, ModelDataKind, ModelRecord, Vocabulary};
use dd_store::{ModelEntry, SourceEntry, StoreError, StoreRead};
use tokio::sync::Semaphore;

use crate::render::{JsonOut, Slot};
use crate::search::{ActivatingTokenIndex, SearchIndex};
use crate::services::Service;
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
            max_uri_len: 2048,
            max_body_bytes: 16 * 1024,
            max_concurrent_reads: 8,
            cache_max_age_secs: 3600,
        }
    }
}

/// Token display strings of a model, plain and pre-escaped as JSON.
///
/// A page looks up 2,560 random tokens, so a lookup must cost one cache line:
/// most tokens fit a 16-byte [`Slot`] holding `,"token"` ready to append.
/// Longer ones sit in one shared buffer; their slot holds their index.
pub(crate) struct TokenStrings {
    plain: Vec<String>,
    /// Each token as it reads in running text, HTML-escaped (see `web::running_text_html`).
    html: Vec<Box<str>>,
    slots: Vec<Slot>,
    long_text: String,
    /// `long_text[long_offsets[k]..long_offsets[k + 1]]` is the `k`th long token, escaped.
    long_offsets: Vec<u32>,
}

impl TokenStrings {
    pub(crate) fn new(vocabulary: Vocabulary) -> Self {
        let mut slots = Vec::with_capacity(vocabulary.tokens.len());
        let mut long_text = String::new();
        let mut long_offsets = vec![0u32];
        for token in &vocabulary.tokens {
            let escaped = serde_json::to_string(token).unwrap_or_else(|_| "\"\"".into());
            let slot = Slot::item(escaped.as_bytes()).unwrap_or_else(|| {
                let slot = Slot::long((long_offsets.len() - 1) as u32);
                long_text.push_str(&escaped);
                long_offsets.push(u32::try_from(long_text.len()).unwrap_or(u32::MAX));
                slot
            });
            slots.push(slot);
        }
        let html =
            vocabulary.tokens.iter().map(|token| crate::web::running_text_html(token).into_boxed_str()).collect();
        Self { plain: vocabulary.tokens, html, slots, long_text, long_offsets }
    }

    /// The number of tokens in the vocabulary.
    pub(crate) fn len(&self) -> usize {
        self.plain.len()
    }

    /// The token as it reads in running text, HTML-escaped; unknown ids show as `<?>`.
    pub(crate) fn html_text(&self, token: u32) -> &str {
        self.html.get(token as usize).map_or("&lt;?&gt;", |text| text)
    }

    /// The display string of a token; unknown ids show as `<id>`.
    pub(crate) fn display(&self, token: u32) -> String {
        match self.plain.get(token as usize) {
            Some(text) => text.clone(),
            None => format!("<{token}>"),
        }
    }

    /// The token's slot; unknown ids get a long slot that points past the table.
    ///
    /// Returned by reference: copying an `Option<Slot>` by value compiled to overlapping partial
    /// stores and loads that stalled store forwarding on every token.
    pub(crate) fn slot(&self, token: u32) -> &Slot {
        static UNKNOWN: Slot = Slot::long(u32::MAX);
        self.slots.get(token as usize).unwrap_or(&UNKNOWN)
    }

    /// Appends `,` and a token whose slot is long.
    pub(crate) fn write_long(&self, token: u32, slot: &Slot, out: &mut JsonOut) {
        let long_index = slot.long_index() as usize;
        out.raw(",");
        match (self.long_offsets.get(long_index), self.long_offsets.get(long_index + 1)) {
            (Some(&start), Some(&end)) => out.raw(&self.long_text[start as usize..end as usize]),
            _ => out.string(&format!("<{token}>")),
        }
    }
}

/// A served model with everything derived from it at start-up.
pub(crate) struct ModelContext {
    pub(crate) entry: ModelEntry,
    /// `wire::MetadataObject` as JSON.
    pub(crate) metadata_json: String,
    pub(crate) tokens: TokenStrings,
    /// Built on the first search, then kept: decoding it per request was the original's slowest path.
    /// A failed build is not kept, so a passing error does not disable search until restart.
    pub(crate) search: Mutex<Option<Arc<SearchIndex>>>,
    /// The website's token search, built on first use like `search`.
    pub(crate) activating_search: Mutex<Option<Arc<ActivatingTokenIndex>>>,
}

impl ModelContext {
    /// The `mlp` source, or the one named by `?source=`.
    pub(crate) fn source(&self, name: Option<&str>) -> Option<&SourceEntry> {
        self.entry.source(name.unwrap_or(MLP_SOURCE))
    }

    /// Services with data for this model's source.
    pub(crate) fn services(&self, source: &SourceEntry) -> Vec<Service> {
        Service::ALL.iter().copied().filter(|s| s.available(&self.entry, source)).collect()
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
    pub(crate) live: HashMap<String, Arc<crate::web::live::LiveModel>>,
}

impl AppState {
    /// Reads the catalog and vocabularies. Blocking: call before serving or from `spawn_blocking`.
    pub fn load(store: Arc<dyn StoreRead>, config: ServerConfig) -> Result<Self, StoreError> {
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
                activating_search: Mutex::new(None),
            };
            models.insert(entry.metadata.name.clone(), Arc::new(context));
        }
        let etag = format!("W/\"{}-{}\"", store.catalog().content_id(), env!("CARGO_PKG_VERSION"));
        let etag = HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("W/\"0\""));
        let reads = Arc::new(Semaphore::new(config.max_concurrent_reads.max(1)));
        let mut state = Self { store, models, index_json: String::new(), etag, reads, config, live: HashMap::new() };
        state.describe_models();
        Ok(state)
    }

    /// Builds each model's metadata JSON and `GET /api`'s body; again when a live model is added,
    /// since `available_services` then lists `activations`.
    pub(crate) fn describe_models(&mut self) {
        let mut metadata_objects = Vec::new();
        for entry in self.store.catalog().models() {
            let metadata = metadata_object(entry, self.live.contains_key(&entry.metadata.name));
            let metadata_json = serde_json::to_string(&metadata).unwrap_or_default();
            metadata_objects.push(metadata);
            // Only this struct holds the contexts while it is being built, so `get_mut` succeeds.
            match self.models.get_mut(&entry.metadata.name).and_then(Arc::get_mut) {
                Some(context) => context.metadata_json = metadata_json,
                None => tracing::error!(model = %entry.metadata.name, "cannot update the model's metadata"),
            }
        }
        self.index_json = serde_json::to_string(&wire::ModelsResponse { models: metadata_objects }).unwrap_or_default();
    }

    /// The served models' names, sorted.
    pub fn model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.models.keys().cloned().collect();
        names.sort();
        names
    }

    /// Builds every model's token-search index on a background thread, so that the first visitor's
    /// search does not wait for it (about a second per 40,000 neurons). A search that arrives
    /// during the build waits for it instead of starting another.
    pub fn warm_search_indexes(self: &Arc<Self>) {
        let state = self.clone();
        let spawned = std::thread::Builder::new().name("search-index".into()).spawn(move || {
            for model in state.models.values() {
                let Some(source) = model.source(None) else { continue };
                if let Err(error) = crate::search::activating_index(state.store.as_ref(), model, source) {
                    tracing::warn!(model = %model.entry.metadata.name, error = %error.message(), "building the search index");
                }
            }
        });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the search-index thread; indexes are built on first search");
        }
    }

    pub(crate) fn model(&self, name: &str) -> Option<&Arc<ModelContext>> {
        self.models.get(name)
    }
}

/// The metadata object of a model; `live` when the server runs it on visitors' text.
fn metadata_object(entry: &ModelEntry, live: bool) -> wire::MetadataObject {
    let metadata = &entry.metadata;
    let mlp = entry.source(MLP_SOURCE);
    let available_services = match mlp {
        Some(source) => Service::ALL
            .iter()
            .filter(|s| if **s == Service::Activations { live } else { s.available(entry, source) })
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
        available_services,
        architecture: metadata.architecture.clone(),
        d_model: metadata.d_model,
        context_length: metadata.context_length,
        provenance: wire::ProvenanceObject {
            data_source: metadata.provenance.data_source.clone(),
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
