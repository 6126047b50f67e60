//! SAEDashboard's Neuronpedia runner output: `batch-{n}.json` files, each
//! `{model_id, layer, sae_set, [sae_id_suffix], features: [...]}`, and an optional
//! `skipped_indexes.json` naming the dead features it left out.
//!
//! One work item per batch file. Batches are found by probing `batch-0.json…` unless
//! [`SaeDashboardConfig::batches`] says how many; the source's width is
//! [`SaeDashboardConfig::units_per_layer`] when given, else one past the largest feature index of
//! the last batch and of `skipped_indexes.json`.
//!
//! What goes where: `activations` → [`NeuronExamples`](dd_data::NeuronExamples) (`bin_min` -1: the
//! top group; else a quantile band of `[bin_min, bin_max]`; `qualifying_token_index` the example's
//! token; no dataset index is published, so it is 0); `pos_*`/`neg_*` →
//! [`LogitAttribution`](dd_data::LogitAttribution). The source is named after `sae_set` (and
//! `sae_id_suffix`), unless the set is MLP neurons.
//!
//! Skipped, because no dd-data kind holds them truthfully: `frac_nonzero`, `freq_hist_*` and
//! `logits_hist_*` (`NeuronStats` needs count, extremes, mean and variance), `neuron_alignment_*`,
//! `correlated_neurons_*`, `correlated_features_*` (Pearson correlations, not similarities in
//! [0, 1]), `decoder_weights_dist`, `vector`, and per-example `bin_contains`, `dfa_*`,
//! `loss_values`, `logit_contributions`. The runner publishes no explanations.

use std::sync::RwLock;

use dd_data::{NeuronRecord, SourceInfo};
use serde::Deserialize;

use crate::error::ImportError;
use crate::fetch::{Fetcher, gunzip_if_gzipped};
use crate::formats::neuronpedia_mapping::{
    Number, PartialModel, PublishedExample, discover_batches, examples_of, is_mlp_set, logit_attribution,
    model_metadata, nullable, source_name,
};
use crate::job::{ImportPlan, ImportRequest, ImportedUnit, Importer, ItemOutcome, WorkItem};
use crate::tokens::TokenMap;

/// How to read SAEDashboard batches.
#[derive(Debug, Clone, PartialEq)]
pub struct SaeDashboardConfig {
    /// How many batch files there are; `None`: probe for them.
    pub batches: Option<u32>,
    /// The SAE's width (features per layer), when known.
    pub units_per_layer: Option<u64>,
    /// The set holds MLP neurons (they go into the `mlp` source).
    pub mlp_neurons: bool,
}

/// The importer of SAEDashboard batches (format `saedashboard`).
#[derive(Debug)]
pub struct SaeDashboardImporter {
    config: SaeDashboardConfig,
    /// What the plan found and every item needs.
    planned: RwLock<Option<Planned>>,
}

#[derive(Debug, Clone)]
struct Planned {
    layer: u32,
    units_per_layer: Option<u32>,
}

#[derive(Deserialize)]
struct BatchFile {
    model_id: String,
    layer: Number,
    sae_set: String,
    #[serde(default)]
    sae_id_suffix: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    features: Vec<FeatureEntry>,
}

#[derive(Deserialize)]
struct FeatureEntry {
    feature_index: Number,
    #[serde(default, deserialize_with = "nullable")]
    pos_str: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pos_values: Vec<f32>,
    #[serde(default, deserialize_with = "nullable")]
    neg_str: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    neg_values: Vec<f32>,
    #[serde(default)]
    dataset: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    activations: Vec<ActivationEntry>,
}

#[derive(Deserialize)]
struct ActivationEntry {
    #[serde(default)]
    bin_min: Option<f32>,
    #[serde(default)]
    bin_max: Option<f32>,
    #[serde(default, deserialize_with = "nullable")]
    tokens: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    values: Vec<f32>,
    #[serde(default)]
    qualifying_token_index: Option<Number>,
}

#[derive(Deserialize)]
struct SkippedIndexes {
    #[serde(default, deserialize_with = "nullable")]
    skipped_indexes: Vec<Number>,
}

impl SaeDashboardImporter {
    /// An importer reading batches as `config` says.
    pub fn new(config: SaeDashboardConfig) -> Self {
        Self { config, planned: RwLock::new(None) }
    }
}

/// The path of batch `n`.
fn batch_path(n: u32) -> String {
    format!("batch-{n}.json")
}

/// A batch file parsed, or why not.
fn parse_batch(path: &str, bytes: Vec<u8>) -> Result<BatchFile, String> {
    let bytes = gunzip_if_gzipped(bytes).map_err(|reason| format!("{path}: {reason}"))?;
    serde_json::from_slice(&bytes).map_err(|error| format!("{path}: {error}"))
}

