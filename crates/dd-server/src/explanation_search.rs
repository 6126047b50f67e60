//! `explanation-search`: a model's explanations found by meaning. Every explanation that carries a
//! sentence embedding is held in memory, built once per model (`ModelContext` keeps it), and a
//! query, embedded by the server's [`QueryEncoder`], is compared with all of them exactly.
//!
//! Only vectors of one embedding model are comparable, so the index holds one: the query
//! encoder's when explanations were embedded with it, otherwise the most common; explanations of
//! other models, without an embedding or with a malformed one are counted and left out.
//!
//! Layout, for a scan that streams memory once: the quantised vectors in one contiguous
//! `n × dimension` array of `i8` (as stored, `dd_data::TextEmbedding`), a scale per row, and per row
//! the neuron, the explanation's position, the score filters read and interned origin and author.
//! Texts sit in one string arena and scores in one array, read only for the page's hits. At
//! gpt2-xl's 307,200 explanations of 384 dimensions the vectors take 118 MB and the rest 46 MB
//! (texts 23 MB, scores 15 MB, row fields 9 MB; `docs/benchmarks.md`).
//!
//! A search quantises the query the same way and takes the integer dot product with every row
//! that passes the filters (`scan.rs`: vectorised, over rayon in chunks), so the cosine is
//! `dot · scale_query · scale_row`; each chunk keeps its best `offset + limit`, and the chunks'
//! best are merged. Filters apply before ranking, so a page is always full when enough rows pass.

mod scan;

use std::collections::HashMap;

use dd_data::{Explanation, Explanations, NeuronDataKind, NeuronIndex, NeuronRecord, TextEmbedding};
use dd_store::{SourceEntry, StoreError, StoreRead};

use crate::error::ApiError;
use crate::wire;

/// Turns a search query into a sentence embedding comparable with the stored explanations'.
///
/// The server's encoder is `dd_model::SentenceEncoder` (`serve --embedder DIR`); tests use a small
/// deterministic one.
pub trait QueryEncoder: Send + Sync {
    /// The embedding model's name (`all-MiniLM-L6-v2`): only explanations embedded by the same
    /// model are compared with the query.
    fn model_name(&self) -> &str;

    /// The unit-length embedding of `text`; on failure, a message for the server log (never sent).
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, String>;
}

/// The one real encoder: the model the explainer embedded explanations with, run in Rust.
impl QueryEncoder for dd_model::SentenceEncoder {
    fn model_name(&self) -> &str {
        dd_model::SentenceEncoder::model_name(self)
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>, String> {
        let mut vectors = self.embed(&[text]).map_err(|error| error.to_string())?;
        vectors.pop().ok_or_else(|| "the sentence encoder returned no vector".to_owned())
    }
}

/// The score `min_score` filters on and the page shows first: OpenAI's explanation score, which
/// generated explanations put first.
pub(crate) const FILTER_SCORE: &str = "ev_correlation_score";

/// What a search keeps: rows must pass every filter given.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Filters<'a> {
    /// The explanation's [`FILTER_SCORE`] is at least this; explanations without it are left out.
    pub(crate) min_score: Option<f32>,
    /// The explanation's origin is exactly this.
    pub(crate) origin: Option<&'a str>,
    /// The explained neuron is in this layer.
    pub(crate) layer: Option<u32>,
}

/// An explanation a search found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hit {
    /// Its row in the index.
    pub(crate) row: u32,
    /// Cosine similarity to the query, on the quantised vectors.
    pub(crate) similarity: f32,
}

/// A page of a search.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Results {
    /// Rows that passed the filters, all ranked.
    pub(crate) total: usize,
    /// The page asked for, most similar first.
    pub(crate) hits: Vec<Hit>,
}

/// What a build read, for the log and the pages.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct IndexCounts {
    /// Explanations read.
    pub(crate) explanations: u64,
    /// Explanations in the index.
    pub(crate) indexed: u64,
    /// Explanations without an embedding.
    pub(crate) without_embedding: u64,
    /// Explanations embedded by other models than the index's, by model, most first.
    pub(crate) other_models: Vec<(String, u64)>,
    /// Embeddings left out as malformed: empty, longer than [`MAX_DIMENSION`], of another dimension
    /// than the first of their model, or with a scale that is not a positive finite number.
    pub(crate) malformed: u64,
}

