//! Text datasets for the recorder: documents read from text, JSONL (plain, gzip, zstd) and Parquet
//! files, or from a directory of them, then cut into model contexts.
//!
//! # Layout
//!
//! - This file: the public types, [`DatasetError`] and [`open_documents`], which yields
//!   [`Document`]s in dataset order with sequential indices.
//! - `files.rs`: finding a dataset's files (sorted, hidden ones skipped) and reading text and JSONL.
//! - `parquet_file.rs`: reading one string column of a Parquet file a row group at a time.
//! - `contexts.rs`: [`split_into_contexts`], which tokenizes documents in parallel (in order) and
//!   cuts them into [`Context`]s, with a token budget, sharding and resumption.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use dd_record::dataset::{self, ContextConfig, DatasetConfig, Shard};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tokenizer = Arc::new(dd_model::Tokenizer::from_tokenizer_json("tokenizer.json".as_ref())?);
//! let documents = dataset::open_documents(&DatasetConfig {
//!     path: "corpus/".into(),
//!     format: None,
//!     text_field: dataset::DEFAULT_TEXT_FIELD.to_owned(),
//! })?;
//! let config = ContextConfig {
//!     length: dataset::DEFAULT_CONTEXT_LENGTH,
//!     token_budget: Some(1_000_000),
//!     shard: Shard::WHOLE,
//!     start_context: 0,
//! };
//! for context in dataset::split_into_contexts(documents, tokenizer, &config)? {
//!     let context = context?;
//!     println!("{} tokens from document {}", context.tokens.len(), context.document);
//! }
//! # Ok(())
//! # }
//! ```

mod contexts;
mod files;
mod parquet_file;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use contexts::{Context, ContextConfig, Contexts, DEFAULT_CONTEXT_LENGTH, Shard, split_into_contexts};

/// The JSON field or Parquet column read when the caller names none (the Hugging Face convention).
pub const DEFAULT_TEXT_FIELD: &str = "text";

/// How a dataset file is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetFormat {
    /// The whole file is one document, in UTF-8.
    Text,
    /// One JSON object per line; the text is one of its string fields.
    Jsonl,
    /// JSONL compressed with gzip.
    JsonlGzip,
    /// JSONL compressed with zstd.
    JsonlZstd,
    /// Apache Parquet; the text is one of its string columns.
    Parquet,
}

/// Where a dataset is and how to read it.
#[derive(Clone, Debug)]
pub struct DatasetConfig {
    /// A file, or a directory read recursively in path order.
    pub path: PathBuf,
    /// Read every file in this format whatever its name; `None` chooses by name
    /// ([`DatasetFormat::from_path`]).
    pub format: Option<DatasetFormat>,
    /// The JSON field or Parquet column that holds the text, usually [`DEFAULT_TEXT_FIELD`]. A
    /// Parquet column nested in a struct is named with dots (`meta.text`).
    pub text_field: String,
}

/// One document of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// Its position in the dataset, counting from 0 over all files in order.
    pub index: u64,
    /// Its text.
    pub text: String,
}

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

/// Counters a caller can read from any thread while another one reads the dataset, to draw a
/// progress bar. Cloning shares the counters. Every count is global: a shard's run counts the
/// contexts and tokens of all shards, since it cuts them all to know its own.
#[derive(Clone, Debug, Default)]
pub struct DatasetProgress {
    counters: Arc<ProgressCounters>,
}

/// Yields a dataset's documents in order, each with its index. After an error it yields nothing
/// more: a recorder cannot skip a document without changing every index after it.
pub struct Documents {
    source: DocumentSource,
    next_index: u64,
    progress: DatasetProgress,
    finished: bool,
}

/// Opens a dataset: lists its files (sorted by path, hidden ones skipped) and checks that there is
/// at least one. Files are opened one at a time as iteration reaches them.
pub fn open_documents(config: &DatasetConfig) -> Result<Documents, DatasetError> {
    let (data_files, total_bytes) = files::list_data_files(&config.path, config.format)?;
    let progress = DatasetProgress::default();
    progress.counters.total_bytes.store(total_bytes, Ordering::Relaxed);
    let queue = files::FileQueue::new(data_files, &config.text_field);
    Ok(Documents { source: DocumentSource::Files(queue), next_index: 0, progress, finished: false })
}

