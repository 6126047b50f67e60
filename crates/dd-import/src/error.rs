//! Errors of an import as a whole; one item's failure is an [`ItemFailure`](crate::ItemFailure),
//! collected and reported at the end instead.

use dd_store::StoreError;

/// Why an import could not run or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The database could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request makes no sense (unknown format, shape mismatch with an existing model...).
    #[error("{0}")]
    Invalid(String),
    /// What the dataset must have to be imported at all (its index, its metadata) could not be
    /// fetched or read.
    #[error("{0}")]
    Dataset(String),
}