/// One indexed explanation, besides its vector.
#[derive(Debug, Clone, Copy)]
struct Row {
    layer: u32,
    neuron: u32,
    /// Position in the neuron's explanations.
    explanation: u32,
    /// The [`FILTER_SCORE`]; NaN when it has none.
    score: f32,
    origin: u32,
    /// [`NO_AUTHOR`] when unknown.
    author: u32,
}

/// The author id of an explanation without one.
const NO_AUTHOR: u32 = u32::MAX;

/// The largest dimension indexed: far above any sentence encoder's (384 to 4,096), and small enough
/// that an integer dot product of 8-bit components cannot overflow (65,536 × 127² < 2³¹).
pub(crate) const MAX_DIMENSION: usize = 65_536;

/// Strings interned to dense ids: origins, authors and score names repeat across rows.
#[derive(Debug, Default)]
struct Names {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    fn find(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(|name| &**name)
    }

    fn heap_bytes(&self) -> usize {
        self.names.iter().map(|name| 2 * name.len() + 48).sum()
    }
}

/// The rows of one embedding model, as a build collects them.
#[derive(Debug, Default)]
struct Part {
    dimension: usize,
    vectors: Vec<i8>,
    scales: Vec<f32>,
    rows: Vec<Row>,
    texts: String,
    /// End of each row's text in `texts`.
    text_ends: Vec<usize>,
    /// (score name id, value), row after row.
    scores: Vec<(u32, f32)>,
    /// End of each row's scores in `scores`.
    score_ends: Vec<usize>,
}

/// A model's embedded explanations, searchable by meaning.
#[derive(Debug)]
pub(crate) struct ExplanationIndex {
    embedding_model: String,
    part: Part,
    /// Whether rows are in layer order, so a layer filter scans only its rows.
    by_layer: bool,
    origins: Names,
    authors: Names,
    score_names: Names,
    counts: IndexCounts,
}

/// What a page shows of an indexed explanation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry<'a> {
    /// The explained neuron.
    pub(crate) neuron: NeuronIndex,
    /// Position in the neuron's explanations.
    pub(crate) explanation: u32,
    /// The text.
    pub(crate) text: &'a str,
    /// The origin.
    pub(crate) origin: &'a str,
    /// The author, when known.
    pub(crate) author: Option<&'a str>,
    /// The [`FILTER_SCORE`], when it has one.
    pub(crate) score: Option<f32>,
    /// Every named score, in stored order.
    pub(crate) scores: Vec<(&'a str, f32)>,
}

impl ExplanationIndex {
    /// Reads every neuron's explanations, a few layers at once on threads of their own, keeping
    /// those embedded by `preferred_model` when any is (the query encoder's), else by the most
    /// common model. Blocking; one blob read per neuron.
    pub(crate) fn build(
        store: &dyn StoreRead,
        source: &SourceEntry,
        preferred_model: Option<&str>,
    ) -> Result<Self, StoreError> {
        if !source.has_neuron_kind(NeuronDataKind::Explanations) {
            return Self::from_explanations(std::iter::empty::<Result<_, StoreError>>(), preferred_model);
        }
        // Reading and decoding blobs are the cost (a generated explanation's holds its prompt and
        // simulations too).
        let neurons = crate::layer_scan::read_layers(store, source, read_layer);
        Self::from_explanations(neurons, preferred_model)
    }

    /// Builds the index from neurons' explanations as read, in layer order; the one path `build`,
    /// the tests and the benchmark share.
    pub(crate) fn from_explanations<E>(
        neurons: impl Iterator<Item = Result<(NeuronIndex, Explanations), E>>,
        preferred_model: Option<&str>,
    ) -> Result<Self, E> {
        let mut builder = Builder::default();
        for neuron in neurons {
            let (neuron, explanations) = neuron?;
            for (position, explanation) in explanations.explanations.iter().enumerate() {
                builder.add(neuron, position as u32, explanation);
            }
        }
        Ok(builder.finish(preferred_model))
    }

