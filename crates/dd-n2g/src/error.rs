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
    Store(dd_store::StoreError),
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

impl From<dd_store::StoreError> for N2gError {
    /// A request the store cannot meet is the user's to fix, as this crate's own [`N2gError::Invalid`].
    fn from(error: dd_store::StoreError) -> Self {
        match error {
            dd_store::StoreError::Invalid(message) => Self::Invalid(message),
            error => Self::Store(error),
        }
    }
}
