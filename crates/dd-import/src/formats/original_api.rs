//! Mirroring a model from a running original DeepDecipher server through its JSON API
//! (`apartresearch/deepdecipher`): the model from `GET /api/{model}/metadata` (or the list at
//! `GET /api`), then per neuron `GET /api/{model}/{service}/{layer}/{neuron}` for each service the
//! model lists: `neuroscope` → [`NeuronExamples`] (one Top group), `neuron_explainer` →
//! [`Explanations`] (OpenAI's, which the original imported), `neuron2graph` → [`NeuronGraph`] and
//! [`SimilarNeurons`]. Other services (`neuron2graph-search`, JSON ones) hold nothing per neuron.
//!
//! Gaps: a service answering 404, or HTTP 200 with `{"missing_data_types": [...]}`, has nothing
//! for the neuron, and a neuron with nothing in any service is missing. The original also answers
//! 500 when one neuron's data is absent from its database, with the same status as for its own
//! faults, and the fetcher keeps no body of a failed request. So after a 5xx (or any failure) of a
//! service page the neuron's `GET /api/{model}/all/{layer}/{neuron}` is read: it always answers
//! 200, with each service's error as text. Only the original's messages for absent data
//! ([`MISSING_DATA_MESSAGES`]) make the service a gap; anything else fails the item, with the
//! server's message, and the resume record leaves it for a rerun to ask again, since counting a
//! passing fault as a gap would lose that neuron's data for good.

use std::collections::HashMap;
use std::sync::Mutex;

use dd_data::{
    Explanations, GraphNode, MLP_SOURCE, ModelMetadata, NeuronGraph, NeuronRecord, Provenance, SimilarNeuron,
    SimilarNeurons, SourceInfo,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ImportError;
use crate::fetch::Fetcher;
use crate::job::{ImportPlan, ImportRequest, ImportedUnit, Importer, ItemOutcome, WorkItem};
use crate::tokens::TokenMap;
use dd_data::time::now_rfc3339;

/// The services with per-neuron data, in the order they are fetched.
const NEURON_SERVICES: [Service; 3] = [Service::Neuroscope, Service::NeuronExplainer, Service::Neuron2Graph];

/// How the original's errors begin or end when a neuron's data is not in its database: the graph
/// and similar-neuron stores say so, neuroscope and the explainer say that their fallback fetch
/// from the publisher failed (it cannot succeed in the original's server build, which lacks TLS).
pub const MISSING_DATA_MESSAGES: [&str; 3] =
    ["Database has no neuron2graph data", "Database has no neuron store data", "and fetching from source failed"];

/// Mirrors one model of an original DeepDecipher server (its base URL, as `http://host:8080`).
#[derive(Debug, Default)]
pub struct OriginalApiImporter {
    /// The server's name of the model; when `None`, the request's model name, else the server's
    /// only model.
    model: Option<String>,
    /// The services each planned model offers, for its items (a work item carries only its key).
    services: Mutex<HashMap<String, Vec<Service>>>,
}

/// A per-neuron service of the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Neuroscope,
    NeuronExplainer,
    Neuron2Graph,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Neuroscope => "neuroscope",
            Service::NeuronExplainer => "neuron_explainer",
            Service::Neuron2Graph => "neuron2graph",
        }
    }
}

/// The original's `MetadataObject`; `num_total_neurons` is derived and ignored.
#[derive(Debug, Deserialize)]
struct MetadataObject {
    name: String,
    num_layers: u32,
    layer_size: u32,
    #[serde(default)]
    activation_function: String,
    #[serde(default)]
    num_total_parameters: u64,
    #[serde(default)]
    dataset: String,
    #[serde(default)]
    available_services: Vec<String>,
}

/// `GET /api`.
#[derive(Debug, Deserialize)]
struct ModelList {
    models: Vec<MetadataObject>,
}

/// A service page: its data, or the data types the model lacks for the service.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    missing_data_types: Option<Vec<String>>,
}

impl<T> Envelope<T> {
    /// The data; `None` when the original says the model lacks it; an answer with neither is not
    /// one of the original's.
    fn into_data(self) -> Result<Option<T>, String> {
        match (self.data, self.missing_data_types) {
            (Some(data), _) => Ok(Some(data)),
            (None, Some(_)) => Ok(None),
            (None, None) => Err("the answer has neither \"data\" nor \"missing_data_types\"".to_owned()),
        }
    }
}

