//! Reading one string column of a Parquet file, a row group at a time and a batch of rows at a
//! time within it, so memory holds one batch of texts and one page, never the whole file.
//!
//! This uses the `parquet` crate's column readers without arrow: arrow's array types would add
//! minutes of build time to read what is here a single column of strings.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::basic::Type as PhysicalType;
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::errors::ParquetError;
use parquet::file::reader::{FileReader, SerializedFileReader};

use super::error::{DatasetError, io_error};
use super::progress::DatasetProgress;

/// Rows decoded per call: enough to amortise the call, few enough that a batch of long documents
/// stays a few megabytes.
const ROWS_PER_BATCH: usize = 256;

/// Reads the text column of one Parquet file.
pub(super) struct ParquetReader {
    path: PathBuf,
    field: String,
    file: SerializedFileReader<File>,
    /// The text column's position among the file's leaf columns.
    column_index: usize,
    /// Whether a row's text may be null (the column is optional, or nested in an optional group).
    max_definition_level: i16,
    next_row_group: usize,
    /// The current row group's column reader; `None` between row groups.
    column: Option<ColumnReaderImpl<ByteArrayType>>,
    /// Rows decoded so far, for error messages and progress.
    rows_read: u64,
    total_rows: u64,
    file_bytes: u64,
    /// Bytes of this file already added to the progress counters.
    bytes_reported: u64,
    texts: VecDeque<String>,
    values: Vec<ByteArray>,
    definition_levels: Vec<i16>,
}

impl ParquetReader {
    /// Reads the file's footer and finds the text column; checks that the file has rows.
    pub(super) fn open(path: PathBuf, field: &str) -> Result<ParquetReader, DatasetError> {
        let opened = File::open(&path).map_err(|source| io_error(&path, source))?;
        let file_bytes = opened.metadata().map_err(|source| io_error(&path, source))?.len();
        let file = SerializedFileReader::new(opened).map_err(|source| parquet_error(&path, source))?;
        let metadata = file.metadata();
        let columns = metadata.file_metadata().schema_descr().columns();
        let Some(column_index) = columns.iter().position(|column| column.path().string() == field) else {
            let names: Vec<String> = columns.iter().map(|column| column.path().string()).collect();
            return Err(DatasetError::NoSuchColumn { path, field: field.to_owned(), columns: names.join(", ") });
        };
        let column = &columns[column_index];
        if column.max_rep_level() > 0 {
            return Err(DatasetError::NotAStringColumn { path, field: field.to_owned(), found: "lists".to_owned() });
        }
        // Strings are BYTE_ARRAY (usually annotated UTF8); each value's UTF-8 is checked as it is
        // read, so an unannotated byte column of text is accepted too.
        if column.physical_type() != PhysicalType::BYTE_ARRAY {
            let found = column.physical_type().to_string();
            return Err(DatasetError::NotAStringColumn { path, field: field.to_owned(), found });
        }
        let max_definition_level = column.max_def_level();
        let total_rows = u64::try_from(metadata.file_metadata().num_rows()).unwrap_or(0);
        if total_rows == 0 {
            return Err(DatasetError::EmptyFile { path });
        }
        Ok(ParquetReader {
            path,
            field: field.to_owned(),
            file,
            column_index,
            max_definition_level,
            next_row_group: 0,
            column: None,
            rows_read: 0,
            total_rows,
            file_bytes,
            bytes_reported: 0,
            texts: VecDeque::new(),
            values: Vec::new(),
            definition_levels: Vec::new(),
        })
    }

    /// The next row's text; `None` after the last row group.
    pub(super) fn next_text(&mut self, progress: &DatasetProgress) -> Result<Option<String>, DatasetError> {
        loop {
            if let Some(text) = self.texts.pop_front() {
                return Ok(Some(text));
            }
            if self.column.is_some() {
                let rows = self.read_batch()?;
                self.report_progress(progress);
                if rows > 0 {
                    continue;
                }
                self.column = None;
            }
            if self.next_row_group == self.file.num_row_groups() {
                return Ok(None);
            }
            let row_group =
                self.file.get_row_group(self.next_row_group).map_err(|source| parquet_error(&self.path, source))?;
            self.next_row_group += 1;
            let reader =
                row_group.get_column_reader(self.column_index).map_err(|source| parquet_error(&self.path, source))?;
            self.column = match reader {
                ColumnReader::ByteArrayColumnReader(reader) => Some(reader),
                // `open` checked the physical type, and every row group shares the file's schema.
                _ => {
                    return Err(DatasetError::NotAStringColumn {
                        path: self.path.clone(),
                        field: self.field.clone(),
                        found: "another type in a row group".to_owned(),
                    });
                }
            };
        }
    }

    /// Decodes up to a batch of rows of the current row group into `texts`; returns how many.
    fn read_batch(&mut self) -> Result<usize, DatasetError> {
        let Some(column) = &mut self.column else {
            return Ok(0);
        };
        self.values.clear();
        self.definition_levels.clear();
        let (rows, _, _) = column
            .read_records(ROWS_PER_BATCH, Some(&mut self.definition_levels), None, &mut self.values)
            .map_err(|source| parquet_error(&self.path, source))?;
        // A required column has no definition levels; an optional one has one per row, and a row
        // below the maximum level is null (the values hold only the non-null rows).
        if self.max_definition_level > 0 {
            let null = self.definition_levels.iter().position(|&level| level < self.max_definition_level);
            if let Some(row_in_batch) = null {
                return Err(DatasetError::ParquetNull {
                    path: self.path.clone(),
                    row: self.rows_read + row_in_batch as u64,
                    field: self.field.clone(),
                });
            }
        }
        for (row_in_batch, value) in self.values.iter().enumerate() {
            let text = String::from_utf8(value.data().to_vec()).map_err(|_| DatasetError::ParquetNotUtf8 {
                path: self.path.clone(),
                row: self.rows_read + row_in_batch as u64,
                field: self.field.clone(),
            })?;
            self.texts.push_back(text);
        }
        self.rows_read += rows as u64;
        Ok(rows)
    }

    /// Counts this file's bytes in proportion to the rows decoded: pages are read inside the
    /// Parquet reader, and the rows are what the caller waits for.
    fn report_progress(&mut self, progress: &DatasetProgress) {
        let rows_read = self.rows_read.min(self.total_rows);
        let reached = (u128::from(self.file_bytes) * u128::from(rows_read) / u128::from(self.total_rows)) as u64;
        if reached > self.bytes_reported {
            progress.add_bytes_read(reached - self.bytes_reported);
            self.bytes_reported = reached;
        }
    }
}

fn parquet_error(path: &Path, source: ParquetError) -> DatasetError {
    DatasetError::Parquet { path: path.to_path_buf(), source }
}
