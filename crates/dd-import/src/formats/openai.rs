//! OpenAI's automated-interpretability datasets (`neuron-explainer/data/` for GPT-2 XL,
//! `neuron-explainer/gpt2_small_data/` for GPT-2 small), laid out `{part}/{layer}/{neuron}.json(l)`:
//!
//! | file | published type | stored as |
//! |---|---|---|
//! | `collated-activations/{l}/{n}.json` | `NeuronRecord` | `examples`: top records, the random sample, the random sample by quantile (bands bounded by `quantile_boundaries`); `stats`: the published moments, with max, min and a histogram over the records' tokens and the random sample's density |
//! | `explanations/{l}/{n}.jsonl` | `NeuronSimulationResults` | `explanations`: every scored explanation (origin `openai`, author `gpt-4`) with its three scores and its simulated sequences |
//! | `related-tokens/activation-based/{l}/{n}.json` | `TokenLookupTableSummaryOfNeuron` | `activating_tokens` (the 100 highest means; no counts are published, so counts are 0) |
//! | `related-tokens/weight-based/{l}/{n}.json` | `WeightBasedSummaryOfNeuron` | `input_tokens` (input side), `logits` (output side) |
//! | `related-neurons/weight-based/{l}/{n}.json` | `c_fc` / `c_proj` neuron lists | `connections` (inputs, outputs) |
//!
//! Skipped: the simulations' distributions (`distribution_values`/`_probabilities`) and
//! uncalibrated simulations, and `dataclass_name`. Published contexts carry no dataset index, so
//! imported examples have index 0. The published kurtosis is stored as published (OpenAI does not
//! say whether it is excess kurtosis).

use dd_data::{
    ActivatingTokens, Connection, Example, ExampleGroup, ExampleGroupKind, Explanation, Explanations, Histogram,
    InputTokens, LogitAttribution, ModelMetadata, NamedScore, NeuronConnections, NeuronExamples, NeuronIndex,
    NeuronRecord, NeuronStats, Provenance, SimulatedSequence, TokenMean, TokenValue,
};
use std::borrow::Cow;

use serde::Deserialize;

use crate::error::ImportError;
use crate::fetch::{Fetcher, gunzip_if_gzipped};
use crate::job::{ImportPlan, ImportRequest, ImportedUnit, Importer, ItemOutcome, WorkItem};
use crate::tokens::TokenMap;

/// The origin of imported OpenAI explanations.
pub const ORIGIN: &str = "openai";

/// The model that wrote OpenAI's published explanations.
pub const AUTHOR: &str = "gpt-4";

/// One of OpenAI's explanations with only its correlation score, as the original DeepDecipher kept
/// them (its database and its API).
pub fn scored_explanation(text: String, ev_correlation_score: f32) -> Explanation {
    Explanation {
        text,
        origin: ORIGIN.to_owned(),
        author: Some(AUTHOR.to_owned()),
        scores: vec![NamedScore { name: "ev_correlation_score".to_owned(), value: ev_correlation_score }],
        ..Explanation::default()
    }
}

/// Bins of the histogram built from the published records.
const HISTOGRAM_BINS: usize = dd_data::HISTOGRAM_BINS;

/// Activation-based related tokens kept per neuron.
const MAX_ACTIVATING_TOKENS: usize = 100;

/// The parts of the dataset, each a directory of per-neuron files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAiPart {
    /// `collated-activations/`.
    Activations,
    /// `explanations/`.
    Explanations,
    /// `related-tokens/activation-based/` and `related-tokens/weight-based/`.
    RelatedTokens,
    /// `related-neurons/weight-based/`.
    RelatedNeurons,
}

impl OpenAiPart {
    /// Every part.
    pub const ALL: &'static [OpenAiPart] =
        &[OpenAiPart::Activations, OpenAiPart::Explanations, OpenAiPart::RelatedTokens, OpenAiPart::RelatedNeurons];

    /// The part's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OpenAiPart::Activations => "activations",
            OpenAiPart::Explanations => "explanations",
            OpenAiPart::RelatedTokens => "related-tokens",
            OpenAiPart::RelatedNeurons => "related-neurons",
        }
    }

    /// The part called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|part| part.name() == name)
    }
}

