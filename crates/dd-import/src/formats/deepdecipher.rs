//! DeepDecipher's own export (`dd-export`: one jsonl.gz or Parquet file), imported from a
//! directory or an HTTP base URL. Records are decoded from the `blob` column, the store's own
//! encoding, so an export imported into an empty database gives the same records.
//!
//! The file is read where it lies (a URL's is downloaded first, to a temporary file removed with
//! the importer); planning reads it once, noting which rows each layer of the chosen source holds,
//! and each item (one layer) reads only those rows (Parquet row groups elsewhere are skipped), so
//! memory holds one layer's records, whatever the file's size.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Mutex;

use dd_data::{LayerDataKind, LayerRecord, ModelDataKind, NeuronDataKind, NeuronRecord};
use dd_export::{ExportError, ExportRow, ExportedModel, RowLevel, read_file, read_file_rows};
use dd_store::codec::{decode_layer, decode_model, decode_neuron};

use crate::fetch::{DatasetLocation, Fetcher};
use crate::job::{ImportPlan, ImportRequest, ImportedUnit, Importer, ItemOutcome, WorkItem};
use crate::{ImportError, TokenMap};

/// Imports one source of one model from a DeepDecipher export file.
#[derive(Debug)]
pub struct DeepDecipherImporter {
    file: String,
    source: String,
    /// What planning read: the file, and the request's unit limit for the items.
    planned: Mutex<Option<Planned>>,
    /// A downloaded copy of a URL's file, removed when the importer is dropped.
    downloaded: Mutex<Option<PathBuf>>,
}

