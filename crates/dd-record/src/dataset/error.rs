//! Why a dataset could not be read or cut into contexts: the error every reader of this module
//! returns, and the helper that names the path of an IO error.

use std::path::{Path, PathBuf};

/// Why a dataset could not be read or cut into contexts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// A file or directory could not be read (or a compressed stream is corrupt).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system or decompressor said.
        source: std::io::Error,
    },
    /// A text file is not UTF-8.
    #[error("{}: not UTF-8 text (invalid byte at offset {offset})", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The byte offset of the first invalid byte.
        offset: u64,
    },
    /// A file holds nothing to read: no bytes, only blank lines, or no rows.
    #[error("{}: the file holds no documents", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// A directory holds no (non-hidden) files.
    #[error("{}: the dataset holds no documents", path.display())]
    NoDocuments {
        /// The dataset's path.
        path: PathBuf,
    },
    /// A JSONL line is not valid JSON (or not UTF-8).
    #[error("{}:{line}: not valid JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The line, counting from 1.
        line: u64,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// A JSONL line holds JSON that is not an object.
    #[error("{}:{line}: expected a JSON object", path.display())]
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// The line, counting from 1.
        line: u64,
    },
    /// A JSONL object lacks the text field.
    #[error("{}:{line}: no field `{field}`", path.display())]
    MissingField {
        /// The file.
        path: PathBuf,
        /// The line, counting from 1.
        line: u64,
        /// The field looked for.
        field: String,
    },
    /// A JSONL object's text field is not a string (`null` included).
    #[error("{}:{line}: field `{field}` is not a string", path.display())]
    NotAString {
        /// The file.
        path: PathBuf,
        /// The line, counting from 1.
        line: u64,
        /// The field.
        field: String,
    },
    /// A Parquet file is corrupt or uses a feature the reader lacks.
    #[error("{}: {source}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What the Parquet reader said.
        source: parquet::errors::ParquetError,
    },
    /// A Parquet file has no column of the text field's name.
    #[error("{}: no column `{field}` (columns: {columns})", path.display())]
    NoSuchColumn {
        /// The file.
        path: PathBuf,
        /// The column looked for.
        field: String,
        /// The file's columns, comma-separated, so the right one can be chosen.
        columns: String,
    },
    /// A Parquet column exists but does not hold one string per row.
    #[error("{}: column `{field}` holds {found}, not one string per row", path.display())]
    NotAStringColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        field: String,
        /// What it holds instead (its physical type, or "lists").
        found: String,
    },
    /// A Parquet row's text is null.
    #[error("{}: row {row}: column `{field}` is null", path.display())]
    ParquetNull {
        /// The file.
        path: PathBuf,
        /// The row, counting from 0 over the whole file.
        row: u64,
        /// The column.
        field: String,
    },
    /// A Parquet row's text is not UTF-8.
    #[error("{}: row {row}: column `{field}` is not UTF-8", path.display())]
    ParquetNotUtf8 {
        /// The file.
        path: PathBuf,
        /// The row, counting from 0 over the whole file.
        row: u64,
        /// The column.
        field: String,
    },
    /// The tokenizer failed on a document.
    #[error("document {document}: {source}")]
    Tokenize {
        /// The document's index.
        document: u64,
        /// What the tokenizer said (boxed: it is large, and this error is rare).
        source: Box<dd_model::ModelError>,
    },
    /// The context length cannot hold a text token after the BOS token.
    #[error("the context length must be at least 2 tokens, not {length}")]
    ContextTooShort {
        /// The length asked for.
        length: usize,
    },
    /// A shard that does not exist, such as 3 of 3 (shards count from 0).
    #[error("shard {index} of {count} does not exist (shards are numbered 0 to count - 1)")]
    InvalidShard {
        /// The shard asked for.
        index: u64,
        /// The number of shards.
        count: u64,
    },
}

/// An IO error on `path`.
pub(super) fn io_error(path: &Path, source: std::io::Error) -> DatasetError {
    DatasetError::Io { path: path.to_path_buf(), source }
}
