//! Neuronpedia's public exports (`neuronpedia-datasets`, `v1/{modelId}/{sourceId}/`): `model.jsonl`,
//! an optional `source.jsonl`, and gzipped JSONL batches of 1024 features each under `features/`,
//! `explanations/` and `activations/`. Both column variants are read: the database export and the
//! one `convert-saedashboard-to-neuronpedia-export.py` writes (full rows with ISO timestamps,
//! `dataIndex`, `qualifyingTokenIndex`...); indices may be numbers or strings.
//!
//! One work item per batch number: the three files of that batch, fetched together. A missing
//! features batch is a missing item; missing explanations or activations are just absent.
//! Batches are found by probing `features/batch-0…` (each is downloaded once in the plan, and the
//! last one read for the source's width) unless [`NeuronpediaConfig::batches`] says how many.
//!
//! What goes where: activations → [`NeuronExamples`](dd_data::NeuronExamples) (`binMin` -1 or
//! absent: the top group; else a quantile band of `[binMin, binMax]`); `pos_*`/`neg_*` →
//! [`LogitAttribution`]; `topkCosSim*` → [`SimilarNeurons`] (same layer and source, the unit itself
//! left out; skipped when `source.jsonl` says the indices belong to another source); explanations
//! → [`Explanations`] (origin `neuronpedia`, author the explanation model).
//!
//! Skipped, because no dd-data kind holds them truthfully: `frac_nonzero` and the activation
//! histograms (`NeuronStats` needs count, extremes, mean and variance over all tokens, which the
//! export lacks), `logits_hist_*`, `neuron_alignment_*`, `correlated_*`, `decoder_weights_dist`,
//! `vector`, `maxActApprox`, `umap_*`, explanation embeddings (another embedding model than ours)
//! and `typeName`, and per-example `dfa*`, `lossValues`, `logitContributions`, `binContains`.

use std::collections::BTreeMap;
use std::sync::RwLock;

use dd_data::{Explanation, Explanations, NamedScore, NeuronRecord, SimilarNeuron, SimilarNeurons, SourceInfo};
use serde::Deserialize;

use crate::error::ImportError;
use crate::fetch::{Fetcher, gunzip_if_gzipped};
use crate::formats::neuronpedia_mapping::{
    Number, PartialModel, PublishedExample, SourceId, discover_batches, examples_of, is_mlp_set, logit_attribution,
    model_metadata, nullable, parse_jsonl, parse_source_id,
};
use crate::job::{ImportPlan, ImportRequest, ImportedUnit, Importer, ItemOutcome, WorkItem};
use crate::tokens::TokenMap;

/// Features per export batch, as Neuronpedia writes them.
pub const FEATURES_PER_BATCH: u32 = 1024;

/// How to read a Neuronpedia export.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronpediaConfig {
    /// How many batches the export has; `None`: probe for them.
    pub batches: Option<u32>,
    /// The source set holds MLP neurons (they go into the `mlp` source); a set named `mlp` does
    /// whatever this says.
    pub mlp_neurons: bool,
}

/// The importer of Neuronpedia exports (format `neuronpedia`).
#[derive(Debug)]
pub struct NeuronpediaImporter {
    config: NeuronpediaConfig,
    /// What the plan found and every item needs (the importer is planned before items run).
    planned: RwLock<Option<Planned>>,
}

#[derive(Debug, Clone)]
struct Planned {
    source_id: String,
    layer: u32,
    units_per_layer: Option<u32>,
    similar_in_same_source: bool,
}

#[derive(Deserialize)]
struct ModelRow {
    id: String,
    #[serde(default)]
    layers: Option<Number>,
    #[serde(default, rename = "neuronsPerLayer")]
    neurons_per_layer: Option<Number>,
    #[serde(default)]
    dimension: Option<Number>,
}

#[derive(Deserialize)]
struct SourceRow {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    dataset: Option<String>,
    #[serde(default, rename = "cosSimMatchSourceId")]
    cos_sim_match_source_id: Option<String>,
}