/// One service's entry in the `all` answer; `data` and `missing_data_types` are not needed here.
#[derive(Debug, Deserialize)]
struct ServiceAnswer {
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NeuronIndexJson {
    layer: u32,
    neuron: u32,
}

#[derive(Debug, Deserialize)]
struct NeuroscopePage {
    neuron_index: Option<NeuronIndexJson>,
    texts: Vec<TextJson>,
}

/// The original's `Text`; its ranges and extremes repeat what the activations say.
#[derive(Debug, Deserialize)]
struct TextJson {
    data_index: u64,
    max_activating_token_index: u32,
    tokens: Vec<String>,
    activations: Vec<f32>,
}

#[derive(Debug, Deserialize)]
struct ExplainerPage {
    explanation: String,
    score: f32,
}

#[derive(Debug, Deserialize)]
struct Neuron2GraphPage {
    graph: GraphJson,
    #[serde(default)]
    similar: Vec<SimilarJson>,
}

#[derive(Debug, Deserialize)]
struct GraphJson {
    subgraph_indices: Vec<u32>,
    graph: Vec<NodeJson>,
}

#[derive(Debug, Deserialize)]
struct NodeJson {
    token: String,
    required: Vec<u32>,
    importance: f32,
}

#[derive(Debug, Deserialize)]
struct SimilarJson {
    layer: u32,
    neuron: u32,
    similarity: f32,
}

impl OriginalApiImporter {
    /// An importer of the server's model named `model`; `None` takes the request's model name, or
    /// the server's only model.
    pub fn new(model: Option<&str>) -> Self {
        Self { model: model.map(str::to_owned), services: Mutex::default() }
    }