/// The two models OpenAI published data for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAiModel {
    /// GPT-2 small: 12 layers × 3,072 neurons.
    Gpt2Small,
    /// GPT-2 XL: 48 layers × 6,400 neurons.
    Gpt2Xl,
}

impl OpenAiModel {
    /// The model a name means (`gpt2-small`, `gpt2-xl`, also `gpt2_small_data` and `data`, the
    /// publisher's directory names).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "gpt2-small" | "gpt2" | "gpt2_small_data" => Some(OpenAiModel::Gpt2Small),
            "gpt2-xl" | "data" => Some(OpenAiModel::Gpt2Xl),
            _ => None,
        }
    }

    /// What the database says about the model before anything is imported.
    pub fn metadata(self, location: &str) -> ModelMetadata {
        let (name, n_layers, d_mlp, d_model, n_parameters) = match self {
            OpenAiModel::Gpt2Small => ("gpt2-small", 12, 3_072, 768, 124_439_808),
            OpenAiModel::Gpt2Xl => ("gpt2-xl", 48, 6_400, 1_600, 1_557_611_200),
        };
        ModelMetadata {
            name: name.to_owned(),
            architecture: "gpt2".to_owned(),
            n_layers,
            d_mlp,
            d_model,
            activation_function: "gelu".to_owned(),
            dataset: "OpenWebText (OpenAI's collated activations)".to_owned(),
            training_dataset: Some("WebText".to_owned()),
            n_parameters,
            context_length: 1_024,
            provenance: Provenance {
                data_source: format!("OpenAI automated-interpretability ({location})"),
                model_source: None,
                weights: None,
                tokens_recorded: 0,
                tool_version: env!("CARGO_PKG_VERSION").to_owned(),
                recorded_at: dd_data::time::now_rfc3339(),
            },
        }
    }
}

/// Imports OpenAI's per-neuron files; one item per neuron, fetching each chosen part's file.
#[derive(Debug, Clone)]
pub struct OpenAiImporter {
    model: OpenAiModel,
    parts: Vec<OpenAiPart>,
}

impl OpenAiImporter {
    /// An importer of `parts` of `model`'s dataset.
    pub fn new(model: OpenAiModel, parts: &[OpenAiPart]) -> Self {
        Self { model, parts: parts.to_vec() }
    }
}

impl Importer for OpenAiImporter {
    fn format(&self) -> &'static str {
        "openai"
    }

    fn plan(&self, fetcher: &Fetcher, request: &ImportRequest) -> Result<ImportPlan, ImportError> {
        if self.parts.is_empty() {
            return Err(ImportError::Invalid("no parts of the OpenAI dataset chosen".to_owned()));
        }
        let metadata = self.model.metadata(&fetcher.location().describe());
        let source = metadata.mlp_source();
        let mut items = Vec::new();
        for layer in 0..metadata.n_layers as u32 {
            if let Some(layers) = &request.layers
                && !layers.contains(&layer)
            {
                continue;
            }
            for neuron in 0..metadata.d_mlp as u32 {
                if request.wants_unit(neuron) {
                    items.push(WorkItem { key: format!("{layer}/{neuron}") });
                }
            }
        }
        if let Some(layers) = &request.layers
            && let Some(bad) = layers.iter().find(|&&layer| u64::from(layer) >= metadata.n_layers)
        {
            return Err(ImportError::Invalid(format!("layer {bad} is past the model's {} layers", metadata.n_layers)));
        }
        Ok(ImportPlan { metadata, source, items, model_records: Vec::new() })
    }

    fn variant(&self) -> String {
        let parts: Vec<&str> = self.parts.iter().map(|part| part.name()).collect();
        format!("{:?} {}", self.model, parts.join(","))
    }

    fn import_item(&self, fetcher: &Fetcher, item: &WorkItem, tokens: &TokenMap) -> Result<ItemOutcome, String> {
        let neuron = parse_key(&item.key)?;
        let key = &item.key;
        let get = |path: String| -> Result<Option<Vec<u8>>, String> {
            match fetcher.get(&path) {
                Ok(Some(bytes)) => gunzip_if_gzipped(bytes).map(Some).map_err(|error| format!("{path}: {error}")),
                Ok(None) => Ok(None),
                Err(error) => Err(error.to_string()),
            }
        };
        let mut records = Vec::new();
        for &part in &self.parts {
            match part {
                OpenAiPart::Activations => {
                    if let Some(bytes) = get(format!("collated-activations/{key}.json"))? {
                        let record: NeuronRecordFile = parse(&bytes, "collated-activations", key)?;
                        check_neuron(record.neuron_id.as_ref(), neuron, "collated-activations")?;
                        let (examples, stats) = collated_activations(record, tokens)?;
                        records.push(NeuronRecord::Examples(examples));
                        records.extend(stats.map(NeuronRecord::Stats));
                    }
                }
                OpenAiPart::Explanations => {
                    if let Some(bytes) = get(format!("explanations/{key}.jsonl"))? {
                        records.push(NeuronRecord::Explanations(explanations(&bytes, neuron, key, tokens)?));
                    }
                }
                OpenAiPart::RelatedTokens => {
                    if let Some(bytes) = get(format!("related-tokens/activation-based/{key}.json"))? {
                        let table: TokenLookupTable = parse(&bytes, "activation-based related tokens", key)?;
                        records.push(NeuronRecord::ActivatingTokens(activating_tokens(table, tokens)?));
                    }
                    if let Some(bytes) = get(format!("related-tokens/weight-based/{key}.json"))? {
                        let summary: WeightBasedSummary = parse(&bytes, "weight-based related tokens", key)?;
                        let (input, output) = weight_based_tokens(summary, tokens)?;
                        records.push(NeuronRecord::InputTokens(input));
                        records.push(NeuronRecord::Logits(output));
                    }
                }
                OpenAiPart::RelatedNeurons => {
                    if let Some(bytes) = get(format!("related-neurons/weight-based/{key}.json"))? {
                        let related: RelatedNeurons = parse(&bytes, "related neurons", key)?;
                        records.push(NeuronRecord::Connections(connections(related)?));
                    }
                }
            }
        }
        if records.is_empty() {
            return Ok(ItemOutcome::Missing);
        }
        Ok(ItemOutcome::Imported(vec![ImportedUnit { layer: neuron.layer, index: neuron.index, records }]))
    }
}

