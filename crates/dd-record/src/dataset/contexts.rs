//! Cutting documents into model contexts: tokenized in parallel a chunk of documents at a time,
//! cut in dataset order, so the contexts and their indices do not depend on the thread count.
//!
//! A context is `[BOS] + up to (length − 1)` tokens of one document (the whole length is text when
//! the tokenizer has no BOS token). A document never shares a context with another: the recorder
//! shows a neuron's examples as text, and text spanning two documents would read as one. A longer
//! document gives several consecutive contexts; its shorter last piece is kept as it is, since
//! callers right-pad and causal attention keeps the padding from changing earlier positions.

use std::collections::VecDeque;
use std::sync::Arc;

use dd_model::{ModelError, Tokenizer};
use rayon::prelude::*;

use super::documents::{Document, Documents};
use super::error::DatasetError;
use super::progress::DatasetProgress;

/// The context length when the caller has no reason to choose another: long enough to read a
/// neuron's example as text, short enough that a run sees many contexts.
pub const DEFAULT_CONTEXT_LENGTH: usize = 128;

/// Documents tokenized together: enough text that every core has work, little enough that the
/// first contexts come soon and a token budget is not overshot by much tokenizing.
const CHUNK_BYTES: usize = 1 << 20;
const CHUNK_DOCUMENTS: usize = 4096;

/// Which contexts one of several cooperating runs keeps: those whose index is `index` modulo
/// `count`. Indices stay global, so the shards' outputs can be merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, counting from 0.
    pub index: u64,
    /// The number of shards.
    pub count: u64,
}

/// How documents are cut into contexts.
#[derive(Clone, Debug)]
pub struct ContextConfig {
    /// The most tokens in a context, BOS included; at least 2 (usually [`DEFAULT_CONTEXT_LENGTH`]).
    pub length: usize,
    /// Stop once the contexts cut hold this many tokens (BOS included), counting every context of
    /// every shard. The context that would cross the budget is truncated to end exactly on it, or
    /// dropped if it would keep no text token; so a run holds exactly `budget` tokens unless the
    /// dataset ends first (or the last context would be a lone BOS). `None` reads the whole
    /// dataset.
    pub token_budget: Option<u64>,
    /// The contexts this run keeps ([`Shard::WHOLE`] for all).
    pub shard: Shard,
    /// Skip contexts whose index is below this one, to resume an interrupted run. They are still
    /// tokenized (their lengths are needed to find where the next starts) and count towards the
    /// budget.
    pub start_context: u64,
}

/// A piece of one document, ready for the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// Its position among all the dataset's contexts, counting from 0 (not only this shard's).
    pub index: u64,
    /// The index of the document it comes from.
    pub document: u64,
    /// Where its first text token (the one after BOS) sits in the document's tokens.
    pub token_offset: u64,
    /// The token ids: BOS (when the tokenizer has one), then the document's tokens from
    /// `token_offset` on.
    pub tokens: Vec<u32>,
}

/// Yields contexts in index order. It is `Send`, so a recorder can run it on a producer thread.
/// After an error it yields nothing more.
pub struct Contexts {
    documents: Documents,
    tokenizer: Arc<Tokenizer>,
    bos_token_id: Option<u32>,
    /// Text tokens per context: the length less the BOS token.
    text_tokens_per_context: usize,
    token_budget: Option<u64>,
    shard: Shard,
    start_context: u64,
    /// Contexts cut and kept, waiting to be yielded.
    ready: VecDeque<Context>,
    /// A reading or tokenizing error, yielded after the contexts of the documents before it.
    pending_error: Option<DatasetError>,
    next_context: u64,
    tokens_cut: u64,
    budget_reached: bool,
    documents_finished: bool,
}

/// Checks `config` and returns the iterator over the contexts of `documents`.
pub fn split_into_contexts(
    documents: Documents,
    tokenizer: Arc<Tokenizer>,
    config: &ContextConfig,
) -> Result<Contexts, DatasetError> {
    if config.length < 2 {
        return Err(DatasetError::ContextTooShort { length: config.length });
    }
    let Shard { index, count } = config.shard;
    if index >= count {
        return Err(DatasetError::InvalidShard { index, count });
    }
    let bos_token_id = tokenizer.bos_token_id();
    let text_tokens_per_context = config.length - usize::from(bos_token_id.is_some());
    Ok(Contexts {
        documents,
        tokenizer,
        bos_token_id,
        text_tokens_per_context,
        token_budget: config.token_budget,
        shard: config.shard,
        start_context: config.start_context,
        ready: VecDeque::new(),
        pending_error: None,
        next_context: 0,
        tokens_cut: 0,
        budget_reached: config.token_budget == Some(0),
        documents_finished: false,
    })
}