    /// The embedding model of the indexed explanations.
    pub(crate) fn embedding_model(&self) -> &str {
        &self.embedding_model
    }

    /// The dimension of the indexed vectors (0 when the index is empty).
    pub(crate) fn dimension(&self) -> usize {
        self.part.dimension
    }

    /// Explanations in the index.
    pub(crate) fn len(&self) -> usize {
        self.part.rows.len()
    }

    /// Whether no explanation is indexed: none has a usable embedding.
    pub(crate) fn is_empty(&self) -> bool {
        self.part.rows.is_empty()
    }

    /// What the build read and left out.
    pub(crate) fn counts(&self) -> &IndexCounts {
        &self.counts
    }

    /// The origins of the indexed explanations, in first-seen order.
    pub(crate) fn origins(&self) -> impl Iterator<Item = &str> {
        self.origins.names.iter().map(|name| &**name)
    }

    /// Bytes the index holds on the heap, near enough (the benchmark reports it).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.heap_parts().iter().map(|(_, bytes)| bytes).sum()
    }

    /// [`heap_bytes`](Self::heap_bytes) by part: vectors, per-row fields, texts, scores, names.
    pub(crate) fn heap_parts(&self) -> [(&'static str, usize); 5] {
        let part = &self.part;
        [
            ("vectors", part.vectors.capacity()),
            ("scales and rows", part.scales.capacity() * size_of::<f32>() + part.rows.capacity() * size_of::<Row>()),
            ("texts", part.texts.capacity() + part.text_ends.capacity() * size_of::<usize>()),
            (
                "scores",
                part.scores.capacity() * size_of::<(u32, f32)>() + part.score_ends.capacity() * size_of::<usize>(),
            ),
            ("names", self.origins.heap_bytes() + self.authors.heap_bytes() + self.score_names.heap_bytes()),
        ]
    }

    /// The explanations most similar to `query` (a unit vector of [`dimension`](Self::dimension)
    /// components) among those passing `filters`: `limit` of them from `offset`. A query of another
    /// dimension finds nothing; callers check it first to say why.
    pub(crate) fn search(&self, query: &[f32], filters: &Filters<'_>, offset: usize, limit: usize) -> Results {
        let part = &self.part;
        if query.len() != part.dimension || part.rows.is_empty() {
            return Results { total: 0, hits: Vec::new() };
        }
        let origin = match filters.origin {
            Some(name) => match self.origins.find(name) {
                Some(id) => Some(id),
                None => return Results { total: 0, hits: Vec::new() },
            },
            None => None,
        };
        // Rows are in layer order (checked at build), so a layer's rows are one range.
        let (start, end) = match (filters.layer, self.by_layer) {
            (Some(layer), true) => (
                part.rows.partition_point(|row| row.layer < layer),
                part.rows.partition_point(|row| row.layer <= layer),
            ),
            _ => (0, part.rows.len()),
        };
        let quantised = TextEmbedding::quantize("", query);
        let scan = scan::Scan {
            query: &quantised.values.iter().map(|&value| i16::from(value)).collect::<Vec<_>>(),
            query_scale: quantised.scale,
            vectors: &part.vectors,
            scales: &part.scales,
            rows: &part.rows,
            filter: scan::RowFilter { min_score: filters.min_score, origin, layer: filters.layer },
        };
        let best = scan.best(start..end, offset.saturating_add(limit));
        let hits = best.ranked.into_iter().skip(offset).take(limit).collect();
        Results { total: best.n_kept, hits }
    }

    /// Every vector read once, as a search reads them, with no dot product (the benchmark's floor).
    pub(crate) fn read_all(&self) -> u64 {
        scan::read_all(&self.part.vectors, self.part.dimension)
    }

    /// What a page shows of row `row`.
    pub(crate) fn entry(&self, row: u32) -> Option<Entry<'_>> {
        let part = &self.part;
        let index = row as usize;
        let stored = part.rows.get(index)?;
        let text_start = if index == 0 { 0 } else { part.text_ends[index - 1] };
        let score_start = if index == 0 { 0 } else { part.score_ends[index - 1] };
        let scores = part.scores.get(score_start..part.score_ends[index])?;
        Some(Entry {
            neuron: NeuronIndex { layer: stored.layer, index: stored.neuron },
            explanation: stored.explanation,
            text: part.texts.get(text_start..part.text_ends[index])?,
            origin: self.origins.name(stored.origin).unwrap_or_default(),
            author: self.authors.name(stored.author),
            score: stored.score.is_finite().then_some(stored.score),
            scores: scores
                .iter()
                .map(|&(name, value)| (self.score_names.name(name).unwrap_or_default(), value))
                .collect(),
        })
    }

    /// The `explanation-search` page of a query already embedded as `vector`.
    pub(crate) fn page(
        &self,
        query: &str,
        vector: &[f32],
        filters: &Filters<'_>,
        offset: usize,
        limit: usize,
    ) -> wire::ExplanationSearchPage {
        let results = self.search(vector, filters, offset, limit);
        wire::ExplanationSearchPage {
            query: query.to_owned(),
            embedding_model: self.embedding_model.clone(),
            indexed: self.len() as u64,
            total: results.total as u64,
            offset: offset as u64,
            explanations: results
                .hits
                .iter()
                .filter_map(|hit| {
                    let entry = self.entry(hit.row)?;
                    Some(wire::ExplanationSearchHitObject {
                        layer: entry.neuron.layer,
                        neuron: entry.neuron.index,
                        explanation_index: entry.explanation,
                        similarity: hit.similarity,
                        text: entry.text.to_owned(),
                        origin: entry.origin.to_owned(),
                        author: entry.author.map(str::to_owned),
                        score: entry.score,
                        scores: entry
                            .scores
                            .iter()
                            .map(|&(name, value)| wire::ScoreObject { name: name.to_owned(), value })
                            .collect(),
                    })
                })
                .collect(),
        }
    }
}