fn parse_key(key: &str) -> Result<NeuronIndex, String> {
    key.split_once('/')
        .and_then(|(layer, index)| Some(NeuronIndex { layer: layer.parse().ok()?, index: index.parse().ok()? }))
        .ok_or_else(|| format!("bad item key {key:?}"))
}

fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str, key: &str) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|error| format!("{what} of {key}: not the published JSON: {error}"))
}

fn check_neuron(id: Option<&NeuronId>, expected: NeuronIndex, what: &str) -> Result<(), String> {
    match id {
        Some(id) if (id.layer_index, id.neuron_index) != (expected.layer, expected.index) => Err(format!(
            "{what} of {}/{} describes neuron {}/{}",
            expected.layer, expected.index, id.layer_index, id.neuron_index
        )),
        _ => Ok(()),
    }
}

// ---- The published JSON (fast_dataclasses; `dataclass_name` and unknown fields are ignored) ----

#[derive(Deserialize)]
struct NeuronId {
    layer_index: u32,
    neuron_index: u32,
}

#[derive(Deserialize)]
struct ActivationRecord<'a> {
    // Borrowed where the JSON has no escapes: most tokens, and no allocation per token.
    #[serde(borrow)]
    tokens: Vec<Cow<'a, str>>,
    activations: Vec<f32>,
}

#[derive(Deserialize)]
struct NeuronRecordFile<'a> {
    neuron_id: Option<NeuronId>,
    #[serde(default, borrow)]
    random_sample: Vec<ActivationRecord<'a>>,
    #[serde(default, borrow)]
    random_sample_by_quantile: Option<Vec<Vec<ActivationRecord<'a>>>>,
    #[serde(default)]
    quantile_boundaries: Option<Vec<f64>>,
    mean: Option<f64>,
    variance: Option<f64>,
    skewness: Option<f64>,
    kurtosis: Option<f64>,
    #[serde(default, borrow)]
    most_positive_activation_records: Vec<ActivationRecord<'a>>,
}

#[derive(Deserialize)]
struct SimulationResults<'a> {
    neuron_id: Option<NeuronId>,
    #[serde(default, borrow)]
    scored_explanations: Vec<ScoredExplanation<'a>>,
}