impl Importer for SaeDashboardImporter {
    fn format(&self) -> &'static str {
        "saedashboard"
    }

    fn plan(&self, fetcher: &Fetcher, request: &ImportRequest) -> Result<ImportPlan, ImportError> {
        let location = fetcher.location().describe();
        let dataset_error = |reason: String| ImportError::Dataset(format!("SAEDashboard batches {location}: {reason}"));
        let (n_batches, last) = discover_batches(fetcher, self.config.batches, &batch_path).map_err(dataset_error)?;
        let (last_n, last_bytes) = last.ok_or_else(|| dataset_error("no batch-{n}.json files".to_owned()))?;
        // The model, layer and set come from the last batch; every batch of a run names the same.
        let batch = parse_batch(&batch_path(last_n), last_bytes).map_err(dataset_error)?;
        let layer = batch.layer.index("layer").map_err(dataset_error)?;
        let set = source_name(&match batch.sae_id_suffix.as_deref() {
            Some(suffix) if !suffix.is_empty() => format!("{}__{suffix}", batch.sae_set),
            _ => batch.sae_set.clone(),
        });
        if set.is_empty() {
            return Err(dataset_error("sae_set is empty".to_owned()));
        }
        let skipped: Vec<u64> =
            match fetcher.get("skipped_indexes.json").map_err(|error| dataset_error(error.to_string()))? {
                Some(bytes) => serde_json::from_slice::<SkippedIndexes>(&bytes)
                    .map_err(|error| dataset_error(format!("skipped_indexes.json: {error}")))?
                    .skipped_indexes
                    .iter()
                    .filter_map(Number::value)
                    .collect(),
                None => Vec::new(),
            };
        let largest = batch
            .features
            .iter()
            .filter_map(|feature| feature.feature_index.value())
            .chain(skipped.iter().copied())
            .max();
        let units_per_layer = self.config.units_per_layer.unwrap_or_else(|| largest.map_or(1, |max| max + 1));
        let n_layers = u64::from(layer) + 1;
        let mlp = is_mlp_set(&set, self.config.mlp_neurons);
        let dataset = batch.features.first().and_then(|feature| feature.dataset.clone());
        let metadata = model_metadata(PartialModel {
            name: &batch.model_id,
            // The runner says nothing of the model's shape but for MLP neurons, whose layer and
            // width it does give.
            n_layers: if mlp { n_layers } else { 0 },
            d_mlp: if mlp { units_per_layer } else { 0 },
            d_model: 0,
            dataset: dataset.as_deref(),
            data_source: format!("SAEDashboard batches {location}"),
        });
        let source = if mlp { metadata.mlp_source() } else { SourceInfo { name: set, n_layers, units_per_layer } };
        let items = if request.wants_layer(layer) {
            (0..n_batches).map(|n| WorkItem { key: batch_path(n) }).collect()
        } else {
            Vec::new()
        };
        *self.planned.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Planned { layer, units_per_layer: request.units_per_layer });
        Ok(ImportPlan { metadata, source, items, model_records: Vec::new() })
    }

    fn import_item(&self, fetcher: &Fetcher, item: &WorkItem, tokens: &TokenMap) -> Result<ItemOutcome, String> {
        let planned = self
            .planned
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| "the importer was not planned".to_owned())?;
        let Some(bytes) = fetcher.get(&item.key).map_err(|error| error.to_string())? else {
            return Ok(ItemOutcome::Missing);
        };
        let batch = parse_batch(&item.key, bytes)?;
        let layer = batch.layer.index("layer")?;
        if layer != planned.layer {
            return Err(format!("{}: layer {layer}, but the import is of layer {}", item.key, planned.layer));
        }
        let mut units = Vec::with_capacity(batch.features.len());
        for feature in batch.features {
            let index = feature.feature_index.index("feature_index")?;
            if planned.units_per_layer.is_some_and(|limit| index >= limit) {
                continue;
            }
            let mut examples = Vec::with_capacity(feature.activations.len());
            for activation in feature.activations {
                let band = match (activation.bin_min, activation.bin_max) {
                    (Some(lower), Some(upper)) if lower != -1.0 => Some((lower, upper)),
                    _ => None,
                };
                let max_token_index =
                    activation.qualifying_token_index.map(|index| index.index("qualifying_token_index")).transpose()?;
                examples.push(PublishedExample {
                    tokens: activation.tokens,
                    values: activation.values,
                    max_token_index,
                    dataset_index: None,
                    band,
                });
            }
            let mut records = Vec::new();
            if !examples.is_empty() {
                records.push(NeuronRecord::Examples(examples_of(index, examples, tokens)?));
            }
            let logits = logit_attribution(
                index,
                (&feature.pos_str, &feature.pos_values),
                (&feature.neg_str, &feature.neg_values),
                tokens,
            )?;
            records.extend(logits.map(NeuronRecord::Logits));
            if !records.is_empty() {
                units.push(ImportedUnit { layer, index, records });
            }
        }
        Ok(ItemOutcome::Imported(units))
    }
}
