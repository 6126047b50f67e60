//! DeepDecipher's HTTP server: the JSON API (compatible with the original's routes), its OpenAPI
//! document, the doc page and the website.
//!
//! # Layout
//! Modules form layers, listed bottom-up; each uses only modules of the layers below it (and, inside
//! a layer, those listed before it).
//! 1. Shared leaves: `error` ([`ApiError`]), [`wire`] (JSON wire types, the only place response
//!    shapes are defined), `json` (`JsonOut`, the hand-written JSON buffer, and its 16-byte slots),
//!    `html` (escaping and short numbers), `params` (path and query parsing, indices), and
//!    `token_strings` (a model's tokens escaped once for JSON and HTML).
//! 2. What the server derives per model: `search` (the Neuron2Graph token index), `token_query`
//!    (`token-search`'s query language), `token_search` (the ranked token search over activating
//!    tokens and graphs), `explanation_search` (explanations by meaning: embedded explanations in
//!    one quantised array, scanned exactly; its [`QueryEncoder`] embeds queries), `graph_page` (the
//!    `neuron2graph` page), `render` (hand-written JSON
//!    for example texts, the hot path), `model_context` (a served model with its metadata JSON, token
//!    strings and search indices, built on first use and kept), `services` (what each service
//!    serves at each level, and how pages are built), `contract` (each JSON route's query
//!    parameters with their bounds and the statuses it answers, which `api` enforces and
//!    `openapi` declares).
//! 3. `live` (running a served model on a visitor's text) and [`openapi`] (the OpenAPI document and
//!    `/doc`, from the service table).
//! 4. `state`: [`AppState`], everything a request shares.
//! 5. The handlers, side by side and unaware of each other: `api` (routes, parameter validation,
//!    the blocking-pool hand-off), `export` (a model as one file, streamed from the blocking pool)
//!    and `web` (the website's pages).
//! 6. The application: `compress` (`Accept-Encoding` and one-shot zstd, brotli and gzip),
//!    `middleware` (access log, limits, timeout, ETag and caching; it answers refusals as JSON or as
//!    pages, so it sits above both handlers), `reload` ([`ReloadableApp`], the application whose
//!    state a [`ReloadHandle`] replaces while it serves a database that grows) and this file.
//!
//! **Invariant:** this is the only crate that knows HTTP or JSON; store types are converted by hand.

mod api;
mod compress;
mod contract;
mod error;
mod explanation_search;
mod export;
mod graph_page;
mod html;
mod json;
mod layer_scan;
mod live;
mod middleware;
mod model_context;
pub mod openapi;
mod params;
mod records;
mod relations;
mod reload;
mod render;
mod search;
mod services;
mod state;
#[cfg(test)]
mod testing;
mod token_query;
mod token_search;
mod token_strings;
mod web;
pub mod wire;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use tower::Layer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::normalize_path::NormalizePathLayer;

pub use error::ApiError;
pub use web::notebook;

/// Entry points for the criterion benchmarks; not a stable API.
#[doc(hidden)]
pub mod bench {
    use dd_data::Vocabulary;
    use dd_store::codec::QuantizedExamples;

    /// Token tables built once, for benchmarks that time only the rendering.
    pub struct Tokens(crate::token_strings::TokenStrings);

    impl Tokens {
        /// Builds the tables.
        pub fn new(vocabulary: &Vocabulary) -> Self {
            Tokens(crate::token_strings::TokenStrings::new(vocabulary.clone()))
        }

        /// Renders a neuron's `neuroscope` page from its stored examples.
        pub fn neuroscope_page(&self, stored: &QuantizedExamples) -> Vec<u8> {
            let mut out = crate::json::JsonOut::with_capacity(64 * 1024);
            if let Some(top) = stored.top() {
                crate::render::neuroscope_page(&mut out, 0, 0, stored, top, &self.0);
            }
            out.buf
        }
    }

    /// A neuron as the token-search index reads it.
    pub struct SearchNeuron {
        /// Its position.
        pub neuron: dd_data::NeuronIndex,
        /// Its statistics, for z.
        pub stats: Option<dd_data::NeuronStats>,
        /// Its highest-mean tokens.
        pub activating: Option<dd_data::ActivatingTokens>,
        /// Its graph.
        pub graph: Option<dd_data::NeuronGraph>,
    }

    /// The token-search index, built from neurons by the code the server runs after reading them.
    pub struct TokenSearch {
        index: crate::token_search::TokenSearchIndex,
    }

    impl TokenSearch {
        /// Builds the index over `neurons`.
        pub fn build(
            vocabulary: &Vocabulary,
            units_per_layer: u32,
            neurons: impl Iterator<Item = SearchNeuron>,
        ) -> Self {
            let strings = crate::token_strings::TokenStrings::new(vocabulary.clone());
            let neurons = neurons.map(|n| {
                Ok::<_, std::convert::Infallible>(crate::token_search::NeuronTokens {
                    neuron: n.neuron,
                    stats: n.stats,
                    activating: n.activating,
                    graph: n.graph,
                    explanation: None,
                })
            });
            match crate::token_search::TokenSearchIndex::from_neurons(&strings, units_per_layer, neurons) {
                Ok(index) => TokenSearch { index },
                Err(never) => match never {},
            }
        }

