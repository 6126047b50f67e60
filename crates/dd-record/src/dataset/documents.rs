//! A dataset's documents, in order with sequential indices, from its files or from memory.

use std::collections::VecDeque;
use std::path::PathBuf;

use super::error::DatasetError;
use super::files::{DatasetFormat, FileQueue, list_data_files};
use super::progress::DatasetProgress;

/// Where a dataset is and how to read it.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetConfig {
    /// A file, or a directory read recursively in path order.
    pub path: PathBuf,
    /// Read every file in this format whatever its name; `None` chooses by name
    /// ([`DatasetFormat::from_path`]).
    pub format: Option<DatasetFormat>,
    /// The JSON field or Parquet column that holds the text, usually
    /// [`DEFAULT_TEXT_FIELD`](super::DEFAULT_TEXT_FIELD). A Parquet column nested in a struct is
    /// named with dots (`meta.text`).
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

/// Yields a dataset's documents in order, each with its index. After an error it yields nothing
/// more: a recorder cannot skip a document without changing every index after it.
pub struct Documents {
    source: DocumentSource,
    next_index: u64,
    /// Shared with the contexts cut from these documents, which count into it.
    pub(super) progress: DatasetProgress,
    finished: bool,
}

/// Opens a dataset: lists its files (sorted by path, hidden ones skipped) and checks that there is
/// at least one. Files are opened one at a time as iteration reaches them.
pub fn open_documents(config: &DatasetConfig) -> Result<Documents, DatasetError> {
    let (data_files, total_bytes) = list_data_files(&config.path, config.format)?;
    let progress = DatasetProgress::with_total_bytes(total_bytes);
    let queue = FileQueue::new(data_files, &config.text_field);
    Ok(Documents { source: DocumentSource::Files(queue), next_index: 0, progress, finished: false })
}

impl Documents {
    /// Documents held in memory, for callers (and tests) that already have their texts. The
    /// progress's byte counts are the texts' lengths.
    pub fn from_texts(texts: Vec<String>) -> Documents {
        let total_bytes: usize = texts.iter().map(String::len).sum();
        let progress = DatasetProgress::with_total_bytes(total_bytes as u64);
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
        self.progress.add_document();
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

enum DocumentSource {
    Files(FileQueue),
    Memory(VecDeque<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_in_memory_get_sequential_indices() {
        let documents: Vec<Document> =
            Documents::from_texts(vec!["a".into(), "b".into()]).collect::<Result<_, _>>().expect("in memory");
        assert_eq!(documents, [Document { index: 0, text: "a".into() }, Document { index: 1, text: "b".into() }]);
    }
}
