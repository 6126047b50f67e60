//! Finding a dataset's files and reading text and JSONL files, one document at a time.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::error::{DatasetError, io_error};
use super::parquet_file::ParquetReader;
use super::progress::DatasetProgress;

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

/// One file of a dataset and how to read it.
#[derive(Debug)]
pub(super) struct DataFile {
    pub(super) path: PathBuf,
    pub(super) format: DatasetFormat,
}

/// The files still to read, and the one being read.
pub(super) struct FileQueue {
    pending: VecDeque<DataFile>,
    current: Option<OpenFile>,
    text_field: String,
}

/// Lists the files of the dataset at `root` (one file, or every non-hidden file under a
/// directory, sorted by path) and their total size.
pub(super) fn list_data_files(
    root: &Path,
    forced_format: Option<DatasetFormat>,
) -> Result<(Vec<DataFile>, u64), DatasetError> {
    let metadata = std::fs::metadata(root).map_err(|source| io_error(root, source))?;
    let mut found = Vec::new();
    match metadata.is_dir() {
        true => walk_directory(root, &mut found)?,
        false => found.push((root.to_path_buf(), metadata.len())),
    }
    if found.is_empty() {
        return Err(DatasetError::NoDocuments { path: root.to_path_buf() });
    }
    // Sorting by path (component by component) makes the order, and so every document and context
    // index, the same on every machine whatever order the file system lists entries in.
    found.sort_unstable_by(|(left, _), (right, _)| left.cmp(right));
    let total_bytes = found.iter().map(|(_, size)| size).sum();
    let data_files = found
        .into_iter()
        .map(|(path, _)| {
            let format = forced_format.unwrap_or_else(|| DatasetFormat::from_path(&path));
            DataFile { path, format }
        })
        .collect();
    Ok((data_files, total_bytes))
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

impl FileQueue {
    pub(super) fn new(files: Vec<DataFile>, text_field: &str) -> FileQueue {
        FileQueue { pending: files.into(), current: None, text_field: text_field.to_owned() }
    }

    /// The next document's text, opening the next file when one is finished; `None` at the end.
    pub(super) fn next_text(&mut self, progress: &DatasetProgress) -> Result<Option<String>, DatasetError> {
        loop {
            let text = match &mut self.current {
                Some(OpenFile::Jsonl(reader)) => reader.next_text(&self.text_field)?,
                Some(OpenFile::Parquet(reader)) => reader.next_text(progress)?,
                None => None,
            };
            if text.is_some() {
                return Ok(text);
            }
            self.current = None;
            let Some(file) = self.pending.pop_front() else {
                return Ok(None);
            };
            self.current = match file.format {
                DatasetFormat::Text => return read_text_file(&file.path, progress).map(Some),
                DatasetFormat::Jsonl | DatasetFormat::JsonlGzip | DatasetFormat::JsonlZstd => {
                    Some(OpenFile::Jsonl(JsonlReader::open(file, progress)?))
                }
                DatasetFormat::Parquet => {
                    Some(OpenFile::Parquet(Box::new(ParquetReader::open(file.path, &self.text_field)?)))
                }
            };
        }
    }
}

/// Collects every non-hidden file under `directory` with its size.
fn walk_directory(directory: &Path, found: &mut Vec<(PathBuf, u64)>) -> Result<(), DatasetError> {
    let entries = std::fs::read_dir(directory).map_err(|source| io_error(directory, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| io_error(directory, source))?;
        // Hidden entries are tool state (`.git`, `.cache`, `.DS_Store`), never text to record.
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        // `fs::metadata` follows symbolic links: a Hugging Face cache snapshot is a tree of links
        // to blobs.
        let metadata = std::fs::metadata(&path).map_err(|source| io_error(&path, source))?;
        if metadata.is_dir() {
            walk_directory(&path, found)?;
        } else if metadata.is_file() {
            found.push((path, metadata.len()));
        }
    }
    Ok(())
}

/// A whole file as one document.
fn read_text_file(path: &Path, progress: &DatasetProgress) -> Result<String, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| io_error(path, source))?;
    progress.add_bytes_read(bytes.len() as u64);
    if bytes.is_empty() {
        return Err(DatasetError::EmptyFile { path: path.to_path_buf() });
    }
    let mut text = String::from_utf8(bytes).map_err(|err| DatasetError::NotUtf8 {
        path: path.to_path_buf(),
        offset: err.utf8_error().valid_up_to() as u64,
    })?;
    // Editors on Windows start files with a byte-order mark; it is not text and would become a
    // token of its own.
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
}

enum OpenFile {
    Jsonl(JsonlReader),
    /// Boxed: its reader and buffers are several hundred bytes.
    Parquet(Box<ParquetReader>),
}

/// Reads a JSONL file (plain or compressed) line by line.
struct JsonlReader {
    path: PathBuf,
    lines: Box<dyn BufRead + Send>,
    /// The last line read, counting from 1.
    line_number: u64,
    documents_in_file: u64,
    /// Reused for every line so reading allocates only for the texts themselves.
    line: Vec<u8>,
}

impl JsonlReader {
    fn open(file: DataFile, progress: &DatasetProgress) -> Result<JsonlReader, DatasetError> {
        let opened = File::open(&file.path).map_err(|source| io_error(&file.path, source))?;
        // Counting below the decompressor measures bytes on disk, the unit of `total_bytes`.
        let counted = CountingReader { inner: opened, progress: progress.clone() };
        let decompressed: Box<dyn Read + Send> = match file.format {
            DatasetFormat::JsonlGzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(counted))),
            DatasetFormat::JsonlZstd => {
                Box::new(zstd::stream::read::Decoder::new(counted).map_err(|source| io_error(&file.path, source))?)
            }
            _ => Box::new(counted),
        };
        Ok(JsonlReader {
            path: file.path,
            lines: Box::new(BufReader::with_capacity(1 << 16, decompressed)),
            line_number: 0,
            documents_in_file: 0,
            line: Vec::new(),
        })
    }

    /// The text of the next non-blank line; `None` at the end of the file.
    fn next_text(&mut self, field: &str) -> Result<Option<String>, DatasetError> {
        loop {
            self.line.clear();
            let read = self.lines.read_until(b'\n', &mut self.line).map_err(|source| io_error(&self.path, source))?;
            if read == 0 {
                if self.documents_in_file == 0 {
                    return Err(DatasetError::EmptyFile { path: self.path.clone() });
                }
                return Ok(None);
            }
            self.line_number += 1;
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let text = self.text_of_line(field)?;
            self.documents_in_file += 1;
            return Ok(Some(text));
        }
    }

    fn text_of_line(&self, field: &str) -> Result<String, DatasetError> {
        let line = self.line_number;
        // serde_json checks UTF-8 itself, so a line of bad bytes is reported like bad JSON.
        let value: serde_json::Value = serde_json::from_slice(&self.line).map_err(|source| DatasetError::Json {
            path: self.path.clone(),
            line,
            source,
        })?;
        let serde_json::Value::Object(mut object) = value else {
            return Err(DatasetError::NotAnObject { path: self.path.clone(), line });
        };
        match object.remove(field) {
            Some(serde_json::Value::String(text)) => Ok(text),
            Some(_) => Err(DatasetError::NotAString { path: self.path.clone(), line, field: field.to_owned() }),
            None => Err(DatasetError::MissingField { path: self.path.clone(), line, field: field.to_owned() }),
        }
    }
}

/// Adds every byte read to the progress counters.
struct CountingReader<R> {
    inner: R,
    progress: DatasetProgress,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.progress.add_bytes_read(read as u64);
        Ok(read)
    }
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
}
