//! The services: which data each serves at model, layer and neuron level, and how each page is built.
//!
//! This table drives the router's checks, `available_services`, `/all` and the
//! OpenAPI document, so a service is described in exactly one place.

use dd_data::{LayerDataKind, LayerRecord, ModelDataKind, ModelRecord, NeuronDataKind, NeuronGraph, NeuronRecord};
use dd_store::codec::decode_examples_quantized;
use dd_store::{ModelEntry, SourceEntry, StoreError, StoreRead};

use crate::error::ApiError;
use crate::render::{self, JsonOut};
use crate::state::ModelContext;
use crate::wire;

/// A named view of the stored data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Model metadata, at every level.
    Metadata,
    /// Top examples (neuron), rankings (layer, model): the original's Neuroscope shape.
    Neuroscope,
    /// Every example group with token ids.
    Examples,
    /// Activation statistics (neuron) and per-neuron summaries (layer).
    Stats,
    /// Direct logit attribution.
    Logits,
    /// The first explanation, in the original's OpenAI shape.
    NeuronExplainer,
    /// Every explanation with its scores.
    Explanations,
    /// Neuron2Graph graph with DOT and similar neurons, in the original's shape.
    Neuron2Graph,
    /// Similar neurons.
    Similar,
    /// Token search over the model (`?query=`).
    Neuron2GraphSearch,
}

/// Where in the hierarchy a request points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `/api/{model}/{service}`.
    Model,
    /// `/api/{model}/{service}/{layer}`.
    Layer,
    /// `/api/{model}/{service}/{layer}/{neuron}`.
    Neuron,
}

/// The unit a request is about, validated against the model's shape.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    Model,
    Layer(u32),
    Neuron(u32, u32),
}

impl Target {
    pub(crate) fn level(self) -> Level {
        match self {
            Target::Model => Level::Model,
            Target::Layer(_) => Level::Layer,
            Target::Neuron(..) => Level::Neuron,
        }
    }
}

impl Level {
    /// `model`, `layer` or `neuron`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Model => "model",
            Level::Layer => "layer",
            Level::Neuron => "neuron",
        }
    }
}

