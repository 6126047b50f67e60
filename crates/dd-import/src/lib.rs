//! Importers of published neuron datasets into a DeepDecipher database.
//!
//! Layers, bottom up: `fetch` (a dataset's files from a directory or an HTTP(S) base URL, with
//! retries, a rate limit and bounded concurrency) and `tokens` (token strings to ids); then `job`
//! (the resumable, batched driver every format runs under, through `StoreWrite`); then one module
//! per format, each an [`Importer`]. `rank` writes the rankings and summaries a recording would
//! for a source whose statistics were imported; the driver calls it at the end of a run.

pub mod error;
pub mod fetch;
pub mod formats;
pub mod job;
pub mod rank;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;

pub use error::ImportError;
pub use fetch::{DatasetLocation, FetchConfig, FetchError, FetchTotals, Fetcher};
pub use job::{
    ImportEvent, ImportJob, ImportPlan, ImportRequest, ImportSummary, ImportedUnit, Importer, ItemFailure, ItemOutcome,
    WorkItem, run_import,
};
pub use tokens::TokenMap;
