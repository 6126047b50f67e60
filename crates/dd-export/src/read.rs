//! Reading an export back, row by row, from either container; the format is told by the file's
//! first bytes (`PAR1` or gzip's `1f 8b`), so callers need not know it.

use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::Path;

use base64::Engine;
use flate2::read::MultiGzDecoder;
use parquet::file::reader::{ChunkReader, FileReader, SerializedFileReader};
use parquet::record::Field;
use serde::Deserialize;

use crate::schema::COLUMNS;
use crate::{ExportError, ExportRow, RowLevel};

/// Calls `visit` with every row of the export in `data`, in file order (`Bytes`, so that a
/// caller reading one buffer many times shares it instead of copying it).
pub fn read_bytes(
    data: bytes::Bytes,
    visit: &mut dyn FnMut(ExportRow) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    if data.starts_with(b"PAR1") {
        return read_parquet(data, ALL_ROWS, visit);
    }
    read_jsonl_gz(&data[..], ALL_ROWS, visit)
}

/// Every row.
const ALL_ROWS: Range<u64> = 0..u64::MAX;

/// Calls `visit` with every row of the export file at `path`, streaming: a jsonl.gz file is
/// decompressed as it is read, a Parquet file read one row group at a time.
pub fn read_file(path: &Path, visit: &mut dyn FnMut(ExportRow) -> Result<(), ExportError>) -> Result<(), ExportError> {
    read_file_rows(path, ALL_ROWS, visit)
}

/// Calls `visit` with rows `rows` (0-based, in file order) of the export file at `path`: Parquet
/// row groups outside them are not read at all, and a jsonl.gz file is read up to their end only,
/// so that one layer of a large export costs its own rows, not the file's.
pub fn read_file_rows(
    path: &Path,
    rows: Range<u64>,
    visit: &mut dyn FnMut(ExportRow) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let mut file = std::fs::File::open(path)?;
    let mut magic = [0u8; 4];
    let n_read = file.read(&mut magic)?;
    drop(file);
    let file = std::fs::File::open(path)?;
    if n_read == 4 && &magic == b"PAR1" {
        return read_parquet(file, rows, visit);
    }
    read_jsonl_gz(file, rows, visit)
}

fn read_jsonl_gz(
    input: impl Read,
    rows: Range<u64>,
    visit: &mut dyn FnMut(ExportRow) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let mut head = BufReader::new(input);
    if !head.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        return Err(ExportError::Malformed { row: 0, reason: "neither Parquet nor gzip".to_owned() });
    }
    let lines = BufReader::new(MultiGzDecoder::new(head));
    for (line_idx, line) in lines.lines().enumerate() {
        if line_idx as u64 >= rows.end {
            break;
        }
        let row_number = line_idx as u64 + 1;
        let line = line?;
        if (line_idx as u64) < rows.start {
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let malformed = |reason: String| ExportError::Malformed { row: row_number, reason };
        let wire: LineWire = serde_json::from_str(&line).map_err(|error| malformed(error.to_string()))?;
        let level = RowLevel::parse(&wire.level).ok_or_else(|| malformed(format!("unknown level {:?}", wire.level)))?;
        let blob = match wire.blob {
            Some(text) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|error| malformed(format!("blob is not base64: {error}")))?,
            ),
            None => None,
        };
        visit(ExportRow {
            model: wire.model,
            source: wire.source,
            layer: wire.layer,
            index: wire.index,
            level,
            kind: wire.kind,
            json: wire.json,
            blob,
        })?;
    }
    Ok(())
}

/// One line of a jsonl.gz export.
#[derive(Deserialize)]
struct LineWire {
    model: String,
    source: Option<String>,
    layer: Option<u32>,
    index: Option<u32>,
    level: String,
    kind: String,
    json: String,
    blob: Option<String>,
}

fn read_parquet<R: ChunkReader + 'static>(
    input: R,
    rows: Range<u64>,
    visit: &mut dyn FnMut(ExportRow) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let reader = SerializedFileReader::new(input)?;
    let names: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|column| column.name().to_owned())
        .collect();
    if names != COLUMNS {
        return Err(ExportError::Malformed { row: 0, reason: format!("columns {names:?}, expected {COLUMNS:?}") });
    }
    let mut first_of_group = 0u64;
    for group in 0..reader.num_row_groups() {
        let n_rows = reader.metadata().row_group(group).num_rows().max(0) as u64;
        let group_rows = first_of_group..first_of_group + n_rows;
        first_of_group += n_rows;
        if group_rows.end <= rows.start || group_rows.start >= rows.end {
            continue;
        }
        let row_group = reader.get_row_group(group)?;
        for (offset, row) in row_group.get_row_iter(None)?.enumerate() {
            let row_idx = group_rows.start + offset as u64;
            if !rows.contains(&row_idx) {
                continue;
            }
            visit_parquet_row(row_idx + 1, row?, visit)?;
        }
    }
    Ok(())
}

fn visit_parquet_row(
    row_number: u64,
    row: parquet::record::Row,
    visit: &mut dyn FnMut(ExportRow) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let malformed = |reason: &str| ExportError::Malformed { row: row_number, reason: reason.to_owned() };
    let fields: Vec<&Field> = row.get_column_iter().map(|(_, field)| field).collect();
    let text = |field: &Field| match field {
        Field::Str(text) => Some(text.clone()),
        _ => None,
    };
    let unit = |field: &Field| match field {
        Field::Long(value) => u32::try_from(*value).ok().map(Some),
        Field::Null => Some(None),
        _ => None,
    };
    let [model, source, layer, index, level, kind, json, blob] = fields.as_slice() else {
        return Err(malformed("wrong number of columns"));
    };
    let level = text(level).and_then(|name| RowLevel::parse(&name)).ok_or_else(|| malformed("bad level"))?;
    visit(ExportRow {
        model: text(model).ok_or_else(|| malformed("model is not a string"))?,
        source: text(source),
        layer: unit(layer).ok_or_else(|| malformed("layer is not a u32"))?,
        index: unit(index).ok_or_else(|| malformed("index is not a u32"))?,
        level,
        kind: text(kind).ok_or_else(|| malformed("kind is not a string"))?,
        json: text(json).ok_or_else(|| malformed("json is not a string"))?,
        blob: match blob {
            Field::Bytes(bytes) => Some(bytes.data().to_vec()),
            Field::Null => None,
            _ => return Err(malformed("blob is not bytes")),
        },
    })?;
    Ok(())
}