impl Shard {
    /// The only shard of an unsharded run.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether this shard keeps the context with global index `context_index`.
    pub fn contains(self, context_index: u64) -> bool {
        // `checked_rem` so that a shard of zero count, refused by `split_into_contexts`, holds
        // nothing rather than panicking here.
        context_index.checked_rem(self.count) == Some(self.index)
    }
}

impl Contexts {
    /// A handle on the progress counters (bytes and documents read, contexts and tokens cut).
    pub fn progress(&self) -> DatasetProgress {
        self.documents.progress()
    }

    /// Reads a chunk of documents, tokenizes them in parallel and cuts them in order.
    fn fill(&mut self) {
        let mut chunk: Vec<Document> = Vec::new();
        let mut chunk_bytes = 0;
        while chunk.len() < CHUNK_DOCUMENTS && chunk_bytes < CHUNK_BYTES {
            match self.documents.next() {
                Some(Ok(document)) => {
                    chunk_bytes += document.text.len();
                    chunk.push(document);
                }
                Some(Err(err)) => {
                    self.pending_error = Some(err);
                    break;
                }
                None => {
                    self.documents_finished = true;
                    break;
                }
            }
        }
        let tokenizer = &self.tokenizer;
        // `collect` on an indexed parallel iterator keeps the documents' order.
        let encoded: Vec<Result<Vec<u32>, Box<ModelError>>> =
            chunk.par_iter().map(|document| tokenizer.encode(&document.text).map_err(Box::new)).collect();
        for (document, tokens) in chunk.iter().zip(encoded) {
            match tokens {
                Ok(tokens) => self.cut(document.index, &tokens),
                Err(source) => {
                    // An earlier document's error replaces a later read error: errors come in order.
                    self.pending_error = Some(DatasetError::Tokenize { document: document.index, source });
                    return;
                }
            }
            if self.budget_reached {
                return;
            }
        }
    }

    /// Cuts one document's tokens into contexts, keeping this shard's.
    fn cut(&mut self, document: u64, tokens: &[u32]) {
        let bos_len = usize::from(self.bos_token_id.is_some());
        for (piece_index, piece) in tokens.chunks(self.text_tokens_per_context).enumerate() {
            let mut piece = piece;
            if let Some(budget) = self.token_budget {
                let remaining = budget.saturating_sub(self.tokens_cut);
                if (bos_len + piece.len()) as u64 >= remaining {
                    // This context reaches the budget: truncate it to end exactly there, and drop it
                    // if only BOS would remain.
                    self.budget_reached = true;
                    let keep = usize::try_from(remaining).unwrap_or(usize::MAX).saturating_sub(bos_len);
                    if keep == 0 {
                        return;
                    }
                    piece = &piece[..keep.min(piece.len())];
                }
            }
            let index = self.next_context;
            self.next_context += 1;
            let length = (bos_len + piece.len()) as u64;
            self.tokens_cut += length;
            self.documents.progress.add_context(length);
            if index >= self.start_context && self.shard.contains(index) {
                let mut context_tokens = Vec::with_capacity(bos_len + piece.len());
                context_tokens.extend(self.bos_token_id);
                context_tokens.extend_from_slice(piece);
                let token_offset = (piece_index * self.text_tokens_per_context) as u64;
                self.ready.push_back(Context { index, document, token_offset, tokens: context_tokens });
            }
            if self.budget_reached {
                return;
            }
        }
    }
}

impl Iterator for Contexts {
    type Item = Result<Context, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(context) = self.ready.pop_front() {
                return Some(Ok(context));
            }
            // Once the budget is reached, an error further on (found because documents are read a
            // chunk ahead) belongs to text the run does not need, so it is not reported.
            if self.budget_reached {
                return None;
            }
            if let Some(err) = self.pending_error.take() {
                self.documents_finished = true;
                return Some(Err(err));
            }
            if self.documents_finished {
                return None;
            }
            self.fill();
        }
    }
}

impl std::fmt::Debug for Contexts {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Contexts")
            .field("next_context", &self.next_context)
            .field("tokens_cut", &self.tokens_cut)
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}