impl Drop for DeepDecipherImporter {
    fn drop(&mut self) {
        if let Some(path) = self.downloaded.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[derive(Debug, Clone)]
struct Planned {
    /// The export file on local disk.
    path: PathBuf,
    /// The rows (0-based, file order) of each layer's units of the chosen source.
    layer_rows: BTreeMap<u32, Range<u64>>,
    units_per_layer: Option<u32>,
    layer_records: Vec<(u32, LayerRecord)>,
}

/// Splits an export's path or URL into where it lives and its file name
/// (`https://host/exports/gpt2.parquet` → `https://host/exports`, `gpt2.parquet`).
pub fn split_export_source(source: &str) -> Result<(DatasetLocation, String), ImportError> {
    let trimmed = source.trim();
    let (base, file) = match trimmed.rsplit_once('/') {
        Some((base, file)) => (base, file),
        None => (".", trimmed),
    };
    let is_url = trimmed.starts_with("http://") || trimmed.starts_with("https://");
    if file.is_empty() || (is_url && base.ends_with('/')) {
        return Err(ImportError::Invalid(format!(
            "{trimmed:?} names no export file (…/model.parquet or …/model.jsonl.gz)"
        )));
    }
    let base = if base.is_empty() { "/" } else { base };
    Ok((DatasetLocation::parse(base), file.to_owned()))
}

impl DeepDecipherImporter {
    /// An importer of source `source` (`mlp`) of the export file `file` at the job's location.
    pub fn new(file: &str, source: &str) -> Self {
        Self {
            file: file.to_owned(),
            source: source.to_owned(),
            planned: Mutex::new(None),
            downloaded: Mutex::new(None),
        }
    }

    /// The export file on local disk: where it lies, or for a URL a temporary download; `None`
    /// when there is no such file.
    fn local_file(&self, fetcher: &Fetcher) -> Result<Option<PathBuf>, ImportError> {
        let downloaded = match fetcher.location() {
            DatasetLocation::Directory(directory) => {
                let path = directory.join(&self.file);
                return Ok(path.is_file().then_some(path));
            }
            DatasetLocation::Http(_) => {
                let extension = if self.file.ends_with(".parquet") { "parquet" } else { "jsonl.gz" };
                let unique =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
                let path = std::env::temp_dir()
                    .join(format!("deepdecipher-export-{}-{unique}.{extension}", std::process::id()));
                fetcher
                    .download(&self.file, &path)
                    .map_err(|error| ImportError::Dataset(error.to_string()))?
                    .map(|_| path)
            }
        };
        if let Some(path) = &downloaded {
            *self.downloaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(path.clone());
        }
        Ok(downloaded)
    }

    fn planned(&self) -> Result<Planned, String> {
        let planned = self.planned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        planned.clone().ok_or_else(|| "the export was not planned".to_owned())
    }
}

impl Importer for DeepDecipherImporter {
    fn format(&self) -> &'static str {
        "deepdecipher"
    }

    fn plan(&self, fetcher: &Fetcher, request: &ImportRequest) -> Result<ImportPlan, ImportError> {
        let where_ = format!("{} in {}", self.file, fetcher.location().describe());
        let path = self.local_file(fetcher)?.ok_or_else(|| ImportError::Dataset(format!("no export file {where_}")))?;
        let mut layer_rows: BTreeMap<u32, Range<u64>> = BTreeMap::new();
        let mut model: Option<ExportedModel> = None;
        let mut model_records = Vec::new();
        let mut layer_records = Vec::new();
        let mut layers_with_units = std::collections::BTreeSet::new();
        let mut row_number = 0;
        read_file(&path, &mut |row| {
            row_number += 1;
            let row_error = |reason: String| ExportError::Malformed { row: row_number, reason };
            if row.level == RowLevel::Model && row.kind == dd_export::schema::METADATA_KIND {
                let exported = dd_export::parse_metadata(&row.json).map_err(|error| row_error(error.to_string()))?;
                model = Some(exported);
                return Ok(());
            }
            if model.is_none() {
                return Err(row_error("the first row is not the model's metadata".to_owned()));
            }
            match row.level {
                RowLevel::Model => {
                    let kind = kind_named(ModelDataKind::ALL, &row.kind, |kind| kind.name()).map_err(row_error)?;
                    model_records.push(
                        decode_model(kind, blob(&row).map_err(row_error)?)
                            .map_err(|error| codec(row_number, &row, error))?,
                    );
                }
                RowLevel::Layer if row.source.as_deref() == Some(&self.source) => {
                    let layer = row.layer.ok_or_else(|| row_error("a layer row without a layer".to_owned()))?;
                    if request.wants_layer(layer) {
                        let kind = kind_named(LayerDataKind::ALL, &row.kind, |kind| kind.name()).map_err(row_error)?;
                        let record = decode_layer(kind, blob(&row).map_err(row_error)?)
                            .map_err(|error| codec(row_number, &row, error))?;
                        layer_records.push((layer, record));
                    }
                }
                RowLevel::Neuron if row.source.as_deref() == Some(&self.source) => {
                    let layer = row.layer.ok_or_else(|| row_error("a neuron row without a layer".to_owned()))?;
                    layers_with_units.insert(layer);
                    let row_idx = row_number - 1;
                    let rows = layer_rows.entry(layer).or_insert(row_idx..row_idx + 1);
                    rows.start = rows.start.min(row_idx);
                    rows.end = rows.end.max(row_idx + 1);
                }
                RowLevel::Layer | RowLevel::Neuron => {}
            }
            Ok(())
        })
        .map_err(|error| ImportError::Dataset(format!("{where_}: {error}")))?;
        let model = model.ok_or_else(|| ImportError::Dataset(format!("{where_} has no rows")))?;
        let source = model
            .sources
            .iter()
            .find(|source| source.name == self.source)
            .cloned()
            .ok_or_else(|| ImportError::Invalid(format!("{where_} has no source {:?}", self.source)))?;
        let items = layers_with_units
            .into_iter()
            .filter(|&layer| request.wants_layer(layer))
            .map(|layer| WorkItem { key: format!("{}/{layer}", self.source) })
            .collect();
        let planned = Planned { path, layer_rows, units_per_layer: request.units_per_layer, layer_records };
        *self.planned.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(planned);
        Ok(ImportPlan { metadata: model.metadata, source, items, model_records })
    }

    fn layer_records(&self) -> Vec<(u32, LayerRecord)> {
        self.planned().map(|planned| planned.layer_records).unwrap_or_default()
    }

    fn import_item(&self, _fetcher: &Fetcher, item: &WorkItem, _tokens: &TokenMap) -> Result<ItemOutcome, String> {
        let planned = self.planned()?;
        let layer: u32 = item
            .key
            .rsplit_once('/')
            .and_then(|(_, layer)| layer.parse().ok())
            .ok_or_else(|| format!("item {:?} names no layer", item.key))?;
        // Token ids are the exporting model's, and the export's vocabulary is written with the
        // model records: they pass through unchanged, without the token map.
        let mut units: BTreeMap<u32, Vec<NeuronRecord>> = BTreeMap::new();
        let Some(rows) = planned.layer_rows.get(&layer).cloned() else { return Ok(ItemOutcome::Missing) };
        let mut row_number = rows.start;
        read_file_rows(&planned.path, rows, &mut |row| {
            row_number += 1;
            if row.level != RowLevel::Neuron || row.layer != Some(layer) || row.source.as_deref() != Some(&self.source)
            {
                return Ok(());
            }
            let row_error = |reason: String| ExportError::Malformed { row: row_number, reason };
            let index = row.index.ok_or_else(|| row_error("a neuron row without an index".to_owned()))?;
            if planned.units_per_layer.is_some_and(|limit| index >= limit) {
                return Ok(());
            }
            let kind = kind_named(NeuronDataKind::ALL, &row.kind, |kind| kind.name()).map_err(row_error)?;
            let record =
                decode_neuron(kind, blob(&row).map_err(row_error)?).map_err(|error| codec(row_number, &row, error))?;
            units.entry(index).or_default().push(record);
            Ok(())
        })
        .map_err(|error| error.to_string())?;
        Ok(ItemOutcome::Imported(
            units.into_iter().map(|(index, records)| ImportedUnit { layer, index, records }).collect(),
        ))
    }
}

fn kind_named<K: Copy>(kinds: &[K], name: &str, name_of: impl Fn(K) -> &'static str) -> Result<K, String> {
    kinds.iter().copied().find(|&kind| name_of(kind) == name).ok_or_else(|| format!("unknown kind {name:?}"))
}

fn blob(row: &ExportRow) -> Result<&[u8], String> {
    row.blob.as_deref().ok_or_else(|| format!("the {} row has no blob", row.kind))
}

fn codec(row_number: u64, row: &ExportRow, error: dd_store::CodecError) -> ExportError {
    let unit = match (row.layer, row.index) {
        (Some(layer), Some(index)) => format!(" {layer}/{index}"),
        (Some(layer), None) => format!(" layer {layer}"),
        _ => String::new(),
    };
    ExportError::Malformed { row: row_number, reason: format!("{}{unit} {}: {error}", row.model, row.kind) }
}
