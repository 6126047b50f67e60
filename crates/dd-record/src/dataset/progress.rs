//! Progress counters of a dataset being read, shared between the reading thread and a display.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters a caller can read from any thread while another one reads the dataset, to draw a
/// progress bar. Cloning shares the counters. Every count is global: a shard's run counts the
/// contexts and tokens of all shards, since it cuts them all to know its own.
#[derive(Clone, Debug, Default)]
pub struct DatasetProgress {
    counters: Arc<ProgressCounters>,
}

impl DatasetProgress {
    /// Fresh counters for a dataset of `total_bytes`.
    pub(super) fn with_total_bytes(total_bytes: u64) -> DatasetProgress {
        let progress = DatasetProgress::default();
        progress.counters.total_bytes.store(total_bytes, Ordering::Relaxed);
        progress
    }

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

    /// Counts bytes read from a file.
    pub(super) fn add_bytes_read(&self, bytes: u64) {
        self.counters.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a document read.
    pub(super) fn add_document(&self) {
        self.counters.documents.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a context cut, of `tokens` tokens.
    pub(super) fn add_context(&self, tokens: u64) {
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
