//! The original DeepDecipher's `data.db` (spec `original-deepdecipher.md` §2–§3): one model's
//! neurons, one work item per neuron.
//!
//! What maps where:
//! - `Neuroscope` neuron pages → [`NeuronExamples`] (one top group, tokens mapped to ids);
//! - `NeuronExplainer` pages → [`Explanations`] (origin `openai`, author `gpt-4`, score
//!   `ev_correlation_score`);
//! - `Neuron2Graph` graphs → [`NeuronGraph`] (quotes the original kept around labels removed);
//! - `NeuronStore`: per-neuron similar neurons → [`SimilarNeurons`], the model's store →
//!   [`TokenIndex`].
//!
//! What is skipped, and said so in [`OriginalDbImporter::skipped`]: the neuroscope model and layer
//! pages (activation ranges that follow from the examples), `Json` data types (postcard-encoded
//! `serde_json::Value`, which not even the original can read back), data types of unknown type,
//! a second data type of a type already chosen, and the similarity threshold (`type_args`).

mod postcard;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use dd_data::{
    Explanations, GraphNode, ModelMetadata, ModelRecord, NeuronExamples, NeuronGraph, NeuronIndex, NeuronRecord,
    Provenance, SimilarNeuron, SimilarNeurons, TokenIndex, TokenIndexEntry, normalise_token,
};
use dd_store::{OriginalDatabase, OriginalModel};

use crate::error::ImportError;
use crate::fetch::{DatasetLocation, Fetcher};
use crate::job::{ImportPlan, ImportRequest, ImportedUnit, Importer, ItemOutcome, WorkItem};
use crate::tokens::TokenMap;

/// The file name the original gives its database, looked for when a directory is given.
pub const DATABASE_FILE: &str = "data.db";

/// Imports the original DeepDecipher's database; it reads the file itself, so the fetcher that
/// [`run_import`](crate::run_import) passes is not used.
pub struct OriginalDbImporter {
    database: OriginalDatabase,
    /// What the last plan chose, for the items.
    selection: RwLock<Option<Selection>>,
    /// What the last plan left out, and why.
    skipped: RwLock<Vec<String>>,
}

/// The model and data types a plan chose (row ids in the original's database).
#[derive(Debug, Clone, Copy)]
struct Selection {
    model_id: i64,
    neuroscope: Option<i64>,
    explainer: Option<i64>,
    graph: Option<i64>,
    similar: Option<i64>,
}

