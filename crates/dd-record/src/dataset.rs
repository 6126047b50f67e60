//! Text datasets for the recorder: documents read from text, JSONL (plain, gzip, zstd) and Parquet
//! files, or from a directory of them, then cut into model contexts.
//!
//! # Layout
//!
//! In layers, each module using only those listed before it; this file only re-exports them.
//!
//! - `error.rs`: [`DatasetError`]; `progress.rs`: the [`DatasetProgress`] counters.
//! - `parquet_file.rs`: reading one string column of a Parquet file a row group at a time.
//! - `files.rs`: [`DatasetFormat`], finding a dataset's files (sorted, hidden ones skipped) and
//!   reading text and JSONL.
//! - `documents.rs`: [`DatasetConfig`] and [`open_documents`], which yields [`Document`]s in
//!   dataset order with sequential indices.
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
mod documents;
mod error;
mod files;
mod parquet_file;
mod progress;

pub use contexts::{Context, ContextConfig, Contexts, DEFAULT_CONTEXT_LENGTH, Shard, split_into_contexts};
pub use documents::{DatasetConfig, Document, Documents, open_documents};
pub use error::DatasetError;
pub use files::DatasetFormat;
pub use progress::DatasetProgress;

/// The JSON field or Parquet column read when the caller names none (the Hugging Face convention).
pub const DEFAULT_TEXT_FIELD: &str = "text";