#[derive(Deserialize)]
struct FeatureRow {
    layer: String,
    index: Number,
    #[serde(default, deserialize_with = "nullable")]
    pos_str: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pos_values: Vec<f32>,
    #[serde(default, deserialize_with = "nullable")]
    neg_str: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    neg_values: Vec<f32>,
    #[serde(default, rename = "topkCosSimIndices", deserialize_with = "nullable")]
    topk_cos_sim_indices: Vec<Number>,
    #[serde(default, rename = "topkCosSimValues", deserialize_with = "nullable")]
    topk_cos_sim_values: Vec<f32>,
}

#[derive(Deserialize)]
struct ActivationRow {
    layer: String,
    index: Number,
    #[serde(default, deserialize_with = "nullable")]
    tokens: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    values: Vec<f32>,
    #[serde(default, rename = "maxValueTokenIndex")]
    max_value_token_index: Option<Number>,
    #[serde(default, rename = "dataIndex")]
    data_index: Option<Number>,
    #[serde(default, rename = "binMin")]
    bin_min: Option<f32>,
    #[serde(default, rename = "binMax")]
    bin_max: Option<f32>,
}

#[derive(Deserialize)]
struct ExplanationRow {
    layer: String,
    index: Number,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, rename = "explanationModelName")]
    explanation_model_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    scores: Vec<ScoreRow>,
}

/// A score as the API nests it in an explanation (`ExplanationScore`), when an export has them.
#[derive(Deserialize)]
struct ScoreRow {
    value: f32,
    #[serde(default, rename = "explanationScoreTypeName")]
    type_name: Option<String>,
}

/// One unit's records as a batch's three files build them up.
#[derive(Default)]
struct UnitParts {
    features: Option<FeatureRow>,
    examples: Vec<PublishedExample>,
    explanations: Vec<Explanation>,
}

impl NeuronpediaImporter {
    /// An importer reading exports as `config` says.
    pub fn new(config: NeuronpediaConfig) -> Self {
        Self { config, planned: RwLock::new(None) }
    }
}

/// The path of batch `n` of one of the export's three kinds of file.
fn batch_path(kind: &str, n: u32) -> String {
    format!("{kind}/batch-{n}.jsonl.gz")
}

/// The batch number of an item key (`features/batch-3.jsonl.gz`).
fn batch_of(key: &str) -> Option<u32> {
    key.strip_prefix("features/batch-")?.strip_suffix(".jsonl.gz")?.parse().ok()
}

/// A file of the export, gunzipped; `None` when the publisher has none.
fn fetch_rows<T: for<'de> Deserialize<'de>>(fetcher: &Fetcher, path: &str) -> Result<Option<Vec<T>>, String> {
    let Some(bytes) = fetcher.get(path).map_err(|error| error.to_string())? else { return Ok(None) };
    let bytes = gunzip_if_gzipped(bytes).map_err(|reason| format!("{path}: {reason}"))?;
    parse_jsonl(path, &bytes).map(Some)
}