impl OriginalDbImporter {
    /// Opens the database at `location`: the `data.db` file itself, or a directory holding one.
    /// The original's database is a local SQLite file, so a URL is refused.
    pub fn open(location: &DatasetLocation) -> Result<Self, ImportError> {
        let path = match location {
            DatasetLocation::Http(_) => {
                return Err(ImportError::Invalid(format!(
                    "the original DeepDecipher's database is a local SQLite file, not an HTTP dataset: \
                     download {} (formats::prepare does) and give its path",
                    location.describe()
                )));
            }
            DatasetLocation::Directory(path) if path.is_dir() => path.join(DATABASE_FILE),
            DatasetLocation::Directory(path) => path.clone(),
        };
        let database = OriginalDatabase::open(&path).map_err(|error| ImportError::Dataset(error.to_string()))?;
        Ok(Self { database, selection: RwLock::new(None), skipped: RwLock::new(Vec::new()) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.database.path()
    }

    /// What the last plan left out of the database, one sentence each.
    pub fn skipped(&self) -> Vec<String> {
        self.skipped.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Importer for OriginalDbImporter {
    fn format(&self) -> &'static str {
        "deepdecipher-db"
    }

    fn skipped(&self) -> Vec<String> {
        OriginalDbImporter::skipped(self)
    }

    fn plan(&self, _fetcher: &Fetcher, request: &ImportRequest) -> Result<ImportPlan, ImportError> {
        let dataset_error = |error: dd_store::StoreError| ImportError::Dataset(error.to_string());
        let models = self.database.models().map_err(dataset_error)?;
        let model = choose_model(&models, request.model_name.as_deref(), self.path())?;
        let mut skipped = vec![format!(
            "the neuroscope model and layer pages of {:?}: activation ranges that follow from the examples",
            model.name
        )];
        let mut selection =
            Selection { model_id: model.id, neuroscope: None, explainer: None, graph: None, similar: None };
        let mut store_type = None;
        for data_type in &model.data_types {
            let slot = match data_type.type_name.as_str() {
                "Neuroscope" => &mut selection.neuroscope,
                "NeuronExplainer" => &mut selection.explainer,
                "Neuron2Graph" => &mut selection.graph,
                "NeuronStore" => &mut selection.similar,
                "Json" => {
                    skipped.push(format!(
                        "data type {:?} (Json): postcard-encoded JSON, which not even the original can read back",
                        data_type.name
                    ));
                    continue;
                }
                other => {
                    skipped.push(format!("data type {:?}: unknown type {other:?}", data_type.name));
                    continue;
                }
            };
            match slot {
                Some(_) => skipped.push(format!(
                    "data type {:?}: a second {} data type; the first one is imported",
                    data_type.name, data_type.type_name
                )),
                None => {
                    *slot = Some(data_type.id);
                    if data_type.type_name == "NeuronStore" {
                        store_type = Some(data_type);
                    }
                }
            }
        }

        let mut model_records = Vec::new();
        if let Some(data_type) = store_type {
            match self.database.model_blob(model.id, data_type.id).map_err(dataset_error)? {
                None => skipped.push(format!("data type {:?}: the model has no neuron store", data_type.name)),
                Some(blob) => match postcard::neuron_store(&blob) {
                    Ok(store) => {
                        let (index, outside) = token_index(store, model.num_layers, model.neurons_per_layer);
                        if outside > 0 {
                            skipped.push(format!(
                                "{outside} neuron store entries outside the model's {} × {} neurons",
                                model.num_layers, model.neurons_per_layer
                            ));
                        }
                        model_records.push(ModelRecord::TokenIndex(index));
                    }
                    Err(error) => skipped.push(format!("the neuron store of data type {:?}: {error}", data_type.name)),
                },
            }
        }
        for line in &skipped {
            tracing::info!(database = %self.path().display(), "skipped: {line}");
        }

        let metadata = metadata(model, self.path());
        let source = metadata.mlp_source();
        let n_layers = u32::try_from(model.num_layers).unwrap_or(u32::MAX);
        let n_neurons = u32::try_from(model.neurons_per_layer).unwrap_or(u32::MAX);
        let items = (0..n_layers)
            .filter(|&layer| request.wants_layer(layer))
            .flat_map(|layer| {
                (0..n_neurons)
                    .filter(|&neuron| request.wants_unit(neuron))
                    .map(move |neuron| WorkItem { key: format!("{layer}/{neuron}") })
            })
            .collect();
        *self.selection.write().unwrap_or_else(PoisonError::into_inner) = Some(selection);
        *self.skipped.write().unwrap_or_else(PoisonError::into_inner) = skipped;
        Ok(ImportPlan { metadata, source, items, model_records })
    }

    fn import_item(&self, _fetcher: &Fetcher, item: &WorkItem, tokens: &TokenMap) -> Result<ItemOutcome, String> {
        let selection = (*self.selection.read().unwrap_or_else(PoisonError::into_inner))
            .ok_or_else(|| "the import was not planned".to_owned())?;
        let (layer, neuron) = item
            .key
            .split_once('/')
            .and_then(|(layer, neuron)| Some((layer.parse::<u32>().ok()?, neuron.parse::<u32>().ok()?)))
            .ok_or_else(|| format!("{:?} is not a layer/neuron key", item.key))?;
        let blob = |data_type: Option<i64>| -> Result<Option<Vec<u8>>, String> {
            match data_type {
                Some(id) => self.database.neuron_blob(selection.model_id, id, layer, neuron).map_err(|e| e.to_string()),
                None => Ok(None),
            }
        };
        let mut records = Vec::new();
        if let Some(bytes) = blob(selection.neuroscope)? {
            let page = postcard::neuroscope_page(&bytes).map_err(|error| format!("neuroscope page: {error}"))?;
            if (page.layer, page.neuron) != (layer, neuron) {
                return Err(format!("neuroscope page: it says it is neuron {}/{}", page.layer, page.neuron));
            }
            if !page.texts.is_empty() {
                records.push(NeuronRecord::Examples(examples(page, tokens)?));
            }
        }
        if let Some(bytes) = blob(selection.explainer)? {
            let page = postcard::explainer_page(&bytes).map_err(|error| format!("neuron explainer page: {error}"))?;
            records.push(NeuronRecord::Explanations(Explanations {
                explanations: vec![super::openai::scored_explanation(page.explanation, page.score)],
            }));
        }
        if let Some(bytes) = blob(selection.graph)? {
            let graph = postcard::graph(&bytes).map_err(|error| format!("neuron2graph graph: {error}"))?;
            records.push(NeuronRecord::Graph(
                neuron_graph(graph).map_err(|error| format!("neuron2graph graph: {error}"))?,
            ));
        }
        if let Some(bytes) = blob(selection.similar)? {
            let similar = postcard::similar_neurons(&bytes).map_err(|error| format!("similar neurons: {error}"))?;
            let neurons: Vec<SimilarNeuron> = similar
                .into_iter()
                .map(|s| SimilarNeuron { layer: s.layer, index: s.neuron, similarity: s.similarity })
                .collect();
            // The original stores them unsorted; ours are most similar first.
            records.push(NeuronRecord::Similar(SimilarNeurons::from_unsorted(neurons)));
        }
        if records.is_empty() {
            return Ok(ItemOutcome::Missing);
        }
        for record in &records {
            record.validate().map_err(|error| format!("{}: {error}", record.kind().name()))?;
        }
        Ok(ItemOutcome::Imported(vec![ImportedUnit { layer, index: neuron, records }]))
    }
}

/// The model the request names, or the database's only one.
fn choose_model<'a>(
    models: &'a [OriginalModel],
    name: Option<&str>,
    path: &Path,
) -> Result<&'a OriginalModel, ImportError> {
    if let Some(model) = name.and_then(|name| models.iter().find(|model| model.name == name)) {
        return Ok(model);
    }
    match models {
        [only] => Ok(only),
        [] => Err(ImportError::Dataset(format!("{} holds no model", path.display()))),
        _ => {
            let names: Vec<&str> = models.iter().map(|model| model.name.as_str()).collect();
            Err(ImportError::Invalid(format!(
                "{} holds several models ({}): name one with --model-name",
                path.display(),
                names.join(", ")
            )))
        }
    }
}

fn metadata(model: &OriginalModel, path: &Path) -> ModelMetadata {
    ModelMetadata {
        name: model.name.clone(),
        // The original does not record the family, the residual width or the context length.
        architecture: String::new(),
        n_layers: model.num_layers,
        d_mlp: model.neurons_per_layer,
        d_model: 0,
        activation_function: model.activation_function.clone(),
        dataset: model.dataset.clone(),
        training_dataset: None,
        n_parameters: model.num_total_parameters,
        context_length: 0,
        provenance: Provenance {
            data_source: format!("original DeepDecipher database {}", PathBuf::from(path).display()),
            model_source: None,
            weights: None,
            tokens_recorded: 0,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            recorded_at: dd_data::time::now_rfc3339(),
        },
    }
}

/// A neuroscope page's texts as one top group, in the page's order (highest first).
fn examples(page: postcard::NeuroscopePage, tokens: &TokenMap) -> Result<NeuronExamples, String> {
    let texts = page.texts.into_iter().map(|t| (t.data_index, t.tokens, t.activations, t.max_activating_token_index));
    super::neuroscope::top_group(texts, tokens).map_err(|error| format!("neuroscope page: {error}"))
}

fn neuron_graph(graph: postcard::Graph) -> Result<NeuronGraph, String> {
    let to_u32 = |value: u64, what: &str| u32::try_from(value).map_err(|_| format!("{what} {value} is too large"));
    let subgraph_indices =
        graph.subgraph_indices.into_iter().map(|index| to_u32(index, "subgraph index")).collect::<Result<_, _>>()?;
    let mut nodes = Vec::with_capacity(graph.nodes.len());
    for node in graph.nodes {
        nodes.push(GraphNode {
            token: unquote(&node.token),
            token_id: None,
            required: node.required.into_iter().map(|r| to_u32(r, "required node")).collect::<Result<_, _>>()?,
            importance: node.importance,
            activation: None,
            // The original's graph blob keeps no pattern ends (only its DOT file's pen widths did).
            is_end: false,
        });
    }
    Ok(NeuronGraph { subgraph_indices, nodes, scores: None })
}

/// A label as the original stored it, a quoted DOT id (`"\"she\""`), back to the token. The
/// inside went through three encodings, undone in reverse: DOT quoting (`\"`), graphviz's
/// backslash doubling, and N2G's JSON escapes (`\n`, `\u0027`) or `'  '` for a token of spaces,
/// which N2G skipped for a token with a quote. It reads labels as `dd-n2g`'s DOT reader does.
pub(crate) fn unquote(label: &str) -> String {
    let inner = label.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')).unwrap_or(label);
    let mut text = String::with_capacity(inner.len());
    let mut characters = inner.chars().peekable();
    while let Some(character) = characters.next() {
        // `\"` is DOT's quote, `\\` graphviz's doubling of one backslash: each is one character.
        match (character, characters.peek()) {
            ('\\', Some(&next @ ('"' | '\\'))) => {
                characters.next();
                text.push(next);
            }
            _ => text.push(character),
        }
    }
    dd_data::n2g_label::token_of_label(&text)
}

/// The neuron store as a token index: keys normalised as every token index is (merging those
/// that normalise alike), neurons sorted; entries outside the model are dropped and counted.
fn token_index(store: postcard::NeuronStore, n_layers: u64, n_neurons: u64) -> (TokenIndex, usize) {
    let mut merged: BTreeMap<String, [Vec<NeuronIndex>; 2]> = BTreeMap::new();
    let mut outside = 0;
    for (section, entries) in [store.activating, store.important].into_iter().enumerate() {
        for (token, neurons) in entries {
            let slot = &mut merged.entry(normalise_token(&token)).or_default()[section];
            for (layer, index) in neurons {
                if u64::from(layer) >= n_layers || u64::from(index) >= n_neurons {
                    outside += 1;
                    continue;
                }
                slot.push(NeuronIndex { layer, index });
            }
        }
    }
    let entries = merged
        .into_iter()
        .map(|(token, [mut activating, mut important])| {
            for neurons in [&mut activating, &mut important] {
                neurons.sort_by_key(|n| (n.layer, n.index));
                neurons.dedup();
            }
            TokenIndexEntry { token, activating, important }
        })
        .collect();
    (TokenIndex { entries }, outside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_lose_the_quotes_the_original_kept() {
        assert_eq!(unquote("\"she\""), "she");
        assert_eq!(unquote("\" the\""), " the");
        assert_eq!(unquote("\"say \\\"hi\\\"\""), "say \"hi\"");
        assert_eq!(unquote("bare"), "bare");
        assert_eq!(unquote("\""), "\"");
        // A newline: JSON-escaped by N2G, its backslash doubled by graphviz.
        assert_eq!(unquote(r#""\\n""#), "\n");
        assert_eq!(unquote(r#""' '""#), " ");
        assert_eq!(unquote(r#""\\u0027 \\u0027""#), "' '");
        assert_eq!(unquote(r#""caf\\u00e9 \\ud83d\\ude00""#), "café 😀");
        assert_eq!(unquote(r#""a\\qb\\""#), r"a\qb\");
    }

    #[test]
    fn the_neuron_store_becomes_a_sorted_normalised_index() {
        let store = postcard::NeuronStore {
            activating: vec![(" She".into(), vec![(1, 0), (0, 2), (1, 0)]), ("she".into(), vec![(0, 1)])],
            important: vec![("dog".into(), vec![(0, 0), (9, 9)])],
        };
        let (index, outside) = token_index(store, 2, 3);
        assert_eq!(outside, 1);
        let n = |layer, index| NeuronIndex { layer, index };
        assert_eq!(
            index.entries,
            [
                TokenIndexEntry { token: "dog".into(), activating: vec![], important: vec![n(0, 0)] },
                TokenIndexEntry { token: "she".into(), activating: vec![n(0, 1), n(0, 2), n(1, 0)], important: vec![] },
            ]
        );
    }
}