impl Service {
    /// Every service, in the order `/all` lists them.
    pub const ALL: &'static [Service] = &[
        Service::Metadata,
        Service::Neuroscope,
        Service::Examples,
        Service::Stats,
        Service::Logits,
        Service::NeuronExplainer,
        Service::Explanations,
        Service::Neuron2Graph,
        Service::Similar,
        Service::Neuron2GraphSearch,
    ];

    /// The name used in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Service::Metadata => "metadata",
            Service::Neuroscope => "neuroscope",
            Service::Examples => "examples",
            Service::Stats => "stats",
            Service::Logits => "logits",
            Service::NeuronExplainer => "neuron_explainer",
            Service::Explanations => "explanations",
            Service::Neuron2Graph => "neuron2graph",
            Service::Similar => "similar",
            Service::Neuron2GraphSearch => "neuron2graph-search",
        }
    }

    /// The service with this URL name.
    pub fn from_name(name: &str) -> Option<Self> {
        Service::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// One line for the documentation.
    pub fn summary(self) -> &'static str {
        match self {
            Service::Metadata => "Model metadata (the same object at every level).",
            Service::Neuroscope => {
                "Top-activating texts of a neuron; at layer and model level, neurons ranked by interestingness."
            }
            Service::Examples => "Every recorded example group (top, bottom, quantile bands, random) with token ids.",
            Service::Stats => "Activation statistics and histogram; at layer level, summary numbers for every neuron.",
            Service::Logits => "Direct logit attribution: the output tokens the neuron promotes and suppresses.",
            Service::NeuronExplainer => "The first explanation and its score, in OpenAI neuron-explainer's shape.",
            Service::Explanations => "Every explanation of the neuron with all its scores.",
            Service::Neuron2Graph => "The Neuron2Graph graph, as nodes and as Graphviz DOT, with similar neurons.",
            Service::Similar => "Neurons most similar to this one.",
            Service::Neuron2GraphSearch => {
                "Neurons whose Neuron2Graph graph contains tokens: `?query=any:the,activating:dog` (terms intersect)."
            }
        }
    }

    /// The levels this service answers.
    pub fn levels(self) -> &'static [Level] {
        match self {
            Service::Metadata | Service::Neuroscope => &[Level::Model, Level::Layer, Level::Neuron],
            Service::Stats => &[Level::Layer, Level::Neuron],
            Service::Neuron2GraphSearch => &[Level::Model],
            Service::Examples
            | Service::Logits
            | Service::NeuronExplainer
            | Service::Explanations
            | Service::Neuron2Graph
            | Service::Similar => &[Level::Neuron],
        }
    }

    /// The OpenAPI schema of this service's page at a level.
    pub fn schema(self, level: Level) -> &'static str {
        match (self, level) {
            (Service::Metadata, _) => "MetadataObject",
            (Service::Neuroscope, Level::Model) => "NeuroscopeModelPage",
            (Service::Neuroscope, Level::Layer) => "NeuroscopeLayerPage",
            (Service::Neuroscope, Level::Neuron) => "NeuroscopeNeuronPage",
            (Service::Examples, _) => "ExamplesPage",
            (Service::Stats, Level::Layer) => "LayerStatsPage",
            (Service::Stats, _) => "StatsPage",
            (Service::Logits, _) => "LogitsPage",
            (Service::NeuronExplainer, _) => "NeuronExplainerPage",
            (Service::Explanations, _) => "ExplanationsPage",
            (Service::Neuron2Graph, _) => "Neuron2GraphPage",
            (Service::Similar, _) => "SimilarPage",
            (Service::Neuron2GraphSearch, _) => "NeuronIndexObject",
        }
    }

    /// The stored data kind this service needs, named for `missing_data_types`.
    pub fn required_kind(self) -> Option<&'static str> {
        match self {
            Service::Metadata => None,
            Service::Neuroscope | Service::Examples => Some(NeuronDataKind::Examples.name()),
            Service::Stats => Some(NeuronDataKind::Stats.name()),
            Service::Logits => Some(NeuronDataKind::Logits.name()),
            Service::NeuronExplainer | Service::Explanations => Some(NeuronDataKind::Explanations.name()),
            Service::Neuron2Graph => Some(NeuronDataKind::Graph.name()),
            Service::Similar => Some(NeuronDataKind::Similar.name()),
            Service::Neuron2GraphSearch => Some(ModelDataKind::TokenIndex.name()),
        }
    }

    /// Whether the model's source has the data this service needs.
    pub fn available(self, model: &ModelEntry, source: &SourceEntry) -> bool {
        match self {
            Service::Metadata => true,
            Service::Neuroscope | Service::Examples => source.has_neuron_kind(NeuronDataKind::Examples),
            Service::Stats => source.has_neuron_kind(NeuronDataKind::Stats),
            Service::Logits => source.has_neuron_kind(NeuronDataKind::Logits),
            Service::NeuronExplainer | Service::Explanations => source.has_neuron_kind(NeuronDataKind::Explanations),
            Service::Neuron2Graph => source.has_neuron_kind(NeuronDataKind::Graph),
            Service::Similar => source.has_neuron_kind(NeuronDataKind::Similar),
            Service::Neuron2GraphSearch => model.model_kinds.contains(&ModelDataKind::TokenIndex),
        }
    }

    /// Appends this service's page for `target` to `out`; `Ok(false)` when the data is missing.
    pub(crate) fn render(
        self,
        store: &dyn StoreRead,
        model: &ModelContext,
        source: &SourceEntry,
        target: Target,
        out: &mut JsonOut,
    ) -> Result<bool, ApiError> {
        let page = match (self, target) {
            (Service::Metadata, _) => {
                out.raw(&model.metadata_json);
                return Ok(true);
            }
            (Service::Neuroscope, Target::Model) => match store.model_record(&model.entry, ModelDataKind::Ranking)? {
                Some(ModelRecord::Ranking(ranking)) => {
                    json(&wire::NeuroscopeModelPage { important_neurons: ranked(&ranking) })
                }
                _ => return Ok(false),
            },
            (Service::Neuroscope, Target::Layer(layer)) => {
                match store.layer_record(source, layer, LayerDataKind::Ranking)? {
                    Some(LayerRecord::Ranking(ranking)) => json(&wire::NeuroscopeLayerPage {
                        num_neurons: source.info.units_per_layer,
                        important_neurons: ranked(&ranking),
                    }),
                    _ => return Ok(false),
                }
            }
            (Service::Stats, Target::Layer(layer)) => {
                match store.layer_record(source, layer, LayerDataKind::Summary)? {
                    Some(LayerRecord::Summary(summary)) => json(&wire::LayerStatsPage {
                        layer,
                        neurons: summary
                            .neurons
                            .iter()
                            .enumerate()
                            .map(|(index, n)| wire::NeuronSummaryObject {
                                neuron: index as u32,
                                max_activation: n.max_activation,
                                min_activation: n.min_activation,
                                density: n.density,
                                kurtosis: n.kurtosis,
                            })
                            .collect(),
                    }),
                    _ => return Ok(false),
                }
            }
            (Service::Neuroscope | Service::Examples, Target::Neuron(layer, index)) => {
                // Examples are rendered from their stored form: codes, not decoded floats.
                let Some(blob) = store.neuron_blob(source.id, layer, index, NeuronDataKind::Examples)? else {
                    return Ok(false);
                };
                let stored = decode_examples_quantized(&blob).map_err(|error| {
                    ApiError::internal(&StoreError::Codec {
                        what: format!("examples of {layer}/{index}"),
                        source: error,
                    })
                })?;
                if self == Service::Examples {
                    render::examples_page(out, layer, index, &stored, &model.tokens);
                    return Ok(true);
                }
                let Some(top) = stored.top() else { return Ok(false) };
                render::neuroscope_page(out, layer, index, &stored, top, &model.tokens);
                return Ok(true);
            }
            (_, Target::Neuron(layer, index)) => {
                let kind = match self {
                    Service::Stats => NeuronDataKind::Stats,
                    Service::Logits => NeuronDataKind::Logits,
                    Service::NeuronExplainer | Service::Explanations => NeuronDataKind::Explanations,
                    Service::Neuron2Graph => NeuronDataKind::Graph,
                    Service::Similar => NeuronDataKind::Similar,
                    Service::Metadata | Service::Neuroscope | Service::Examples | Service::Neuron2GraphSearch => {
                        return Ok(false);
                    }
                };
                let Some(record) = store.neuron_record(source, layer, index, kind)? else { return Ok(false) };
                match (self, record) {
                    (_, NeuronRecord::Stats(stats)) => json(&wire::StatsPage {
                        count: stats.count,
                        max: stats.max,
                        min: stats.min,
                        mean: stats.mean,
                        variance: stats.variance,
                        skewness: stats.skewness,
                        kurtosis: stats.kurtosis,
                        density: stats.density,
                        histogram: wire::HistogramObject {
                            edges: stats.histogram.edges(),
                            counts: stats.histogram.counts.clone(),
                        },
                    }),
                    (_, NeuronRecord::Logits(logits)) => {
                        let objects = |values: &[dd_data::TokenValue]| {
                            values
                                .iter()
                                .map(|v| wire::TokenValueObject {
                                    token_id: v.token,
                                    token: model.tokens.display(v.token),
                                    value: v.value,
                                })
                                .collect()
                        };
                        json(&wire::LogitsPage { top: objects(&logits.top), bottom: objects(&logits.bottom) })
                    }
                    (Service::NeuronExplainer, NeuronRecord::Explanations(explanations)) => {
                        let Some(first) = explanations.explanations.first() else { return Ok(false) };
                        json(&wire::NeuronExplainerPage {
                            explanation: first.text.clone(),
                            score: first.scores.first().map(|s| s.value),
                        })
                    }
                    (_, NeuronRecord::Explanations(explanations)) => json(&wire::ExplanationsPage {
                        explanations: explanations
                            .explanations
                            .into_iter()
                            .map(|e| wire::ExplanationObject {
                                text: e.text,
                                origin: e.origin,
                                author: e.author,
                                scores: e
                                    .scores
                                    .into_iter()
                                    .map(|s| wire::ScoreObject { name: s.name, value: s.value })
                                    .collect(),
                            })
                            .collect(),
                    }),
                    (_, NeuronRecord::Graph(graph)) => {
                        let similar = match store.neuron_record(source, layer, index, NeuronDataKind::Similar)? {
                            Some(NeuronRecord::Similar(similar)) => similar_objects(&similar),
                            _ => Vec::new(),
                        };
                        json(&wire::Neuron2GraphPage {
                            graphviz: graphviz(&graph),
                            graph: graph_object(graph),
                            similar,
                        })
                    }
                    (_, NeuronRecord::Similar(similar)) => {
                        json(&wire::SimilarPage { similar: similar_objects(&similar) })
                    }
                    _ => return Ok(false),
                }
            }
            _ => return Ok(false),
        };
        out.raw(&page);
        Ok(true)
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn ranked(ranking: &dd_data::NeuronRanking) -> Vec<(wire::NeuronIndexObject, f32)> {
    ranking
        .neurons
        .iter()
        .map(|r| (wire::NeuronIndexObject { layer: r.neuron.layer, neuron: r.neuron.index }, r.score))
        .collect()
}

fn similar_objects(similar: &dd_data::SimilarNeurons) -> Vec<wire::SimilarNeuronObject> {
    similar
        .neurons
        .iter()
        .map(|s| wire::SimilarNeuronObject { layer: s.layer, neuron: s.index, similarity: s.similarity })
        .collect()
}

fn graph_object(graph: NeuronGraph) -> wire::GraphObject {
    wire::GraphObject {
        subgraph_indices: graph.subgraph_indices,
        graph: graph
            .nodes
            .into_iter()
            .map(|n| wire::GraphNodeObject { token: n.token, required: n.required, importance: n.importance })
            .collect(),
    }
}

/// Graphviz DOT of a graph, as the original served it: activating depths red, context depths blue,
/// fill strength from importance, edges from each node to the nodes it requires.
pub(crate) fn graphviz(graph: &NeuronGraph) -> String {
    use std::fmt::Write;
    let mut dot = String::from("digraph {\n  graph [rankdir=LR splines=spline ranksep=1.5 nodesep=0.2]\n");
    let n_nodes = graph.nodes.len() as u32;
    for (depth, &start) in graph.subgraph_indices.iter().enumerate() {
        let end = graph.subgraph_indices.get(depth + 1).copied().unwrap_or(n_nodes).min(n_nodes);
        let _ = writeln!(dot, "  subgraph cluster_{depth} {{");
        for id in start..end {
            let node = &graph.nodes[id as usize];
            let shade = (255.0 * (1.0 - node.importance.clamp(0.0, 1.0))).round() as u8;
            let fill =
                if depth <= 1 { format!("#ff{shade:02x}{shade:02x}") } else { format!("#{shade:02x}{shade:02x}ff") };
            let label = node.token.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(dot, "    {id} [label=\"{label}\" fillcolor=\"{fill}\" shape=box style=\"filled,solid\"]");
        }
        dot.push_str("  }\n");
    }
    for (id, node) in graph.nodes.iter().enumerate() {
        for required in &node.required {
            let _ = writeln!(dot, "  {required} -> {id}");
        }
    }
    dot.push_str("}\n");
    dot
}
