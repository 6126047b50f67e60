//! What can go wrong while relating neurons.

/// An error from relating neurons.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelateError {
    /// The model failed to run.
    #[error("model: {0}")]
    Model(#[from] dd_model::ModelError),
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The store failed to read or write.
    #[error("store: {0}")]
    Store(dd_store::StoreError),
    /// A request that cannot be met (missing data, mismatched models).
    #[error("{0}")]
    Invalid(String),
    /// The run was stopped (Ctrl-C) before it wrote anything.
    #[error("stopped")]
    Stopped,
}

impl From<dd_store::StoreError> for RelateError {
    /// A request the store cannot meet is the user's to fix, as this crate's own [`RelateError::Invalid`].
    fn from(error: dd_store::StoreError) -> Self {
        match error {
            dd_store::StoreError::Invalid(message) => Self::Invalid(message),
            error => Self::Store(error),
        }
    }
}
