//! The export's one schema: one row per record, the same columns in jsonl.gz and Parquet
//! (`docs/export.md` is its reference).

use crate::ExportError;

/// The columns, in order, as both formats name them.
pub const COLUMNS: [&str; 8] = ["model", "source", "layer", "index", "level", "kind", "json", "blob"];

/// The Parquet message type of an export: strings are UTF-8 byte arrays, so pyarrow, pandas
/// and DuckDB read them as strings; `layer` and `index` are 64-bit, pandas' default integer.
pub const PARQUET_SCHEMA: &str = "message deepdecipher_export {
  REQUIRED BYTE_ARRAY model (STRING);
  OPTIONAL BYTE_ARRAY source (STRING);
  OPTIONAL INT64 layer;
  OPTIONAL INT64 index;
  REQUIRED BYTE_ARRAY level (STRING);
  REQUIRED BYTE_ARRAY kind (STRING);
  REQUIRED BYTE_ARRAY json (STRING);
  OPTIONAL BYTE_ARRAY blob;
}";

/// The kind name of the first row, the model's metadata.
pub const METADATA_KIND: &str = "metadata";

/// Which container an export is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Gzip-compressed JSON lines; `blob` is base64.
    JsonlGz,
    /// Parquet, zstd-compressed pages.
    Parquet,
}

/// The level a row's record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowLevel {
    /// The model's metadata or a model-level record.
    Model,
    /// A layer-level record of one source.
    Layer,
    /// A neuron-level record.
    Neuron,
}

/// One row of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    /// The model's name.
    pub model: String,
    /// The source (hook point); `None` for model-level rows.
    pub source: Option<String>,
    /// The layer; `None` for model-level rows.
    pub layer: Option<u32>,
    /// The unit's index in its layer; `None` unless neuron-level.
    pub index: Option<u32>,
    /// The level.
    pub level: RowLevel,
    /// The kind's name (`examples`), or `metadata` for the first row.
    pub kind: String,
    /// The record as readable JSON.
    pub json: String,
    /// The stored blob, exactly (`docs/format.md`); `None` for the metadata row.
    pub blob: Option<Vec<u8>>,
}

impl ExportFormat {
    /// Every format, for messages and the API's documentation.
    pub const ALL: [ExportFormat; 2] = [ExportFormat::Parquet, ExportFormat::JsonlGz];

    /// The format named `parquet` or `jsonl.gz`.
    pub fn parse(name: &str) -> Result<Self, ExportError> {
        Self::ALL
            .into_iter()
            .find(|format| format.name() == name)
            .ok_or_else(|| ExportError::UnknownFormat(name.to_owned()))
    }

    /// The format a file name's extension names (`gpt2.parquet`, `gpt2.jsonl.gz`), if any.
    pub fn from_file_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|format| name.ends_with(&format!(".{}", format.name())))
    }

    /// Its name, also the file extension.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::JsonlGz => "jsonl.gz",
            ExportFormat::Parquet => "parquet",
        }
    }

    /// The HTTP content type of a file of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::JsonlGz => "application/gzip",
            ExportFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

impl RowLevel {
    /// Its name in the `level` column.
    pub fn name(self) -> &'static str {
        match self {
            RowLevel::Model => "model",
            RowLevel::Layer => "layer",
            RowLevel::Neuron => "neuron",
        }
    }

    /// The level named so in the `level` column.
    pub fn parse(name: &str) -> Option<Self> {
        [RowLevel::Model, RowLevel::Layer, RowLevel::Neuron].into_iter().find(|level| level.name() == name)
    }
}
