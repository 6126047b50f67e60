//! Writing one model of a store as an export: the metadata row, then model-level records, then
//! per source and layer the layer-level records and the neurons' records, each read, rendered and
//! written before the next is read.

use std::io::Write;

use base64::Engine;
use dd_data::{LayerDataKind, ModelDataKind, ModelRecord, NeuronDataKind, Vocabulary};
use dd_store::codec::{decode_layer, decode_model, decode_neuron};
use dd_store::{ModelEntry, StoreRead};
use flate2::write::GzEncoder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use crate::render::{layer_json, metadata_json, model_json, neuron_json};
use crate::schema::{METADATA_KIND, PARQUET_SCHEMA};
use crate::{ExportError, ExportFormat, ExportRow, RowLevel};

/// Rows per Parquet row group at most: big enough for good compression, small enough that a row
/// group of examples (tens of kB of JSON each) stays in tens of MB.
const ROW_GROUP_ROWS: usize = 2048;

/// Bytes of `json` and `blob` buffered before a row group is written, whatever its row count.
const ROW_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// What to export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// The container.
    pub format: ExportFormat,
    /// Only records of kinds with these names (at any level), when given; the metadata row is
    /// always written.
    pub kinds: Option<Vec<String>>,
    /// Only these layers' layer- and neuron-level records, when given.
    pub layers: Option<Vec<u32>>,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    /// Rows written, the metadata row included.
    pub rows: u64,
    /// Bytes of stored blobs written.
    pub blob_bytes: u64,
}

impl ExportOptions {
    /// Every record of the model, in `format`.
    pub fn everything(format: ExportFormat) -> Self {
        Self { format, kinds: None, layers: None }
    }

    fn wants_kind(&self, name: &str) -> bool {
        self.kinds.as_ref().is_none_or(|kinds| kinds.iter().any(|kind| kind == name))
    }

    fn wants_layer(&self, layer: u32) -> bool {
        self.layers.as_ref().is_none_or(|layers| layers.contains(&layer))
    }
}

/// Kind names from a comma-separated list (`examples,stats`), each checked against every level's
/// kinds; duplicates and blanks are dropped.
pub fn parse_kinds(text: &str) -> Result<Vec<String>, ExportError> {
    let known: Vec<&str> = NeuronDataKind::ALL
        .iter()
        .map(|kind| kind.name())
        .chain(LayerDataKind::ALL.iter().map(|kind| kind.name()))
        .chain(ModelDataKind::ALL.iter().map(|kind| kind.name()))
        .collect();
    let mut kinds: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        if !known.contains(&name) {
            let mut listed = known.clone();
            listed.sort_unstable();
            listed.dedup();
            return Err(ExportError::UnknownKind { kind: name.to_owned(), known: listed.join(", ") });
        }
        if !kinds.iter().any(|kind| kind == name) {
            kinds.push(name.to_owned());
        }
    }
    Ok(kinds)
}