#[derive(Deserialize)]
struct ScoredExplanation<'a> {
    explanation: Option<String>,
    #[serde(borrow)]
    scored_simulation: Option<ScoredSimulation<'a>>,
}

#[derive(Deserialize)]
struct ScoredSimulation<'a> {
    ev_correlation_score: Option<f64>,
    rsquared_score: Option<f64>,
    absolute_dev_explained_score: Option<f64>,
    #[serde(default, borrow)]
    scored_sequence_simulations: Vec<ScoredSequenceSimulation<'a>>,
}

#[derive(Deserialize)]
struct ScoredSequenceSimulation<'a> {
    #[serde(borrow)]
    simulation: Option<SequenceSimulation<'a>>,
    #[serde(default)]
    true_activations: Vec<f32>,
}

#[derive(Deserialize)]
struct SequenceSimulation<'a> {
    #[serde(borrow)]
    tokens: Vec<Cow<'a, str>>,
    expected_activations: Vec<f32>,
}

#[derive(Deserialize)]
struct TokenLookupTable {
    tokens: Vec<String>,
    average_activations: Vec<f32>,
}

#[derive(Deserialize)]
struct TokensAndWeights {
    tokens: Vec<String>,
    strengths: Vec<f32>,
}

#[derive(Deserialize)]
struct WeightBasedSummary {
    input_positive: TokensAndWeights,
    input_negative: TokensAndWeights,
    output_positive: TokensAndWeights,
    output_negative: TokensAndWeights,
}

#[derive(Deserialize)]
struct RelatedNeuronList {
    #[serde(default)]
    top_positive_neurons: Vec<String>,
    #[serde(default)]
    top_positive_weights: Vec<f32>,
    #[serde(default)]
    top_negative_neurons: Vec<String>,
    #[serde(default)]
    top_negative_weights: Vec<f32>,
}

#[derive(Deserialize)]
struct RelatedNeurons {
    c_fc: Option<RelatedNeuronList>,
    c_proj: Option<RelatedNeuronList>,
}

// ---- Mapping ----

fn example(record: ActivationRecord, tokens: &TokenMap) -> Result<Example, String> {
    if record.tokens.len() != record.activations.len() {
        return Err(format!(
            "a record has {} tokens and {} activations",
            record.tokens.len(),
            record.activations.len()
        ));
    }
    if let Some(bad) = record.activations.iter().find(|a| !a.is_finite()) {
        return Err(format!("a record has the activation {bad}"));
    }
    let max_token_index = record
        .activations
        .iter()
        .enumerate()
        .fold((0usize, f32::NEG_INFINITY), |best, (i, &a)| if a > best.1 { (i, a) } else { best })
        .0 as u32;
    Ok(Example {
        dataset_index: 0,
        tokens: tokens.ids_of(&record.tokens),
        activations: record.activations,
        max_token_index,
        activation_error: 0.0,
    })
}

fn collated_activations(
    record: NeuronRecordFile,
    tokens: &TokenMap,
) -> Result<(NeuronExamples, Option<NeuronStats>), String> {
    let moments = (record.mean, record.variance, record.skewness, record.kurtosis);
    let mut groups = Vec::new();
    let top: Vec<Example> =
        record.most_positive_activation_records.into_iter().map(|r| example(r, tokens)).collect::<Result<_, _>>()?;
    groups.push(ExampleGroup { kind: ExampleGroupKind::Top, examples: top });
    let random: Vec<Example> =
        record.random_sample.into_iter().map(|r| example(r, tokens)).collect::<Result<_, _>>()?;
    if !random.is_empty() {
        groups.push(ExampleGroup { kind: ExampleGroupKind::Random, examples: random });
    }
    let boundaries = record.quantile_boundaries.unwrap_or_default();
    let bands = record.random_sample_by_quantile.unwrap_or_default();
    let n_bands = bands.len();
    for (band, records) in bands.into_iter().enumerate() {
        let examples: Vec<Example> = records.into_iter().map(|r| example(r, tokens)).collect::<Result<_, _>>()?;
        let (low, high) = band_bounds(&boundaries, band, n_bands, &examples);
        groups.push(ExampleGroup {
            kind: ExampleGroupKind::Quantile { band: band as u32, lower: low, upper: high },
            examples,
        });
    }
    let examples = NeuronExamples { groups };
    let stats = match moments {
        (Some(mean), Some(variance), Some(skewness), Some(kurtosis)) => {
            stats_from(&examples, mean, variance, skewness, kurtosis)
        }
        _ => None,
    };
    Ok((examples, stats))
}

