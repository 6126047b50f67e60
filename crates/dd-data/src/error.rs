//! Errors raised when a value breaks an invariant of its type.

/// A value that cannot be stored because it is inconsistent.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum DataError {
    /// A name used in URLs and file names has characters outside `[A-Za-z0-9._-]`.
    #[error("invalid name {name:?}: use 1-100 characters from A-Z, a-z, 0-9, '.', '_' and '-'")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// An example's token and activation lists differ in length.
    #[error("example {example_idx}: {n_tokens} tokens but {n_activations} activations")]
    ExampleLengthMismatch {
        /// Position of the example in its group.
        example_idx: usize,
        /// Number of tokens.
        n_tokens: usize,
        /// Number of activations.
        n_activations: usize,
    },
    /// An index points past the end of the list it indexes.
    #[error("{what}: index {index} out of range for length {len}")]
    IndexOutOfRange {
        /// Which field holds the index.
        what: &'static str,
        /// The index.
        index: u64,
        /// The length of the indexed list.
        len: u64,
    },
    /// A float that must be finite is NaN or infinite.
    #[error("{what} is not finite")]
    NotFinite {
        /// Which field is not finite.
        what: &'static str,
    },
    /// A histogram does not have the expected shape.
    #[error("histogram has {n_bins} bins; expected at least 1 and lower < upper")]
    BadHistogram {
        /// Number of bins found.
        n_bins: usize,
    },
    /// Values that contradict each other.
    #[error("{what}: {why}")]
    Invalid {
        /// Which value.
        what: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
}
