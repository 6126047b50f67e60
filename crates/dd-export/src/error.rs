//! Why an export could not be written or read back.

/// An export that failed, or a file that is not a readable export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The store has no model of this name.
    #[error("no model named {0:?} in the database")]
    UnknownModel(String),
    /// `--kinds` names a kind that no level has.
    #[error("unknown kind {kind:?}; known kinds: {known}")]
    UnknownKind {
        /// The name given.
        kind: String,
        /// Every kind name, comma-separated.
        known: String,
    },
    /// The format name is neither `jsonl.gz` nor `parquet`.
    #[error("unknown export format {0:?}; use parquet or jsonl.gz")]
    UnknownFormat(String),
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] dd_store::StoreError),
    /// A stored blob does not decode.
    #[error("{what}: {source}")]
    Codec {
        /// Which record.
        what: String,
        /// Why.
        source: dd_store::CodecError,
    },
    /// Writing or reading the bytes failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The Parquet writer or reader failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A file's content is not an export of this schema.
    #[error("not a DeepDecipher export: row {row}: {reason}")]
    Malformed {
        /// Row number, from 1, in file order.
        row: u64,
        /// What is wrong.
        reason: String,
    },
}