/// A band's bounds: from the published boundaries when they bound every band (`n + 1` values) or
/// separate them (`n − 1` values), else from the band's own activations.
fn band_bounds(boundaries: &[f64], band: usize, n_bands: usize, examples: &[Example]) -> (f32, f32) {
    let own_min = examples.iter().map(Example::max_activation).fold(f32::INFINITY, f32::min);
    let own_max = examples.iter().map(Example::max_activation).fold(f32::NEG_INFINITY, f32::max);
    let (own_min, own_max) = if own_min <= own_max { (own_min, own_max) } else { (0.0, 0.0) };
    if boundaries.len() == n_bands + 1 {
        (boundaries[band] as f32, boundaries[band + 1] as f32)
    } else if n_bands > 0 && boundaries.len() == n_bands - 1 {
        let low = if band == 0 { own_min } else { boundaries[band - 1] as f32 };
        let high = if band + 1 == n_bands { own_max } else { boundaries[band] as f32 };
        (low, high)
    } else {
        (own_min, own_max)
    }
}

/// Statistics from the published moments, with max, min and a histogram over the tokens of the
/// published records (the top records hold the true maximum) and the density of the random sample.
fn stats_from(
    examples: &NeuronExamples,
    mean: f64,
    variance: f64,
    skewness: f64,
    kurtosis: f64,
) -> Option<NeuronStats> {
    let all = || examples.groups.iter().flat_map(|g| &g.examples).flat_map(|e| e.activations.iter().copied());
    let count = all().count() as u64;
    if count == 0 || ![mean, variance, skewness, kurtosis].iter().all(|v| v.is_finite()) {
        return None;
    }
    let max = all().fold(f32::NEG_INFINITY, f32::max);
    let min = all().fold(f32::INFINITY, f32::min);
    // Density describes the neuron's distribution, which only the uniform random sample does
    // without bias; the histogram covers every published token (its count is `count`), so its
    // top tail is the top records', as a recording's is.
    let random: Vec<f32> = examples
        .groups
        .iter()
        .filter(|group| group.kind == ExampleGroupKind::Random)
        .flat_map(|group| &group.examples)
        .flat_map(|example| example.activations.iter().copied())
        .collect();
    let density = if random.is_empty() {
        all().filter(|&a| a > 0.0).count() as f64 / count as f64
    } else {
        random.iter().filter(|&&a| a > 0.0).count() as f64 / random.len() as f64
    };
    let (lower, upper) = if max > min { (min, max) } else { (min, min + 1.0) };
    let mut counts = vec![0u64; HISTOGRAM_BINS];
    let width = (f64::from(upper) - f64::from(lower)) / HISTOGRAM_BINS as f64;
    for value in all() {
        let bin = ((f64::from(value) - f64::from(lower)) / width) as usize;
        counts[bin.min(HISTOGRAM_BINS - 1)] += 1;
    }
    Some(NeuronStats {
        count,
        max: f64::from(max),
        min: f64::from(min),
        mean,
        variance,
        skewness,
        kurtosis,
        density,
        histogram: Histogram { lower, upper, counts },
        bos: None,
    })
}