/// Whether `encoder`'s queries can search `index` (of the model `model_name`): 404 `missing_data`
/// when no explanation has a usable embedding, 404 `no_query_encoder` when they were embedded by
/// another model than the encoder's. The website shows the same messages as notices.
pub(crate) fn check_searchable(
    index: &ExplanationIndex,
    encoder: &dyn QueryEncoder,
    model_name: &str,
) -> Result<(), ApiError> {
    if index.is_empty() {
        let counts = index.counts();
        let mut message = format!(
            "none of the {} explanations of model {model_name:?} has a sentence embedding",
            counts.explanations
        );
        if counts.malformed > 0 {
            message.push_str(&format!(" ({} malformed ones were left out)", counts.malformed));
        }
        message.push_str("; `deepdecipher explain` writes explanations with embeddings");
        return Err(ApiError::missing_data(message));
    }
    if encoder.model_name() != index.embedding_model() {
        return Err(ApiError::not_found(
            "no_query_encoder",
            format!(
                "the explanations of model {model_name:?} are embedded with {:?}, but this server embeds queries \
                 with {:?}; start it with `deepdecipher serve --embedder DIR` for {:?}",
                index.embedding_model(),
                encoder.model_name(),
                index.embedding_model()
            ),
        ));
    }
    Ok(())
}

/// `text` embedded by `encoder` for a search of `index` ([`check_searchable`] first). The
/// encoder's failure is ours (500, logged); so is a vector of another dimension than the index's
/// from an encoder of the same name, which only a broken encoder gives.
pub(crate) fn embed_query(
    index: &ExplanationIndex,
    encoder: &dyn QueryEncoder,
    text: &str,
) -> Result<Vec<f32>, ApiError> {
    let vector = encoder
        .embed_query(text)
        .map_err(|message| ApiError::internal_message(format!("embedding a search query: {message}")))?;
    if vector.len() != index.dimension() {
        return Err(ApiError::internal_message(format!(
            "the query encoder {:?} gave {} dimensions; the explanations have {}",
            encoder.model_name(),
            vector.len(),
            index.dimension()
        )));
    }
    Ok(vector)
}