impl Importer for NeuronpediaImporter {
    fn format(&self) -> &'static str {
        "neuronpedia"
    }

    fn plan(&self, fetcher: &Fetcher, request: &ImportRequest) -> Result<ImportPlan, ImportError> {
        let location = fetcher.location().describe();
        let dataset_error = |reason: String| ImportError::Dataset(format!("neuronpedia export {location}: {reason}"));
        let model: ModelRow = fetch_rows(fetcher, "model.jsonl")
            .map_err(dataset_error)?
            .ok_or_else(|| dataset_error("no model.jsonl".to_owned()))?
            .into_iter()
            .next()
            .ok_or_else(|| dataset_error("model.jsonl is empty".to_owned()))?;
        let source: Option<SourceRow> =
            fetch_rows(fetcher, "source.jsonl").map_err(dataset_error)?.and_then(|rows| rows.into_iter().next());

        let (n_batches, last) =
            discover_batches(fetcher, self.config.batches, &|n| batch_path("features", n)).map_err(dataset_error)?;
        let last_rows: Option<(u32, Result<Vec<FeatureRow>, String>)> = last.map(|(n, bytes)| {
            let path = batch_path("features", n);
            let rows = gunzip_if_gzipped(bytes)
                .map_err(|reason| format!("{path}: {reason}"))
                .and_then(|bytes| parse_jsonl::<FeatureRow>(&path, &bytes));
            (n, rows)
        });
        // The source id: what source.jsonl says, else what the features' rows say.
        let source_id = source
            .as_ref()
            .and_then(|source| source.id.clone())
            .or_else(|| {
                last_rows.as_ref().and_then(|(_, rows)| rows.as_ref().ok()?.first().map(|row| row.layer.clone()))
            })
            .ok_or_else(|| dataset_error("neither source.jsonl nor a features batch names the source".to_owned()))?;
        let SourceId { layer, set } = parse_source_id(&source_id).map_err(dataset_error)?;
        let mlp = is_mlp_set(&set, self.config.mlp_neurons);

        let model_layers = model.layers.as_ref().and_then(Number::value).unwrap_or(0);
        let neurons_per_layer = model.neurons_per_layer.as_ref().and_then(Number::value).unwrap_or(0);
        // The width: the largest index of the last batch, plus one; a whole last batch when it
        // cannot be read (its item will fail and say why).
        let units_found = match &last_rows {
            Some((_, Ok(rows))) => rows.iter().filter_map(|row| row.index.value()).max().map_or(0, |max| max + 1),
            Some((n, Err(_))) => u64::from(n + 1) * u64::from(FEATURES_PER_BATCH),
            None => 0,
        };
        let units_per_layer = if mlp && neurons_per_layer > 0 { neurons_per_layer } else { units_found.max(1) };
        let n_layers = model_layers.max(u64::from(layer) + 1);
        let mut metadata = model_metadata(PartialModel {
            name: &model.id,
            n_layers: model_layers,
            d_mlp: neurons_per_layer,
            d_model: model.dimension.as_ref().and_then(Number::value).unwrap_or(0),
            dataset: source.as_ref().and_then(|source| source.dataset.as_deref()),
            data_source: format!("neuronpedia export {location}"),
        });
        let source_info = if mlp {
            // The `mlp` source is the model's own: its shape is the metadata's.
            metadata.n_layers = n_layers;
            metadata.d_mlp = units_per_layer;
            metadata.mlp_source()
        } else {
            SourceInfo { name: set, n_layers, units_per_layer }
        };

        let items = if request.wants_layer(layer) {
            (0..n_batches)
                .filter(|&n| request.wants_unit(n * FEATURES_PER_BATCH))
                .map(|n| WorkItem { key: batch_path("features", n) })
                .collect()
        } else {
            Vec::new()
        };
        let similar_in_same_source = source
            .as_ref()
            .and_then(|source| source.cos_sim_match_source_id.as_deref())
            .is_none_or(|matched| matched.is_empty() || matched == source_id);
        *self.planned.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Planned { source_id, layer, units_per_layer: request.units_per_layer, similar_in_same_source });
        Ok(ImportPlan { metadata, source: source_info, items, model_records: Vec::new() })
    }

    fn import_item(&self, fetcher: &Fetcher, item: &WorkItem, tokens: &TokenMap) -> Result<ItemOutcome, String> {
        let planned = self
            .planned
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| "the importer was not planned".to_owned())?;
        let n = batch_of(&item.key).ok_or_else(|| format!("{} is not a features batch", item.key))?;
        let Some(features) = fetch_rows::<FeatureRow>(fetcher, &batch_path("features", n))? else {
            return Ok(ItemOutcome::Missing);
        };
        let activations = fetch_rows::<ActivationRow>(fetcher, &batch_path("activations", n))?.unwrap_or_default();
        let explanations = fetch_rows::<ExplanationRow>(fetcher, &batch_path("explanations", n))?.unwrap_or_default();

        let mut units: BTreeMap<u32, UnitParts> = BTreeMap::new();
        let unit_of = |layer: &str, index: &Number, what: &str| -> Result<u32, String> {
            if layer != planned.source_id {
                return Err(format!("a {what} row of source {layer:?} in the export of {:?}", planned.source_id));
            }
            index.index(&format!("{what} index"))
        };
        for row in features {
            let index = unit_of(&row.layer, &row.index, "feature")?;
            units.entry(index).or_default().features = Some(row);
        }
        for row in activations {
            let index = unit_of(&row.layer, &row.index, "activation")?;
            let band = match (row.bin_min, row.bin_max) {
                (Some(lower), Some(upper)) if lower != -1.0 => Some((lower, upper)),
                _ => None,
            };
            let max_token_index =
                row.max_value_token_index.map(|index| index.index("maxValueTokenIndex")).transpose()?;
            units.entry(index).or_default().examples.push(PublishedExample {
                tokens: row.tokens,
                values: row.values,
                max_token_index,
                dataset_index: row.data_index.as_ref().and_then(Number::value),
                band,
            });
        }
        for row in explanations {
            let index = unit_of(&row.layer, &row.index, "explanation")?;
            let Some(text) = row.description.filter(|text| !text.trim().is_empty()) else { continue };
            let scores = row
                .scores
                .into_iter()
                .filter(|score| score.value.is_finite())
                .map(|score| NamedScore {
                    name: score.type_name.unwrap_or_else(|| "neuronpedia_score".to_owned()),
                    value: score.value,
                })
                .collect();
            units.entry(index).or_default().explanations.push(Explanation {
                text,
                origin: "neuronpedia".to_owned(),
                author: row.explanation_model_name.filter(|name| !name.is_empty()),
                scores,
                ..Explanation::default()
            });
        }

        let mut imported = Vec::with_capacity(units.len());
        for (index, parts) in units {
            if planned.units_per_layer.is_some_and(|limit| index >= limit) {
                continue;
            }
            let mut records = Vec::new();
            if !parts.examples.is_empty() {
                records.push(NeuronRecord::Examples(examples_of(index, parts.examples, tokens)?));
            }
            if let Some(features) = &parts.features {
                let logits = logit_attribution(
                    index,
                    (&features.pos_str, &features.pos_values),
                    (&features.neg_str, &features.neg_values),
                    tokens,
                )?;
                records.extend(logits.map(NeuronRecord::Logits));
                if planned.similar_in_same_source {
                    records.extend(similar_neurons(index, planned.layer, features)?.map(NeuronRecord::Similar));
                }
            }
            if !parts.explanations.is_empty() {
                records.push(NeuronRecord::Explanations(Explanations { explanations: parts.explanations }));
            }
            if !records.is_empty() {
                imported.push(ImportedUnit { layer: planned.layer, index, records });
            }
        }
        Ok(ItemOutcome::Imported(imported))
    }
}

/// The features nearest by decoder cosine similarity, the unit itself left out (it tops its own
/// list at 1.0).
fn similar_neurons(index: u32, layer: u32, features: &FeatureRow) -> Result<Option<SimilarNeurons>, String> {
    let (indices, values) = (&features.topk_cos_sim_indices, &features.topk_cos_sim_values);
    if indices.len() != values.len() {
        return Err(format!(
            "unit {index}: topkCosSimIndices has {} entries and topkCosSimValues {}",
            indices.len(),
            values.len()
        ));
    }
    let mut neurons = Vec::with_capacity(indices.len());
    for (neighbour, &similarity) in indices.iter().zip(values) {
        let neighbour = neighbour.index("topkCosSimIndices entry")?;
        if neighbour == index {
            continue;
        }
        if !similarity.is_finite() {
            return Err(format!("unit {index}: topkCosSimValues has a value that is not a finite number"));
        }
        neurons.push(SimilarNeuron { layer, index: neighbour, similarity });
    }
    if neurons.is_empty() {
        return Ok(None);
    }
    Ok(Some(SimilarNeurons { neurons }))
}