    fn planned_services(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Service>>> {
        self.services.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The model's metadata: its own route when the name is known, else the list of models.
    fn find_model(&self, fetcher: &Fetcher, wanted: Option<&str>) -> Result<MetadataObject, ImportError> {
        let dataset_error = |error: String| ImportError::Dataset(format!("the original's API: {error}"));
        if let Some(name) = wanted {
            let page =
                fetcher.get(&format!("api/{name}/metadata")).map_err(|error| dataset_error(error.to_string()))?;
            if let Some(bytes) = page {
                let envelope: Envelope<MetadataObject> = parse_json(&bytes).map_err(dataset_error)?;
                return envelope
                    .into_data()
                    .map_err(dataset_error)?
                    .ok_or_else(|| dataset_error(format!("model {name:?} has no metadata")));
            }
        }
        let list = fetcher
            .get("api")
            .map_err(|error| dataset_error(error.to_string()))?
            .ok_or_else(|| dataset_error("the server has no /api".to_owned()))?;
        let list: ModelList = parse_json(&list).map_err(dataset_error)?;
        let names: Vec<String> = list.models.iter().map(|model| model.name.clone()).collect();
        let mut models = list.models.into_iter();
        let found = match wanted {
            Some(name) => models.find(|model| model.name == name),
            None if names.len() == 1 => models.next(),
            None => None,
        };
        found.ok_or_else(|| {
            ImportError::Invalid(format!(
                "the server has no model {:?}: choose one of {names:?}",
                wanted.unwrap_or("(none given)")
            ))
        })
    }
}

impl Importer for OriginalApiImporter {
    fn format(&self) -> &'static str {
        "deepdecipher-api"
    }

    fn plan(&self, fetcher: &Fetcher, request: &ImportRequest) -> Result<ImportPlan, ImportError> {
        let model = self.find_model(fetcher, self.model.as_deref().or(request.model_name.as_deref()))?;
        dd_data::validate_name(&model.name)
            .map_err(|error| ImportError::Dataset(format!("the server's model name: {error}")))?;
        let services: Vec<Service> = NEURON_SERVICES
            .into_iter()
            .filter(|service| model.available_services.iter().any(|name| name == service.name()))
            .collect();
        if services.is_empty() {
            return Err(ImportError::Invalid(format!(
                "model {:?} offers none of the per-neuron services (it has {:?})",
                model.name, model.available_services
            )));
        }
        self.planned_services().insert(model.name.clone(), services);
        let mut items = Vec::new();
        for layer in (0..model.num_layers).filter(|&layer| request.wants_layer(layer)) {
            for neuron in (0..model.layer_size).take_while(|&neuron| request.wants_unit(neuron)) {
                items.push(WorkItem { key: format!("{}/{layer}/{neuron}", model.name) });
            }
        }
        let metadata = ModelMetadata {
            name: model.name.clone(),
            architecture: if model.name.starts_with("gpt2") { "gpt2" } else { "tlens" }.to_owned(),
            n_layers: model.num_layers.into(),
            d_mlp: model.layer_size.into(),
            // The original does not record these; 0 marks them unknown.
            d_model: 0,
            context_length: 0,
            activation_function: model.activation_function.to_lowercase(),
            dataset: model.dataset,
            training_dataset: None,
            n_parameters: model.num_total_parameters,
            provenance: Provenance {
                data_source: format!("DeepDecipher API ({})", fetcher.location().describe()),
                model_source: None,
                weights: None,
                tokens_recorded: 0,
                tool_version: env!("CARGO_PKG_VERSION").to_owned(),
                recorded_at: now_rfc3339(),
            },
        };
        Ok(ImportPlan {
            source: SourceInfo {
                name: MLP_SOURCE.to_owned(),
                n_layers: model.num_layers.into(),
                units_per_layer: model.layer_size.into(),
            },
            metadata,
            items,
            model_records: Vec::new(),
        })
    }

    fn import_item(&self, fetcher: &Fetcher, item: &WorkItem, tokens: &TokenMap) -> Result<ItemOutcome, String> {
        let (model, layer, neuron) = unit_of_key(&item.key)?;
        let services = self
            .planned_services()
            .get(model)
            .cloned()
            .ok_or_else(|| format!("model {model:?} was not planned by this importer"))?;
        let mut records = Vec::new();
        for service in services {
            let path = format!("api/{model}/{}/{layer}/{neuron}", service.name());
            let bytes = match fetcher.get(&path) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                Err(error) => match server_error(fetcher, model, layer, neuron, service) {
                    Some(message) if MISSING_DATA_MESSAGES.iter().any(|mark| message.contains(mark)) => continue,
                    Some(message) => {
                        // The message is an anyhow Debug string, perhaps with a backtrace: its first line says enough.
                        let first_line: String =
                            message.lines().next().unwrap_or_default().trim().chars().take(300).collect();
                        return Err(format!("{}: {error}; the server says: {first_line}", service.name()));
                    }
                    None => return Err(format!("{}: {error}", service.name())),
                },
            };
            let failed = |why: String| format!("{}: {why}", service.name());
            match service {
                Service::Neuroscope => {
                    if let Some(page) =
                        parse_json::<Envelope<NeuroscopePage>>(&bytes).and_then(Envelope::into_data).map_err(failed)?
                    {
                        records.push(examples_of(page, layer, neuron, tokens).map_err(failed)?);
                    }
                }
                Service::NeuronExplainer => {
                    if let Some(page) =
                        parse_json::<Envelope<ExplainerPage>>(&bytes).and_then(Envelope::into_data).map_err(failed)?
                    {
                        records.push(explanation_of(page));
                    }
                }
                Service::Neuron2Graph => {
                    if let Some(page) = parse_json::<Envelope<Neuron2GraphPage>>(&bytes)
                        .and_then(Envelope::into_data)
                        .map_err(failed)?
                    {
                        records.extend(graph_of(page).map_err(failed)?);
                    }
                }
            }
        }
        if records.is_empty() {
            return Ok(ItemOutcome::Missing);
        }
        Ok(ItemOutcome::Imported(vec![ImportedUnit { layer, index: neuron, records }]))
    }
}

/// The model, layer and neuron of a key `{model}/{layer}/{neuron}`.
fn unit_of_key(key: &str) -> Result<(&str, u32, u32), String> {
    let bad = || format!("{key:?} is not a model/layer/neuron key");
    let mut parts = key.rsplitn(3, '/');
    let neuron = parts.next().and_then(|part| part.parse().ok()).ok_or_else(bad)?;
    let layer = parts.next().and_then(|part| part.parse().ok()).ok_or_else(bad)?;
    let model = parts.next().ok_or_else(bad)?;
    Ok((model, layer, neuron))
}

/// The error the original reports for one service of a neuron in its `all` answer (its whole
/// cause chain, where the absent-data message may sit below a context line), if it can be had.
fn server_error(fetcher: &Fetcher, model: &str, layer: u32, neuron: u32, service: Service) -> Option<String> {
    let bytes = fetcher.get(&format!("api/{model}/all/{layer}/{neuron}")).ok()??;
    let all: HashMap<String, ServiceAnswer> = serde_json::from_slice(&bytes).ok()?;
    all.get(service.name())?.error.clone()
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|error| format!("malformed JSON: {error}"))
}

