//! A served model with everything the server derives from it: its catalog entry, its metadata JSON,
//! its token strings, and its search indices (Neuron2Graph, token search, explanations by meaning),
//! each built on first use and then kept.

use std::sync::{Arc, Mutex};

use dd_data::{MLP_SOURCE, ModelDataKind, ModelRecord};
use dd_store::{ModelEntry, SourceEntry, StoreRead};

use crate::error::ApiError;
use crate::explanation_search::ExplanationIndex;
use crate::search::SearchIndex;
use crate::token_search::TokenSearchIndex;
use crate::token_strings::TokenStrings;

/// How long a search waits for the index being built before it answers 503.
const INDEX_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// A served model with everything derived from it at start-up.
pub(crate) struct ModelContext {
    /// The model's catalog entry.
    pub(crate) entry: ModelEntry,
    /// `wire::MetadataObject` as JSON.
    pub(crate) metadata_json: String,
    /// The vocabulary, escaped once for JSON and HTML.
    pub(crate) tokens: TokenStrings,
    /// Built on the first search, then kept: decoding it per request was the original's slowest path.
    /// A failed build is not kept, so a passing error does not disable search until restart.
    pub(crate) search: Mutex<Option<Arc<SearchIndex>>>,
    /// `token-search`'s index (also the website's search), built on first use like `search`.
    pub(crate) token_search: Mutex<Option<Arc<TokenSearchIndex>>>,
    /// `explanation-search`'s index (also the website's search by meaning), built on first use.
    pub(crate) explanation_search: Mutex<Option<Arc<ExplanationIndex>>>,
}

impl ModelContext {
    /// The `mlp` source, or the one named by `?source=`.
    pub(crate) fn source(&self, name: Option<&str>) -> Option<&SourceEntry> {
        self.entry.source(name.unwrap_or(MLP_SOURCE))
    }

    /// The model's Neuron2Graph search index, built on first use.
    pub(crate) fn search_index(&self, store: &dyn StoreRead) -> Result<Arc<SearchIndex>, ApiError> {
        let mut cached = self.search.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(index) = cached.as_ref() {
            return Ok(index.clone());
        }
        let index = match store.model_record(&self.entry, ModelDataKind::TokenIndex)? {
            Some(ModelRecord::TokenIndex(index)) => Arc::new(SearchIndex::new(index)),
            _ => return Err(ApiError::internal_message("loading the token index: it is missing")),
        };
        *cached = Some(index.clone());
        Ok(index)
    }

    /// The model's token-search index (of its `mlp` source), built once and kept.
    pub(crate) fn token_index(
        &self,
        store: &dyn StoreRead,
        source: &SourceEntry,
    ) -> Result<Arc<TokenSearchIndex>, ApiError> {
        built_once(&self.token_search, || Ok(TokenSearchIndex::build(store, source, &self.tokens)?))
    }

    /// The model's index of embedded explanations (of its `mlp` source), built once and kept; it
    /// holds `preferred_model`'s embeddings when any explanation has one (the query encoder's).
    pub(crate) fn explanation_index(
        &self,
        store: &dyn StoreRead,
        source: &SourceEntry,
        preferred_model: Option<&str>,
    ) -> Result<Arc<ExplanationIndex>, ApiError> {
        built_once(&self.explanation_search, || {
            let started = std::time::Instant::now();
            let index = ExplanationIndex::build(store, source, preferred_model)?;
            let counts = index.counts();
            tracing::info!(
                model = %self.entry.metadata.name,
                embedding_model = %index.embedding_model(),
                explanations = counts.explanations,
                indexed = counts.indexed,
                without_embedding = counts.without_embedding,
                other_models = ?counts.other_models,
                malformed = counts.malformed,
                megabytes = index.heap_bytes() / 1_000_000,
                seconds = started.elapsed().as_secs_f32(),
                "explanation index built"
            );
            Ok(index)
        })
    }
}

/// The index in `cell`, built by `build` on first use. The lock is held while building, so a
/// search that arrives meanwhile waits for that build instead of starting its own; but only for a
/// while (503 `index_building` after [`INDEX_WAIT`]), since it holds a read permit as it waits. A
/// failed build is not kept.
fn built_once<T>(
    cell: &Mutex<Option<Arc<T>>>,
    build: impl FnOnce() -> Result<T, ApiError>,
) -> Result<Arc<T>, ApiError> {
    let started = std::time::Instant::now();
    let mut cached = loop {
        match cell.try_lock() {
            Ok(cached) => break cached,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => break poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if started.elapsed() < INDEX_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(ApiError::with_status(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "index_building",
                    "the search index is being built; try again in a few seconds",
                ));
            }
        }
    };
    if let Some(index) = cached.as_ref() {
        return Ok(index.clone());
    }
    let index = Arc::new(build()?);
    *cached = Some(index.clone());
    Ok(index)
}
