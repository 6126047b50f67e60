//! What can go wrong while explaining, simulating or scoring.

/// An error from explanation work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExplainError {
    /// The model failed to run.
    #[error("model: {0}")]
    Model(#[from] dd_model::ModelError),
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The store failed to read or write.
    #[error("store: {0}")]
    Store(#[from] dd_store::StoreError),
    /// The endpoint failed after its retries, or answered something unusable.
    #[error("endpoint: {0}")]
    Endpoint(String),
    /// A request that cannot be met (unknown layer or neuron, missing data, bad settings).
    #[error("{0}")]
    Invalid(String),
    /// The run was stopped (Ctrl-C); what was finished so far is kept.
    #[error("stopped")]
    Stopped,
}