fn explanations(bytes: &[u8], neuron: NeuronIndex, key: &str, tokens: &TokenMap) -> Result<Explanations, String> {
    let mut explanations = Vec::new();
    // Lines split as bytes: the JSON parser checks UTF-8 as it reads, a second pass would cost a
    // twentieth of the import.
    for line in bytes.split(|&byte| byte == b'\n').filter(|line| !line.trim_ascii().is_empty()) {
        let results: SimulationResults = parse(line, "explanations", key)?;
        check_neuron(results.neuron_id.as_ref(), neuron, "explanations")?;
        for scored in results.scored_explanations {
            let Some(text) = scored.explanation else { continue };
            let mut explanation = Explanation {
                text: text.trim().to_owned(),
                origin: ORIGIN.to_owned(),
                author: Some(AUTHOR.to_owned()),
                ..Explanation::default()
            };
            if let Some(simulation) = scored.scored_simulation {
                for (name, value) in [
                    ("ev_correlation_score", simulation.ev_correlation_score),
                    ("rsquared_score", simulation.rsquared_score),
                    ("absolute_dev_explained_score", simulation.absolute_dev_explained_score),
                ] {
                    if let Some(value) = value.filter(|v| v.is_finite()) {
                        explanation.scores.push(NamedScore { name: name.to_owned(), value: value as f32 });
                    }
                }
                for sequence in simulation.scored_sequence_simulations {
                    let Some(simulated) = sequence.simulation else { continue };
                    let n = simulated.tokens.len();
                    if simulated.expected_activations.len() != n || sequence.true_activations.len() != n {
                        return Err(format!("explanations of {key}: a simulated sequence's lengths disagree"));
                    }
                    explanation.simulations.push(SimulatedSequence {
                        token_ids: tokens.ids_of(&simulated.tokens),
                        true_activations: sequence.true_activations,
                        simulated_activations: simulated.expected_activations,
                    });
                }
            }
            explanations.push(explanation);
        }
    }
    Ok(Explanations { explanations })
}

fn activating_tokens(table: TokenLookupTable, tokens: &TokenMap) -> Result<ActivatingTokens, String> {
    if table.tokens.len() != table.average_activations.len() {
        return Err("activation-based related tokens: tokens and average activations differ in length".to_owned());
    }
    let ids = tokens.ids_of(&table.tokens);
    let mut entries: Vec<TokenMean> = ids
        .into_iter()
        .zip(table.average_activations)
        .filter(|(_, mean)| mean.is_finite())
        .map(|(token, mean)| TokenMean { token, mean, count: 0 })
        .collect();
    entries.sort_by(|a, b| b.mean.total_cmp(&a.mean).then(a.token.cmp(&b.token)));
    // One entry per id: two published strings may show the same.
    let mut seen = std::collections::HashSet::new();
    entries.retain(|entry| seen.insert(entry.token));
    entries.truncate(MAX_ACTIVATING_TOKENS);
    Ok(ActivatingTokens::from_unsorted(entries))
}

fn token_values(list: TokensAndWeights, tokens: &TokenMap, what: &str) -> Result<Vec<TokenValue>, String> {
    if list.tokens.len() != list.strengths.len() {
        return Err(format!("weight-based related tokens: {what} has tokens and strengths of different lengths"));
    }
    let ids = tokens.ids_of(&list.tokens);
    Ok(ids
        .into_iter()
        .zip(list.strengths)
        .filter(|(_, v)| v.is_finite())
        .map(|(token, value)| TokenValue { token, value })
        .collect())
}

fn weight_based_tokens(
    summary: WeightBasedSummary,
    tokens: &TokenMap,
) -> Result<(InputTokens, LogitAttribution), String> {
    let input = InputTokens {
        top: token_values(summary.input_positive, tokens, "input_positive")?,
        bottom: token_values(summary.input_negative, tokens, "input_negative")?,
    };
    let output = LogitAttribution {
        top: token_values(summary.output_positive, tokens, "output_positive")?,
        bottom: token_values(summary.output_negative, tokens, "output_negative")?,
    };
    Ok((input, output))
}

fn connections(related: RelatedNeurons) -> Result<NeuronConnections, String> {
    let list = |side: Option<RelatedNeuronList>, what: &str| -> Result<Vec<Connection>, String> {
        let Some(side) = side else { return Ok(Vec::new()) };
        let mut connections = Vec::new();
        for (names, weights) in [
            (side.top_positive_neurons, side.top_positive_weights),
            (side.top_negative_neurons, side.top_negative_weights),
        ] {
            if names.len() != weights.len() {
                return Err(format!("related neurons: {what} has neurons and weights of different lengths"));
            }
            for (name, weight) in names.iter().zip(weights) {
                let neuron = name
                    .split_once('_')
                    .and_then(|(l, n)| Some(NeuronIndex { layer: l.parse().ok()?, index: n.parse().ok()? }))
                    .ok_or_else(|| format!("related neurons: {name:?} is not \"layer_neuron\""))?;
                if weight.is_finite() {
                    connections.push(Connection { neuron, weight });
                }
            }
        }
        Ok(connections)
    };
    Ok(NeuronConnections::from_unsorted(list(related.c_fc, "c_fc")?, list(related.c_proj, "c_proj")?))
}