/// Collects rows per embedding model; `finish` keeps one model's.
#[derive(Default)]
struct Builder {
    parts: HashMap<String, Part>,
    origins: Names,
    authors: Names,
    score_names: Names,
    counts: IndexCounts,
}

impl Builder {
    fn add(&mut self, neuron: NeuronIndex, position: u32, explanation: &Explanation) {
        self.counts.explanations += 1;
        let Some(embedding) = &explanation.embedding else {
            self.counts.without_embedding += 1;
            return;
        };
        let part = self.parts.entry(embedding.model.clone()).or_default();
        if part.rows.is_empty() && part.dimension == 0 {
            part.dimension = embedding.values.len();
        }
        let well_formed = !embedding.values.is_empty()
            && embedding.values.len() <= MAX_DIMENSION
            && embedding.values.len() == part.dimension
            && embedding.scale.is_finite()
            && embedding.scale > 0.0;
        if !well_formed {
            self.counts.malformed += 1;
            return;
        }
        part.vectors.extend_from_slice(&embedding.values);
        part.scales.push(embedding.scale);
        part.rows.push(Row {
            layer: neuron.layer,
            neuron: neuron.index,
            explanation: position,
            score: explanation.score(FILTER_SCORE).unwrap_or(f32::NAN),
            origin: self.origins.id(&explanation.origin),
            author: explanation.author.as_deref().map_or(NO_AUTHOR, |author| self.authors.id(author)),
        });
        part.texts.push_str(&explanation.text);
        part.text_ends.push(part.texts.len());
        for score in &explanation.scores {
            part.scores.push((self.score_names.id(&score.name), score.value));
        }
        part.score_ends.push(part.scores.len());
    }

    fn finish(mut self, preferred_model: Option<&str>) -> ExplanationIndex {
        let chosen = match preferred_model.filter(|model| self.parts.contains_key(*model)) {
            Some(model) => Some(model.to_owned()),
            // The most common model; ties by name, so the choice does not depend on hashing.
            None => self
                .parts
                .iter()
                .max_by(|a, b| a.1.rows.len().cmp(&b.1.rows.len()).then(b.0.cmp(a.0)))
                .map(|(model, _)| model.clone()),
        };
        let (embedding_model, mut part) = chosen.and_then(|model| self.parts.remove_entry(&model)).unwrap_or_default();
        let mut other_models: Vec<(String, u64)> =
            self.parts.into_iter().map(|(model, part)| (model, part.rows.len() as u64)).collect();
        other_models.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        // A row of the other models that was malformed for its own model stays counted as malformed.
        self.counts.other_models = other_models;
        self.counts.indexed = part.rows.len() as u64;
        // Growth by doubling leaves up to half of each array unused: a quarter of the index at
        // gpt2-xl's size.
        part.vectors.shrink_to_fit();
        part.scales.shrink_to_fit();
        part.rows.shrink_to_fit();
        part.texts.shrink_to_fit();
        part.text_ends.shrink_to_fit();
        part.scores.shrink_to_fit();
        part.score_ends.shrink_to_fit();
        let by_layer = part.rows.windows(2).all(|pair| pair[0].layer <= pair[1].layer);
        ExplanationIndex {
            embedding_model,
            part,
            by_layer,
            origins: self.origins,
            authors: self.authors,
            score_names: self.score_names,
            counts: self.counts,
        }
    }
}

/// Every neuron of a layer that has explanations, with them.
fn read_layer(
    store: &dyn StoreRead,
    source: &SourceEntry,
    layer: u32,
) -> Result<Vec<(NeuronIndex, Explanations)>, StoreError> {
    let mut neurons = Vec::new();
    for index in 0..source.info.units_per_layer as u32 {
        if let Some(NeuronRecord::Explanations(explanations)) =
            store.neuron_record(source, layer, index, NeuronDataKind::Explanations)?
        {
            neurons.push((NeuronIndex { layer, index }, explanations));
        }
    }
    Ok(neurons)
}

#[cfg(test)]
mod tests;
