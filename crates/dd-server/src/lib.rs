//! DeepDecipher's HTTP server: the JSON API (compatible with the original's routes), its OpenAPI
//! document, the doc page and the website.
//!
//! # Layout
//! - [`wire`]: JSON wire types, the only place response shapes are defined.
//! - `services`: what each service serves at each level, and how pages are built.
//! - `api`: routes, parameter validation and the blocking-pool hand-off.
//! - `render`: hand-written JSON for example texts, the hot path.
//! - `search`: the in-memory token index.
//! - `middleware`: access log, method/size limits, timeout, ETag and caching.
//! - `compress`: `Accept-Encoding` negotiation and one-shot zstd, brotli and gzip.
//! - [`openapi`]: the OpenAPI document and `/doc`.
//! - `web`: the website (HTML pages, plots, assets) and "try your own text".
//!
//! **Invariant:** this is the only crate that knows HTTP or JSON; store types are converted by hand.

mod api;
mod compress;
mod error;
mod middleware;
pub mod openapi;
mod render;
mod search;
mod services;
mod state;
mod web;
pub mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use tower::Layer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::normalize_path::NormalizePathLayer;

pub use error::ApiError;

/// Entry points for the criterion benchmarks; not a stable API.
#[doc(hidden)]
pub mod bench {
    use dd_data::Vocabulary;
    use dd_store::codec::QuantizedExamples;

    /// Token tables built once, for benchmarks that time only the rendering.
    pub struct Tokens(crate::state::TokenStrings);

    impl Tokens {
        /// Builds the tables.
        pub fn new(vocabulary: &Vocabulary) -> Self {
            Tokens(crate::state::TokenStrings::new(vocabulary.clone()))
        }

        /// Renders a neuron's `neuroscope` page from its stored examples.
        pub fn neuroscope_page(&self, stored: &QuantizedExamples) -> Vec<u8> {
            let mut out = crate::render::JsonOut::with_capacity(64 * 1024);
            if let Some(top) = stored.top() {
                crate::render::neuroscope_page(&mut out, 0, 0, stored, top, &self.0);
            }
            out.buf
        }
    }
}

pub use services::{Level, Service};
pub use state::{AppState, ServerConfig};
pub use web::live::{LiveLimits, LiveModel, LiveModelError};

/// The whole application as a `tower` service: routes, middleware and trailing-slash normalisation.
pub fn app(state: Arc<AppState>) -> tower_http::normalize_path::NormalizePath<Router> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD])
        .max_age(std::time::Duration::from_secs(86_400));
    let router = api::routes()
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

/// Serves the application on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = axum::ServiceExt::<Request>::into_make_service(app(state));
    axum::serve(listener, service).with_graceful_shutdown(shutdown).await
}