/// Writes model `model_name` of `store` to `out` and returns `out` flushed. `progress(done,
/// total)` counts the records looked up (a unit without a kind is looked up and skipped).
pub fn export_model<W: Write + Send>(
    store: &dyn StoreRead,
    model_name: &str,
    options: &ExportOptions,
    out: W,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(ExportSummary, W), ExportError> {
    let model = store.catalog().model(model_name).ok_or_else(|| ExportError::UnknownModel(model_name.to_owned()))?;
    match options.format {
        ExportFormat::JsonlGz => {
            let mut sink = JsonlSink { out: GzEncoder::new(out, flate2::Compression::new(6)) };
            let summary = walk(store, model, options, &mut sink, progress)?;
            Ok((summary, sink.out.finish()?))
        }
        ExportFormat::Parquet => {
            let schema = std::sync::Arc::new(parse_message_type(PARQUET_SCHEMA)?);
            let properties = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
                .set_created_by(concat!("deepdecipher ", env!("CARGO_PKG_VERSION")).to_owned())
                .build();
            let writer = SerializedFileWriter::new(out, schema, std::sync::Arc::new(properties))?;
            let mut sink = ParquetSink { writer, buffer: Columns::default() };
            let summary = walk(store, model, options, &mut sink, progress)?;
            sink.flush()?;
            Ok((summary, sink.writer.into_inner()?))
        }
    }
}

/// Reads every wanted record of `model` in order and hands each row to `sink`.
fn walk(
    store: &dyn StoreRead,
    model: &ModelEntry,
    options: &ExportOptions,
    sink: &mut dyn RowSink,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ExportSummary, ExportError> {
    let name = &model.metadata.name;
    let wanted_layers = |n_layers: u64| (0..n_layers as u32).filter(|&layer| options.wants_layer(layer)).count() as u64;
    let total = 1
        + ModelDataKind::ALL.len() as u64
        + model
            .sources
            .iter()
            .map(|source| {
                wanted_layers(source.info.n_layers)
                    * (source.layer_kinds.len() as u64 + source.info.units_per_layer * source.neuron_kinds.len() as u64)
            })
            .sum::<u64>();
    let mut done = 0u64;
    let mut summary = ExportSummary::default();
    let emit = |row: ExportRow, summary: &mut ExportSummary, sink: &mut dyn RowSink| -> Result<(), ExportError> {
        summary.rows += 1;
        summary.blob_bytes += row.blob.as_ref().map_or(0, |blob| blob.len() as u64);
        sink.push(row)
    };
    let sources: Vec<_> = model.sources.iter().map(|source| source.info.clone()).collect();
    let metadata_row = ExportRow {
        model: name.clone(),
        source: None,
        layer: None,
        index: None,
        level: RowLevel::Model,
        kind: METADATA_KIND.to_owned(),
        json: metadata_json(&model.metadata, &sources),
        blob: None,
    };
    emit(metadata_row, &mut summary, sink)?;
    done += 1;

    // The vocabulary labels every token id, whichever kinds are exported.
    let mut vocabulary = Vocabulary::default();
    for &kind in ModelDataKind::ALL {
        let blob = store.model_blob(model.id, kind)?;
        done += 1;
        progress(done, total);
        let Some(blob) = blob else { continue };
        let record = decode_model(kind, &blob)
            .map_err(|source| ExportError::Codec { what: format!("{name} {}", kind.name()), source })?;
        if options.wants_kind(kind.name()) {
            let row = model_row(name, kind.name(), model_json(&record).to_string(), blob);
            emit(row, &mut summary, sink)?;
        }
        if let ModelRecord::Vocabulary(stored) = record {
            vocabulary = stored;
        }
    }

    for source in &model.sources {
        let source_name = &source.info.name;
        for layer in (0..source.info.n_layers as u32).filter(|&layer| options.wants_layer(layer)) {
            for &kind in &source.layer_kinds {
                done += 1;
                if !options.wants_kind(kind.name()) {
                    continue;
                }
                let Some(blob) = store.layer_blob(source.id, layer, kind)? else { continue };
                let record = decode_layer(kind, &blob).map_err(|codec| ExportError::Codec {
                    what: format!("{name} {source_name} layer {layer} {}", kind.name()),
                    source: codec,
                })?;
                let row = ExportRow {
                    model: name.clone(),
                    source: Some(source_name.clone()),
                    layer: Some(layer),
                    index: None,
                    level: RowLevel::Layer,
                    kind: kind.name().to_owned(),
                    json: layer_json(&record).to_string(),
                    blob: Some(blob),
                };
                emit(row, &mut summary, sink)?;
            }
            let kinds: Vec<NeuronDataKind> =
                source.neuron_kinds.iter().copied().filter(|kind| options.wants_kind(kind.name())).collect();
            for index in 0..source.info.units_per_layer as u32 {
                done += source.neuron_kinds.len() as u64;
                for &kind in &kinds {
                    let Some(blob) = store.neuron_blob(source.id, layer, index, kind)? else { continue };
                    let record = decode_neuron(kind, &blob).map_err(|codec| ExportError::Codec {
                        what: format!("{name} {source_name} {layer}/{index} {}", kind.name()),
                        source: codec,
                    })?;
                    let row = ExportRow {
                        model: name.clone(),
                        source: Some(source_name.clone()),
                        layer: Some(layer),
                        index: Some(index),
                        level: RowLevel::Neuron,
                        kind: kind.name().to_owned(),
                        json: neuron_json(&record, &vocabulary).to_string(),
                        blob: Some(blob),
                    };
                    emit(row, &mut summary, sink)?;
                }
                progress(done, total);
            }
        }
    }
    progress(total, total);
    Ok(summary)
}

fn model_row(model: &str, kind: &str, json: String, blob: Vec<u8>) -> ExportRow {
    ExportRow {
        model: model.to_owned(),
        source: None,
        layer: None,
        index: None,
        level: RowLevel::Model,
        kind: kind.to_owned(),
        json,
        blob: Some(blob),
    }
}

/// Where rows go: one container format.
trait RowSink {
    fn push(&mut self, row: ExportRow) -> Result<(), ExportError>;
}

/// JSON lines through a gzip stream, one line per row as it comes.
struct JsonlSink<W: Write> {
    out: GzEncoder<W>,
}

impl<W: Write> RowSink for JsonlSink<W> {
    fn push(&mut self, row: ExportRow) -> Result<(), ExportError> {
        let blob = row.blob.map(|blob| base64::engine::general_purpose::STANDARD.encode(blob));
        let line = LineOut {
            model: &row.model,
            source: row.source.as_deref(),
            layer: row.layer,
            index: row.index,
            level: row.level.name(),
            kind: &row.kind,
            json: &row.json,
            blob,
        };
        serde_json::to_writer(&mut self.out, &line).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }
}

/// One line of a jsonl.gz export, its keys in the schema's column order (a `serde_json::Value`
/// would sort them).
#[derive(serde::Serialize)]
struct LineOut<'a> {
    model: &'a str,
    source: Option<&'a str>,
    layer: Option<u32>,
    index: Option<u32>,
    level: &'a str,
    kind: &'a str,
    json: &'a str,
    blob: Option<String>,
}

/// Parquet: rows buffered by column until a row group is full, then written.
struct ParquetSink<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    buffer: Columns,
}

