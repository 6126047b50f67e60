//! A served model with everything the server derives from it: its catalog entry, its metadata JSON,
//! its token strings, and its search indices, each built on first use and then kept.

use std::sync::{Arc, Mutex};

use dd_data::{MLP_SOURCE, ModelDataKind, ModelRecord};
use dd_store::{ModelEntry, SourceEntry, StoreRead};

use crate::error::ApiError;
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
        // Held while building, so a search that arrives meanwhile waits for that build instead of
        // starting its own; but only for a while, since it holds a read permit as it waits.
        let started = std::time::Instant::now();
        let mut cached = loop {
            match self.token_search.try_lock() {
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
        let index = Arc::new(TokenSearchIndex::build(store, source, &self.tokens)?);
        *cached = Some(index.clone());
        Ok(index)
    }
}
