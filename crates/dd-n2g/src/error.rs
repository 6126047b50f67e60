//! What can go wrong while building, importing or indexing graphs.

use std::path::PathBuf;

/// An error from Neuron2Graph work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum N2gError {
    /// The model failed to run.
    #[error("model: {0}")]
    Model(#[from] dd_model::ModelError),
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The store failed to read or write.
    #[error("store: {0}")]
    Store(#[from] dd_store::StoreError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A file in one of the original's formats is malformed.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line where known.
        message: String,
    },
    /// A request that cannot be met (unknown layer or neuron, missing data).
    #[error("{0}")]
    Invalid(String),
    /// The run was stopped (Ctrl-C); what was built so far is kept.
    #[error("stopped")]
    Stopped,
}