/// One row group's columns; optional columns keep their values and definition levels apart.
#[derive(Default)]
struct Columns {
    n_rows: usize,
    n_bytes: usize,
    model: Vec<ByteArray>,
    source: (Vec<ByteArray>, Vec<i16>),
    layer: (Vec<i64>, Vec<i16>),
    index: (Vec<i64>, Vec<i16>),
    level: Vec<ByteArray>,
    kind: Vec<ByteArray>,
    json: Vec<ByteArray>,
    blob: (Vec<ByteArray>, Vec<i16>),
}

fn push_optional<T>(column: &mut (Vec<T>, Vec<i16>), value: Option<T>) {
    match value {
        Some(value) => {
            column.0.push(value);
            column.1.push(1);
        }
        None => column.1.push(0),
    }
}

impl<W: Write + Send> RowSink for ParquetSink<W> {
    fn push(&mut self, row: ExportRow) -> Result<(), ExportError> {
        let columns = &mut self.buffer;
        columns.n_rows += 1;
        columns.n_bytes += row.json.len() + row.blob.as_ref().map_or(0, Vec::len);
        columns.model.push(ByteArray::from(row.model.into_bytes()));
        push_optional(&mut columns.source, row.source.map(|source| ByteArray::from(source.into_bytes())));
        push_optional(&mut columns.layer, row.layer.map(i64::from));
        push_optional(&mut columns.index, row.index.map(i64::from));
        columns.level.push(ByteArray::from(row.level.name()));
        columns.kind.push(ByteArray::from(row.kind.into_bytes()));
        columns.json.push(ByteArray::from(row.json.into_bytes()));
        push_optional(&mut columns.blob, row.blob.map(ByteArray::from));
        if columns.n_rows >= ROW_GROUP_ROWS || columns.n_bytes >= ROW_GROUP_BYTES {
            self.flush()?;
        }
        Ok(())
    }
}

impl<W: Write + Send> ParquetSink<W> {
    /// Writes the buffered rows as one row group.
    fn flush(&mut self) -> Result<(), ExportError> {
        let columns = std::mem::take(&mut self.buffer);
        if columns.n_rows == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group()?;
        let mut column_idx = 0;
        while let Some(mut column) = group.next_column()? {
            match column_idx {
                0 => column.typed::<ByteArrayType>().write_batch(&columns.model, None, None)?,
                1 => column.typed::<ByteArrayType>().write_batch(&columns.source.0, Some(&columns.source.1), None)?,
                2 => column.typed::<Int64Type>().write_batch(&columns.layer.0, Some(&columns.layer.1), None)?,
                3 => column.typed::<Int64Type>().write_batch(&columns.index.0, Some(&columns.index.1), None)?,
                4 => column.typed::<ByteArrayType>().write_batch(&columns.level, None, None)?,
                5 => column.typed::<ByteArrayType>().write_batch(&columns.kind, None, None)?,
                6 => column.typed::<ByteArrayType>().write_batch(&columns.json, None, None)?,
                _ => column.typed::<ByteArrayType>().write_batch(&columns.blob.0, Some(&columns.blob.1), None)?,
            };
            column.close()?;
            column_idx += 1;
        }
        group.close()?;
        Ok(())
    }
}