/// The neuroscope page's texts as one Top group. The original scraped them from Neuroscope's
/// pages, so tokens are the tokenizer's text (` the`), not display strings.
fn examples_of(page: NeuroscopePage, layer: u32, neuron: u32, tokens: &TokenMap) -> Result<NeuronRecord, String> {
    if let Some(index) = page.neuron_index
        && (index.layer, index.neuron) != (layer, neuron)
    {
        return Err(format!("the page is about neuron {}/{}, not {layer}/{neuron}", index.layer, index.neuron));
    }
    // Checked before any token reaches the shared vocabulary.
    for (text_idx, text) in page.texts.iter().enumerate() {
        let n_tokens = text.tokens.len();
        if n_tokens != text.activations.len() || text.max_activating_token_index as usize >= n_tokens.max(1) {
            return Err(format!(
                "the texts are inconsistent: text #{text_idx} has {n_tokens} tokens, {} activations and its maximum at {}",
                text.activations.len(),
                text.max_activating_token_index
            ));
        }
    }
    let texts = page.texts.into_iter().map(|t| (t.data_index, t.tokens, t.activations, t.max_activating_token_index));
    let examples =
        super::neuroscope::top_group(texts, tokens).map_err(|error| format!("the texts are inconsistent: {error}"))?;
    Ok(NeuronRecord::Examples(examples))
}

/// OpenAI's explanation as the original served it: GPT-4 wrote it, the score is the correlation
/// of the simulation with the real activations.
fn explanation_of(page: ExplainerPage) -> NeuronRecord {
    NeuronRecord::Explanations(Explanations {
        explanations: vec![super::openai::scored_explanation(page.explanation, page.score)],
    })
}

/// The graph and, when the page lists any, the similar neurons, most similar first.
fn graph_of(page: Neuron2GraphPage) -> Result<Vec<NeuronRecord>, String> {
    let graph = NeuronGraph {
        subgraph_indices: page.graph.subgraph_indices,
        nodes: page
            .graph
            .graph
            .into_iter()
            .map(|node| GraphNode {
                token: super::original_db::unquote(&node.token),
                token_id: None,
                required: node.required,
                importance: node.importance,
                activation: None,
                is_end: false,
            })
            .collect(),
        scores: None,
    };
    graph.validate().map_err(|error| format!("the graph is inconsistent: {error}"))?;
    let mut records = vec![NeuronRecord::Graph(graph)];
    if !page.similar.is_empty() {
        let neurons: Vec<SimilarNeuron> = page
            .similar
            .into_iter()
            .filter(|similar| similar.similarity.is_finite())
            .map(|similar| SimilarNeuron {
                layer: similar.layer,
                index: similar.neuron,
                similarity: similar.similarity,
            })
            .collect();
        records.push(NeuronRecord::Similar(SimilarNeurons::from_unsorted(neurons)));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_lose_their_dot_quotes() {
        // The API serves the labels the database holds, decoded as the database importer does.
        let unquote = super::super::original_db::unquote;
        assert_eq!(unquote("\"she\""), "she");
        assert_eq!(unquote("\" the\""), " the");
        assert_eq!(unquote("\"\\\"\""), "\"");
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(unquote("\""), "\"");
    }

    #[test]
    fn an_answer_needs_data_or_the_missing_types() {
        let parse = |text: &str| parse_json::<Envelope<ExplainerPage>>(text.as_bytes()).and_then(Envelope::into_data);
        let page = parse(r#"{"data": {"explanation": "e", "score": 0.5}, "metadata": null}"#).expect("data");
        assert_eq!(page.map(|page| page.explanation), Some("e".to_owned()));
        assert!(parse(r#"{"missing_data_types": ["neuron_explainer"]}"#).expect("missing").is_none());
        assert!(parse(r#"{"metadata": null}"#).expect_err("neither").contains("neither"));
        assert!(parse(r#"{"data": {"explanation": 3}}"#).expect_err("wrong type").contains("malformed JSON"));
    }

    #[test]
    fn keys_split_from_the_right() {
        assert_eq!(unit_of_key("gpt2-small/3/17"), Ok(("gpt2-small", 3, 17)));
        assert!(unit_of_key("gpt2-small/x/17").is_err());
        assert!(unit_of_key("17").is_err());
    }
}