        /// The `token-search` page's JSON for an insensitive query, `limit` neurons from the first.
        pub fn page_json(&self, query: &str, limit: usize) -> String {
            let page = self.index.page(query, crate::token_query::MatchMode::Insensitive, 0, limit);
            serde_json::to_string(&page).unwrap_or_default()
        }
    }
    /// The `explanation-search` index, built by the code the server runs after reading explanations.
    pub struct ExplanationSearch {
        index: crate::explanation_search::ExplanationIndex,
    }

    impl ExplanationSearch {
        /// Builds the index over neurons' explanations, given in layer order.
        pub fn build(neurons: impl Iterator<Item = (dd_data::NeuronIndex, dd_data::Explanations)>) -> Self {
            let neurons = neurons.map(Ok::<_, std::convert::Infallible>);
            match crate::explanation_search::ExplanationIndex::from_explanations(neurons, None) {
                Ok(index) => ExplanationSearch { index },
                Err(never) => match never {},
            }
        }

        /// Builds the index of `model`'s `mlp` explanations from a database file, as a server does
        /// on the first search.
        pub fn from_database(path: &std::path::Path, model: &str) -> Result<Self, dd_store::StoreError> {
            use dd_store::StoreRead;
            let store = dd_store::SqliteStore::open(path, &dd_store::ReadConfig::serving())?;
            let entry = store
                .catalog()
                .model(model)
                .ok_or_else(|| dd_store::StoreError::UnknownModel { name: model.into() })?;
            let source = entry
                .source(dd_data::MLP_SOURCE)
                .ok_or_else(|| dd_store::StoreError::UnknownModel { name: model.into() })?;
            let index = crate::explanation_search::ExplanationIndex::build(&store, source, None)?;
            Ok(ExplanationSearch { index })
        }

        /// Explanations indexed.
        pub fn len(&self) -> usize {
            self.index.len()
        }

        /// Whether none is.
        pub fn is_empty(&self) -> bool {
            self.index.is_empty()
        }

        /// Bytes the index holds on the heap.
        pub fn heap_bytes(&self) -> usize {
            self.index.heap_bytes()
        }

        /// The same by part: vectors, per-row fields, texts, scores, names.
        pub fn heap_parts(&self) -> [(&'static str, usize); 5] {
            self.index.heap_parts()
        }

        /// The rows passing the filters and the best `limit` as (layer, neuron, similarity), for a
        /// unit-length `query`; `min_score` filters on `ev_correlation_score`.
        pub fn search(&self, query: &[f32], limit: usize, min_score: Option<f32>) -> (usize, Vec<(u32, u32, f32)>) {
            let filters = crate::explanation_search::Filters { min_score, ..Default::default() };
            let results = self.index.search(query, &filters, 0, limit);
            let hits = results
                .hits
                .iter()
                .filter_map(|hit| self.index.entry(hit.row).map(|e| (e.neuron.layer, e.neuron.index, hit.similarity)))
                .collect();
            (results.total, hits)
        }

        /// Every stored vector read once over rayon in the scan's chunks, with no dot product: the
        /// floor under a search's time. The value is only there to be used.
        pub fn read_all(&self) -> u64 {
            self.index.read_all()
        }

        /// The `explanation-search` page's JSON for a unit-length `query`, `limit` explanations from the first.
        pub fn page_json(&self, query: &[f32], limit: usize) -> String {
            let page = self.index.page("", query, &Default::default(), 0, limit);
            serde_json::to_string(&page).unwrap_or_default()
        }
    }
}

pub use explanation_search::QueryEncoder;
pub use live::{LiveLimits, LiveModel, LiveModelError};
pub use reload::{ReloadHandle, ReloadableApp};
pub use services::{Level, Service};
pub use state::{AppState, ServerConfig, stored_metadata_object};

/// The whole application as a `tower` service: routes, middleware and trailing-slash normalisation.
pub fn app(state: Arc<AppState>) -> tower_http::normalize_path::NormalizePath<Router> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD])
        .max_age(std::time::Duration::from_secs(86_400));
    let router = api::routes()
        .merge(export::routes())
        .merge(web::routes())
        .fallback(middleware::fallback)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::guard))
        .layer(cors)
        .layer(axum::middleware::from_fn(compress::compress))
        .layer(axum::middleware::from_fn(middleware::access_log))
        .with_state(state);
    // Outside the router, so `/api/m/neuroscope/0/1/` is rewritten before routing (as the original did).
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

/// The application over a database that a writer adds to while it is served: the same routes as
/// [`app`], and a handle that swaps in a state built from the store's catalog read again, or with a
/// notice for visitors. The store must be opened to see writes
/// (`dd_store::ReadConfig::serving_while_written`).
pub fn reloadable_app(state: Arc<AppState>) -> (ReloadableApp, ReloadHandle) {
    ReloadableApp::new(state, app)
}

/// Serves `app` (what [`app`] or [`reloadable_app`] returns) on `listener` until `shutdown`
/// completes, then finishes in-flight requests.
pub async fn serve<A>(
    listener: tokio::net::TcpListener,
    app: A,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    A: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    A::Future: Send,
{
    let service = axum::ServiceExt::<Request>::into_make_service(app);
    axum::serve(listener, service).with_graceful_shutdown(shutdown).await
}
