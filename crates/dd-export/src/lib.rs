//! Bulk export of one model of a DeepDecipher store, and reading such an export back.
//!
//! One schema (`docs/export.md`, [`schema`]) in two containers: gzip-compressed JSON lines and
//! Parquet. Both are written as the store is read, so memory stays bounded by one Parquet row
//! group whatever the model's size.
//!
//! # Layout
//! - [`schema`]: the row type, its columns and the two formats.
//! - [`render`]: the readable `json` column of every record kind, and the metadata row.
//! - [`write`]: [`export_model`], walking a model's records through a store's read interface.
//! - [`read`]: rows back from a jsonl.gz or Parquet file or byte buffer.

pub mod error;
pub mod read;
pub mod render;
pub mod schema;
pub mod write;

pub use bytes::Bytes;
pub use error::ExportError;
pub use read::{read_bytes, read_file, read_file_rows};
pub use render::{ExportedModel, parse_metadata};
pub use schema::{ExportFormat, ExportRow, RowLevel};
pub use write::{ExportOptions, ExportSummary, export_model, parse_kinds};