impl DatasetFormat {
    /// The format a file's name implies: `.jsonl`, `.jsonl.gz`, `.jsonl.zst` and `.parquet`
    /// (in any case), and text for any other name.
    pub fn from_path(path: &Path) -> DatasetFormat {
        let name = path.file_name().map(|name| name.to_string_lossy().to_lowercase()).unwrap_or_default();
        if name.ends_with(".jsonl") {
            DatasetFormat::Jsonl
        } else if name.ends_with(".jsonl.gz") {
            DatasetFormat::JsonlGzip
        } else if name.ends_with(".jsonl.zst") {
            DatasetFormat::JsonlZstd
        } else if name.ends_with(".parquet") {
            DatasetFormat::Parquet
        } else {
            DatasetFormat::Text
        }
    }
}

impl Documents {
    /// Documents held in memory, for callers (and tests) that already have their texts. The
    /// progress's byte counts are the texts' lengths.
    pub fn from_texts(texts: Vec<String>) -> Documents {
        let progress = DatasetProgress::default();
        let total_bytes: usize = texts.iter().map(String::len).sum();
        progress.counters.total_bytes.store(total_bytes as u64, Ordering::Relaxed);
        Documents { source: DocumentSource::Memory(texts.into()), next_index: 0, progress, finished: false }
    }

    /// A handle on this dataset's progress counters.
    pub fn progress(&self) -> DatasetProgress {
        self.progress.clone()
    }

    fn next_text(&mut self) -> Result<Option<String>, DatasetError> {
        match &mut self.source {
            DocumentSource::Files(queue) => queue.next_text(&self.progress),
            DocumentSource::Memory(texts) => {
                let text = texts.pop_front();
                if let Some(text) = &text {
                    self.progress.add_bytes_read(text.len() as u64);
                }
                Ok(text)
            }
        }
    }
}

impl Iterator for Documents {
    type Item = Result<Document, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let text = match self.next_text() {
            Ok(Some(text)) => text,
            Ok(None) => {
                self.finished = true;
                return None;
            }
            Err(err) => {
                self.finished = true;
                return Some(Err(err));
            }
        };
        let index = self.next_index;
        self.next_index += 1;
        self.progress.counters.documents.fetch_add(1, Ordering::Relaxed);
        Some(Ok(Document { index, text }))
    }
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Documents")
            .field("next_index", &self.next_index)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

impl DatasetProgress {
    /// Bytes read from the dataset's files so far (compressed bytes for compressed files).
    pub fn bytes_read(&self) -> u64 {
        self.counters.bytes_read.load(Ordering::Relaxed)
    }

    /// The size of all the dataset's files, measured when it was opened.
    pub fn total_bytes(&self) -> u64 {
        self.counters.total_bytes.load(Ordering::Relaxed)
    }

    /// Documents read so far.
    pub fn documents(&self) -> u64 {
        self.counters.documents.load(Ordering::Relaxed)
    }

    /// Contexts cut so far, over all shards and including those skipped when resuming.
    pub fn contexts(&self) -> u64 {
        self.counters.contexts.load(Ordering::Relaxed)
    }

    /// Tokens in the contexts cut so far (BOS tokens included), the number a token budget is
    /// compared with.
    pub fn tokens(&self) -> u64 {
        self.counters.tokens.load(Ordering::Relaxed)
    }

    fn add_bytes_read(&self, bytes: u64) {
        self.counters.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    fn add_context(&self, tokens: u64) {
        self.counters.contexts.fetch_add(1, Ordering::Relaxed);
        self.counters.tokens.fetch_add(tokens, Ordering::Relaxed);
    }
}

/// Relaxed atomics: the counters are only displayed, never used to order other memory.
#[derive(Debug, Default)]
struct ProgressCounters {
    bytes_read: AtomicU64,
    total_bytes: AtomicU64,
    documents: AtomicU64,
    contexts: AtomicU64,
    tokens: AtomicU64,
}

enum DocumentSource {
    Files(files::FileQueue),
    Memory(VecDeque<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_file_names() {
        let cases = [
            ("a/b.jsonl", DatasetFormat::Jsonl),
            ("b.JSONL.GZ", DatasetFormat::JsonlGzip),
            ("c.jsonl.zst", DatasetFormat::JsonlZstd),
            ("d.parquet", DatasetFormat::Parquet),
            ("e.txt", DatasetFormat::Text),
            ("f.json", DatasetFormat::Text),
            ("README", DatasetFormat::Text),
        ];
        for (path, format) in cases {
            assert_eq!(DatasetFormat::from_path(Path::new(path)), format, "{path}");
        }
    }

    #[test]
    fn texts_in_memory_get_sequential_indices() {
        let documents: Vec<Document> =
            Documents::from_texts(vec!["a".into(), "b".into()]).collect::<Result<_, _>>().expect("in memory");
        assert_eq!(documents, [Document { index: 0, text: "a".into() }, Document { index: 1, text: "b".into() }]);
    }
}
