//! The token ids of every recorded context, kept so the selected examples can show their text.
//!
//! Four bytes per recorded token (40 MB per 10 M tokens) is the one part of the recorder's memory that
//! grows with the dataset; at the end only the contexts some neuron selected are kept.

use std::collections::HashSet;

/// Token ids of recorded contexts, by global context index (appended in increasing order).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ContextTokens {
    pub(crate) indices: Vec<u64>,
    /// `offsets[i]..offsets[i + 1]` are context `indices[i]`'s tokens; one more entry than `indices`.
    pub(crate) offsets: Vec<u64>,
    pub(crate) tokens: Vec<u32>,
}

impl ContextTokens {
    /// Records a context; indices must grow.
    pub(crate) fn push(&mut self, index: u64, tokens: &[u32]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.indices.push(index);
        self.tokens.extend_from_slice(tokens);
        self.offsets.push(self.tokens.len() as u64);
    }

    /// The tokens of context `index`.
    pub(crate) fn get(&self, index: u64) -> Option<&[u32]> {
        let i = self.indices.binary_search(&index).ok()?;
        let (start, end) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        self.tokens.get(start..end)
    }

    /// Keeps only the contexts in `keep`.
    pub(crate) fn retain(&mut self, keep: &HashSet<u64>) {
        let mut kept = ContextTokens::default();
        for (i, &index) in self.indices.iter().enumerate() {
            if keep.contains(&index) {
                kept.push(index, &self.tokens[self.offsets[i] as usize..self.offsets[i + 1] as usize]);
            }
        }
        *self = kept;
    }

    /// Adds another shard's contexts (disjoint indices), keeping the index order.
    pub(crate) fn merge(&mut self, other: &ContextTokens) {
        let mut all: Vec<(u64, &[u32])> =
            (0..self.indices.len())
                .map(|i| (self.indices[i], &self.tokens[self.offsets[i] as usize..self.offsets[i + 1] as usize]))
                .chain((0..other.indices.len()).map(|i| {
                    (other.indices[i], &other.tokens[other.offsets[i] as usize..other.offsets[i + 1] as usize])
                }))
                .collect();
        all.sort_by_key(|(index, _)| *index);
        all.dedup_by_key(|(index, _)| *index);
        let mut merged = ContextTokens::default();
        for (index, tokens) in all {
            merged.push(index, tokens);
        }
        *self = merged;
    }
}
