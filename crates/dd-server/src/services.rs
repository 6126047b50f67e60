//! The services: which data each serves at model, layer and neuron level, and how each page is built.
//!
//! This table drives the router's checks, `available_services`, `/all` and the
//! OpenAPI document, so a service is described in exactly one place.

use dd_data::{LayerDataKind, LayerRecord, ModelDataKind, ModelRecord, NeuronDataKind, NeuronRecord};
use dd_store::codec::decode_examples_quantized;
use dd_store::{ModelEntry, SourceEntry, StoreError, StoreRead};

use crate::error::ApiError;
use crate::graph_page;
use crate::json::JsonOut;
use crate::model_context::ModelContext;
use crate::relations;
use crate::render;
use crate::token_strings::TokenStrings;
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
    /// Tokens with the highest mean activation over the recorded dataset.
    ActivatingTokens,
    /// Input tokens driving the neuron through the direct path, from weights.
    InputTokens,
    /// Strongest weight connections to earlier- and later-layer neurons.
    Connections,
    /// The neurons whose activations correlate most with this one's.
    Correlations,
    /// Co-activating groups (model), the neuron's group (neuron).
    Groups,
    /// Roles in the weight graph: rankings (model), every neuron (layer), one neuron.
    Roles,
    /// A vector for the neuron's behaviour and its nearest neighbours.
    Embedding,
    /// Change against a baseline recording: most changed (model), every neuron (layer), one neuron.
    Changes,
    /// Token search over the model (`?query=`).
    Neuron2GraphSearch,
    /// Neurons that respond to tokens, ranked by selectivity (model level, `?query=`).
    TokenSearch,
    /// Explanations closest in meaning to a query (model level, `?q=`). Only when the server embeds
    /// queries (`serve --embedder`) and the explanations carry embeddings.
    ExplanationSearch,
    /// A text run through the model (`?text=`): the neuron's activation per token, or per token the
    /// neurons that fire most. Only when the server holds the model (`serve --model`).
    Activations,
    /// The stored records themselves, in the store's encoding: what the Python package's `Client`
    /// decodes with the same codec as a local file, so both give equal objects.
    Records,
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
        Service::ActivatingTokens,
        Service::InputTokens,
        Service::Connections,
        Service::Correlations,
        Service::Groups,
        Service::Roles,
        Service::Embedding,
        Service::Changes,
        Service::Neuron2GraphSearch,
        Service::TokenSearch,
        Service::ExplanationSearch,
        Service::Activations,
        Service::Records,
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
            Service::ActivatingTokens => "activating_tokens",
            Service::InputTokens => "input_tokens",
            Service::Connections => "connections",
            Service::Correlations => "correlations",
            Service::Groups => "groups",
            Service::Roles => "roles",
            Service::Embedding => "embedding",
            Service::Changes => "changes",
            Service::Neuron2GraphSearch => "neuron2graph-search",
            Service::TokenSearch => "token-search",
            Service::ExplanationSearch => "explanation-search",
            Service::Activations => "activations",
            Service::Records => "records",
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
                "Top-activating texts of a neuron; at layer and model level, neurons ranked by interestingness \
                 (how selective they are; the formula is under `StatsPage.interestingness`)."
            }
            Service::Examples => "Every recorded example group (top, bottom, quantile bands, random) with token ids.",
            Service::Stats => {
                "Activation statistics and histogram over every position but BOS, the BOS position's own \
                 statistics, and the interestingness score; at layer level, summary numbers for every neuron."
            }
            Service::Logits => "Direct logit attribution: the output tokens the neuron promotes and suppresses.",
            Service::NeuronExplainer => "The first explanation and its score, in OpenAI neuron-explainer's shape.",
            Service::Explanations => "Every explanation of the neuron with all its scores.",
            Service::Neuron2Graph => "The Neuron2Graph graph, as nodes and as Graphviz DOT, with similar neurons.",
            Service::Similar => "Neurons most similar to this one.",
            Service::ActivatingTokens => {
                "Tokens with the highest mean activation of the neuron over the recorded dataset, with their counts."
            }
            Service::InputTokens => {
                "Input tokens whose embeddings raise and lower the neuron most through the direct path (from weights)."
            }
            Service::Connections => {
                "Earlier-layer neurons that drive this neuron most and later-layer neurons it drives most, by weights."
            }
            Service::Correlations => {
                "Neurons of the whole model whose activations correlate most with this one's (Pearson r over a \
                 sample of the recording's tokens), most positive and most negative."
            }
            Service::Groups => {
                "Co-activating groups: communities of the correlation graph with their cohesion (mean r over \
                 pairs); at neuron level the neuron's group with the contexts where its members fire together."
            }
            Service::Roles => {
                "Roles in the weight graph (degree, strength, participation across layers, betweenness; hub, \
                 connector or peripheral): one neuron, every neuron of a layer, or the model's rankings."
            }
            Service::Embedding => {
                "A vector for the neuron's behaviour (its Neuron2Graph graph's tokens, or its activating tokens, \
                 through the token embeddings) and its nearest neighbours by that vector."
            }
            Service::Changes => {
                "Change against a baseline recording of the same architecture (`deepdecipher compare`): statistics, \
                 top-context overlap, activation correlation and a score; the most changed neurons at model level."
            }
            Service::Neuron2GraphSearch => {
                "Neurons whose Neuron2Graph graph contains tokens: `?query=any:the,activating:dog` (terms intersect)."
            }
            Service::TokenSearch => {
                "Neurons that respond to tokens, in their activating tokens or Neuron2Graph graph, most selective \
                 first (z of the token mean against the neuron's spread): `?query=paris`, `?query=any:the,important:dog`."
            }
            Service::ExplanationSearch => {
                "Explanations closest in meaning to a query (`?q=a verb in the past tense`), by the cosine of sentence \
                 embeddings, most similar first, filtered by `min_score`, `origin` and `layer`. Only when the server \
                 embeds queries (`serve --embedder DIR`) and the explanations carry embeddings (`deepdecipher \
                 explain`); otherwise 404."
            }
            Service::Activations => {
                "A text (`?text=`) run through the model: per token, the neuron's activation, or at model level the \
                 neurons that fire most. Only when the server runs the model (`serve --model`); otherwise 404."
            }
            Service::Records => {
                "The stored records of the model, a layer or a neuron in the store's own encoding (`docs/format.md`), \
                 base64 in JSON: what the Python package's `Client` reads. `?kinds=` keeps some."
            }
        }
    }

    /// The levels this service answers.
    pub fn levels(self) -> &'static [Level] {
        match self {
            Service::Metadata | Service::Neuroscope | Service::Records => &[Level::Model, Level::Layer, Level::Neuron],
            Service::Stats => &[Level::Layer, Level::Neuron],
            Service::Neuron2GraphSearch | Service::TokenSearch | Service::ExplanationSearch => &[Level::Model],
            Service::Activations | Service::Groups => &[Level::Model, Level::Neuron],
            Service::Roles | Service::Changes => &[Level::Model, Level::Layer, Level::Neuron],
            Service::Examples
            | Service::Logits
            | Service::NeuronExplainer
            | Service::Explanations
            | Service::Neuron2Graph
            | Service::Similar
            | Service::ActivatingTokens
            | Service::InputTokens
            | Service::Connections
            | Service::Correlations
            | Service::Embedding => &[Level::Neuron],
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
            (Service::ActivatingTokens, _) => "ActivatingTokensPage",
            (Service::InputTokens, _) => "InputTokensPage",
            (Service::Connections, _) => "ConnectionsPage",
            (Service::Correlations, _) => "CorrelationsPage",
            (Service::Groups, Level::Model) => "GroupsPage",
            (Service::Groups, _) => "NeuronGroupPage",
            (Service::Roles, Level::Model) => "RolesModelPage",
            (Service::Roles, Level::Layer) => "LayerRolesPage",
            (Service::Roles, Level::Neuron) => "RoleObject",
            (Service::Embedding, _) => "EmbeddingPage",
            (Service::Changes, Level::Model) => "ChangesModelPage",
            (Service::Changes, Level::Layer) => "LayerChangesPage",
            (Service::Changes, Level::Neuron) => "NeuronChangePage",
            (Service::Neuron2GraphSearch, _) => "NeuronIndexObject",
            (Service::TokenSearch, _) => "TokenSearchPage",
            (Service::ExplanationSearch, _) => "ExplanationSearchPage",
            (Service::Activations, Level::Model) => "TextFiringPage",
            (Service::Activations, _) => "TextActivationsPage",
            (Service::Records, _) => "RecordsPage",
        }
    }

    /// The stored data kind this service needs, named for `missing_data_types`.
    pub fn required_kind(self) -> Option<&'static str> {
        match self {
            Service::Metadata | Service::Records => None,
            Service::Neuroscope | Service::Examples => Some(NeuronDataKind::Examples.name()),
            Service::Stats => Some(NeuronDataKind::Stats.name()),
            Service::Logits => Some(NeuronDataKind::Logits.name()),
            Service::NeuronExplainer | Service::Explanations | Service::ExplanationSearch => {
                Some(NeuronDataKind::Explanations.name())
            }
            Service::Neuron2Graph => Some(NeuronDataKind::Graph.name()),
            Service::Similar => Some(NeuronDataKind::Similar.name()),
            Service::ActivatingTokens => Some(NeuronDataKind::ActivatingTokens.name()),
            Service::InputTokens => Some(NeuronDataKind::InputTokens.name()),
            Service::Connections => Some(NeuronDataKind::Connections.name()),
            Service::Correlations => Some(NeuronDataKind::Correlations.name()),
            Service::Groups => Some(ModelDataKind::Groups.name()),
            Service::Roles => Some(LayerDataKind::Roles.name()),
            Service::Embedding => Some(NeuronDataKind::Embedding.name()),
            Service::Changes => Some(LayerDataKind::Changes.name()),
            Service::Neuron2GraphSearch => Some(ModelDataKind::TokenIndex.name()),
            Service::TokenSearch => Some(NeuronDataKind::ActivatingTokens.name()),
            Service::Activations => Some("live_model"),
        }
    }

    /// Services with data for the model's `source`.
    pub(crate) fn with_data(model: &ModelEntry, source: &SourceEntry) -> Vec<Service> {
        Service::ALL.iter().copied().filter(|s| s.available(model, source)).collect()
    }

    /// Whether the model's source has the data this service needs.
    pub fn available(self, model: &ModelEntry, source: &SourceEntry) -> bool {
        match self {
            Service::Metadata | Service::Records => true,
            Service::Neuroscope | Service::Examples => source.has_neuron_kind(NeuronDataKind::Examples),
            Service::Stats => source.has_neuron_kind(NeuronDataKind::Stats),
            Service::Logits => source.has_neuron_kind(NeuronDataKind::Logits),
            // Whether the explanations carry embeddings is known once the index is built; whether the
            // server embeds queries is the state's (`AppState::query_encoder`).
            Service::NeuronExplainer | Service::Explanations | Service::ExplanationSearch => {
                source.has_neuron_kind(NeuronDataKind::Explanations)
            }
            Service::Neuron2Graph => source.has_neuron_kind(NeuronDataKind::Graph),
            Service::Similar => source.has_neuron_kind(NeuronDataKind::Similar),
            Service::ActivatingTokens => source.has_neuron_kind(NeuronDataKind::ActivatingTokens),
            Service::TokenSearch => {
                source.has_neuron_kind(NeuronDataKind::ActivatingTokens)
                    || source.has_neuron_kind(NeuronDataKind::Graph)
            }
            Service::InputTokens => source.has_neuron_kind(NeuronDataKind::InputTokens),
            Service::Connections => source.has_neuron_kind(NeuronDataKind::Connections),
            Service::Correlations => source.has_neuron_kind(NeuronDataKind::Correlations),
            Service::Groups => model.model_kinds.contains(&ModelDataKind::Groups),
            Service::Roles => source.layer_kinds.contains(&LayerDataKind::Roles),
            Service::Embedding => source.has_neuron_kind(NeuronDataKind::Embedding),
            Service::Changes => source.layer_kinds.contains(&LayerDataKind::Changes),
            Service::Neuron2GraphSearch => model.model_kinds.contains(&ModelDataKind::TokenIndex),
            // Not stored data: the server's model decides (`AppState::live`).
            Service::Activations => false,
        }
    }

    /// The relation between neurons this service serves, if it is one.
    fn relation(self) -> Option<relations::Relation> {
        Some(match self {
            Service::Correlations => relations::Relation::Correlations,
            Service::Groups => relations::Relation::Groups,
            Service::Roles => relations::Relation::Roles,
            Service::Embedding => relations::Relation::Embedding,
            Service::Changes => relations::Relation::Changes,
            _ => return None,
        })
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
        if let Some(relation) = self.relation() {
            let (layer, neuron) = match target {
                Target::Model => (None, None),
                Target::Layer(layer) => (Some(layer), None),
                Target::Neuron(layer, neuron) => (Some(layer), Some(neuron)),
            };
            let Some(page) = relations::page(relation, store, &model.entry, &model.tokens, source, (layer, neuron))?
            else {
                return Ok(false);
            };
            out.raw(&page);
            return Ok(true);
        }
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
                    Service::ActivatingTokens => NeuronDataKind::ActivatingTokens,
                    Service::InputTokens => NeuronDataKind::InputTokens,
                    Service::Connections => NeuronDataKind::Connections,
                    Service::Metadata
                    | Service::Neuroscope
                    | Service::Examples
                    | Service::Neuron2GraphSearch
                    | Service::TokenSearch
                    | Service::ExplanationSearch
                    | Service::Activations
                    | Service::Records
                    | Service::Correlations
                    | Service::Groups
                    | Service::Roles
                    | Service::Embedding
                    | Service::Changes => {
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
                        interestingness: dd_data::interestingness(&stats),
                        bos: stats.bos.map(|bos| wire::PositionStatsObject {
                            count: bos.count,
                            max: bos.max,
                            min: bos.min,
                            mean: bos.mean,
                        }),
                    }),
                    (_, NeuronRecord::Logits(logits)) => json(&wire::LogitsPage {
                        top: token_values(&logits.top, &model.tokens),
                        bottom: token_values(&logits.bottom, &model.tokens),
                    }),
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
                            .map(|explanation| explanation_object(explanation, &model.tokens))
                            .collect(),
                    }),
                    (_, NeuronRecord::Graph(graph)) => {
                        let similar = match store.neuron_record(source, layer, index, NeuronDataKind::Similar)? {
                            Some(NeuronRecord::Similar(similar)) => graph_page::similar_objects(&similar),
                            _ => Vec::new(),
                        };
                        json(&graph_page::page(graph, similar))
                    }
                    (_, NeuronRecord::Similar(similar)) => {
                        json(&wire::SimilarPage { similar: graph_page::similar_objects(&similar) })
                    }
                    (_, NeuronRecord::ActivatingTokens(activating)) => json(&wire::ActivatingTokensPage {
                        tokens: activating
                            .tokens
                            .iter()
                            .map(|t| wire::TokenMeanObject {
                                token_id: t.token,
                                token: model.tokens.display(t.token),
                                mean: t.mean,
                                count: t.count,
                            })
                            .collect(),
                    }),
                    (_, NeuronRecord::InputTokens(inputs)) => json(&wire::InputTokensPage {
                        top: token_values(&inputs.top, &model.tokens),
                        bottom: token_values(&inputs.bottom, &model.tokens),
                    }),
                    (_, NeuronRecord::Connections(connections)) => json(&wire::ConnectionsPage {
                        inputs: connection_objects(&connections.inputs),
                        outputs: connection_objects(&connections.outputs),
                    }),
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

/// Token ids with their display strings, as `logits` and `input_tokens` print them.
fn token_values(values: &[dd_data::TokenValue], tokens: &TokenStrings) -> Vec<wire::TokenValueObject> {
    values
        .iter()
        .map(|v| wire::TokenValueObject { token_id: v.token, token: tokens.display(v.token), value: v.value })
        .collect()
}

/// An explanation as `explanations` serves it: everything but the embedding's vector.
fn explanation_object(explanation: dd_data::Explanation, tokens: &TokenStrings) -> wire::ExplanationObject {
    wire::ExplanationObject {
        text: explanation.text,
        origin: explanation.origin,
        author: explanation.author,
        scores: explanation.scores.into_iter().map(|s| wire::ScoreObject { name: s.name, value: s.value }).collect(),
        provenance: explanation.provenance.map(|p| wire::ExplanationProvenanceObject {
            prompt_version: p.prompt_version,
            prompt: p.prompt,
            simulator: p.simulator,
            created: p.created,
        }),
        simulations: explanation
            .simulations
            .into_iter()
            .map(|sequence| wire::SimulatedSequenceObject {
                tokens: sequence.token_ids.iter().map(|&id| tokens.display(id)).collect(),
                token_ids: sequence.token_ids,
                true_activations: sequence.true_activations,
                simulated_activations: sequence.simulated_activations,
            })
            .collect(),
        embedding_model: explanation.embedding.map(|embedding| embedding.model),
    }
}

fn connection_objects(connections: &[dd_data::Connection]) -> Vec<wire::ConnectionObject> {
    connections
        .iter()
        .map(|c| wire::ConnectionObject { layer: c.neuron.layer, neuron: c.neuron.index, weight: c.weight })
        .collect()
}

#[cfg(test)]
mod tests {
    //! The token- and weight-level services end to end in process: records written to a real SQLite
    //! file, served through the whole application, pages compared with snapshots.

    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use dd_data::{
        ActivatingTokens, Connection, InputTokens, ModelMetadata, ModelRecord, NeuronConnections, NeuronIndex,
        Provenance, TokenMean, TokenValue, Vocabulary,
    };
    use dd_store::{EncodeOptions, ReadConfig, SqliteStore, StoreWriter};
    use expect_test::expect;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::{AppState, ServerConfig};

    /// A served database of 3 layers × 4 neurons: neuron 1/2 has the three token- and weight-level
    /// kinds, every other neuron has none.
    struct Fixture {
        _dir: tempfile::TempDir,
        app: tower_http::normalize_path::NormalizePath<axum::Router>,
        runtime: tokio::runtime::Runtime,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("kinds.db");
            let metadata = ModelMetadata {
                name: "m".into(),
                architecture: "synthetic".into(),
                n_layers: 3,
                d_mlp: 4,
                d_model: 2,
                activation_function: "gelu".into(),
                dataset: "hand-written".into(),
                training_dataset: None,
                n_parameters: 100,
                context_length: 8,
                provenance: Provenance {
                    data_source: "test".into(),
                    model_source: None,
                    weights: None,
                    tokens_recorded: 0,
                    tool_version: "0.0.0".into(),
                    recorded_at: "1970-01-01T00:00:00Z".into(),
                },
            };
            let connection = |layer, index, weight| Connection { neuron: NeuronIndex { layer, index }, weight };
            let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("writer");
            let (model, source) = writer.add_model(&metadata).expect("model");
            let mut batch = writer.batch().expect("batch");
            for record in [
                NeuronRecord::ActivatingTokens(ActivatingTokens {
                    tokens: vec![
                        TokenMean { token: 2, mean: 4.5, count: 17 },
                        TokenMean { token: 4, mean: 3.25, count: 4 },
                        // Another spelling of token 2: token search lists the neuron once, at its best mean.
                        TokenMean { token: 5, mean: 2.0, count: 3 },
                        // Past the vocabulary: shown as `<id>`, as in every other token list.
                        TokenMean { token: 99, mean: 1.0, count: 1 },
                    ],
                }),
                NeuronRecord::InputTokens(InputTokens {
                    top: vec![TokenValue { token: 3, value: 0.75 }, TokenValue { token: 2, value: 0.5 }],
                    bottom: vec![TokenValue { token: 1, value: -0.625 }],
                }),
                NeuronRecord::Connections(NeuronConnections {
                    inputs: vec![connection(0, 3, -1.5), connection(0, 1, 0.5)],
                    outputs: vec![connection(2, 0, 0.25)],
                }),
            ] {
                batch.put_neuron(source, 1, 2, &record).expect("put");
            }
            let tokens = ["<|endoftext|>", " the", " Paris", "\"", " London", "PARIS"];
            let vocabulary = Vocabulary { tokens: tokens.iter().map(|t| (*t).to_owned()).collect() };
            batch.put_model(model, &ModelRecord::Vocabulary(vocabulary)).expect("vocabulary");
            batch.commit().expect("commit");
            writer.finish().expect("finish");
            let config = ReadConfig { n_connections: 1, cache_kib: 1024, mmap_bytes: 0, immutable: true };
            let store = SqliteStore::open(&path, &config).expect("open");
            let state = AppState::load(Arc::new(store), ServerConfig::standard()).expect("state");
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            Fixture { _dir: dir, app: crate::app(Arc::new(state)), runtime }
        }

        /// Status and body text of `GET uri`.
        fn get_text(&self, uri: &str) -> (u16, String) {
            let request = Request::get(uri).body(Body::empty()).expect("request");
            let response = self.runtime.block_on(self.app.clone().oneshot(request)).expect("response");
            let status = response.status().as_u16();
            let body = self.runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).expect("body");
            (status, String::from_utf8(body.to_vec()).expect("UTF-8 body"))
        }

        /// Status and parsed body of `GET uri`.
        fn get(&self, uri: &str) -> (u16, Value) {
            let (status, text) = self.get_text(uri);
            (status, serde_json::from_str(&text).expect("JSON body"))
        }

        /// The `data` of a successful page exactly as sent, key order included, for a snapshot.
        fn data(&self, uri: &str) -> String {
            let (status, text) = self.get_text(uri);
            assert_eq!(status, 200, "{uri}: {text}");
            let body: Value = serde_json::from_str(&text).expect("JSON body");
            assert_eq!(body["metadata"]["name"], "m", "{uri} carries the metadata envelope");
            let data = text
                .strip_prefix("{\"data\":")
                .and_then(|rest| rest.rsplit_once(",\"metadata\":"))
                .map(|(data, _)| data.to_owned())
                .expect("envelope");
            assert_eq!(serde_json::from_str::<Value>(&data).expect("data"), body["data"]);
            data
        }
    }

    #[test]
    fn activating_tokens_resolve_token_strings_in_stored_order() {
        expect![[r#"{"tokens":[{"token_id":2,"token":" Paris","mean":4.5,"count":17},{"token_id":4,"token":" London","mean":3.25,"count":4},{"token_id":5,"token":"PARIS","mean":2.0,"count":3},{"token_id":99,"token":"<99>","mean":1.0,"count":1}]}"#]]
        .assert_eq(&Fixture::new().data("/api/m/activating_tokens/1/2"));
    }

    #[test]
    fn input_tokens_have_the_logits_shape() {
        expect![[r#"{"top":[{"token_id":3,"token":"\"","value":0.75},{"token_id":2,"token":" Paris","value":0.5}],"bottom":[{"token_id":1,"token":" the","value":-0.625}]}"#]]
        .assert_eq(&Fixture::new().data("/api/m/input_tokens/1/2"));
    }

    #[test]
    fn connections_are_layer_neuron_weight_objects() {
        expect![[r#"{"inputs":[{"layer":0,"neuron":3,"weight":-1.5},{"layer":0,"neuron":1,"weight":0.5}],"outputs":[{"layer":2,"neuron":0,"weight":0.25}]}"#]]
        .assert_eq(&Fixture::new().data("/api/m/connections/1/2"));
    }

    /// `/all` carries the three pages for a neuron that has them and names the missing kinds for one
    /// that does not; the single routes answer 404 `missing_data` there, and no other level.
    #[test]
    fn all_and_missing_data_cover_the_new_services() {
        let fixture = Fixture::new();
        let new_services = ["activating_tokens", "input_tokens", "connections"];
        let (status, all) = fixture.get("/api/m/all/1/2");
        assert_eq!(status, 200);
        let mut services: Vec<&str> = all.as_object().expect("object").keys().map(String::as_str).collect();
        services.sort_unstable();
        assert_eq!(services, ["activating_tokens", "connections", "input_tokens", "metadata"]);
        assert_eq!(
            all["metadata"]["data"]["available_services"],
            serde_json::json!([
                "metadata",
                "activating_tokens",
                "input_tokens",
                "connections",
                "token-search",
                "records"
            ])
        );
        for service in new_services {
            let single: Value =
                serde_json::from_str(&fixture.data(&format!("/api/m/{service}/1/2"))).expect("single page");
            assert_eq!(all[service]["data"], single, "{service}");
        }

        let (status, missing) = fixture.get("/api/m/all/1/3");
        assert_eq!(status, 200);
        for service in new_services {
            assert_eq!(missing[service], serde_json::json!({ "missing_data_types": [service] }), "{service}");
            let (status, body) = fixture.get(&format!("/api/m/{service}/1/3"));
            assert_eq!((status, &body["error"]["code"]), (404, &Value::from("missing_data")), "{service}: {body}");
            let (status, body) = fixture.get(&format!("/api/m/{service}/1"));
            assert_eq!((status, &body["error"]["code"]), (404, &Value::from("unsupported_level")), "{service}");
        }
    }

    /// `token-search` finds a neuron by one of its activating tokens, with the same mean, and refuses
    /// a missing query or a bad limit.
    #[test]
    fn token_search_finds_neurons_by_their_activating_tokens() {
        let fixture = Fixture::new();
        let tokens: Value = serde_json::from_str(&fixture.data("/api/m/activating_tokens/1/2")).expect("tokens");
        let first = &tokens["tokens"][0];
        let token = first["token"].as_str().expect("token").replace('·', " ");
        let query: String = token.trim().bytes().map(|b| format!("%{b:02X}")).collect();
        let page: Value =
            serde_json::from_str(&fixture.data(&format!("/api/m/token-search?query={query}"))).expect("page");
        assert_eq!(page["total"], 1, "{page}");
        assert_eq!(page["neurons"][0]["layer"], 1);
        assert_eq!(page["neurons"][0]["neuron"], 2);
        assert_eq!(page["neurons"][0]["mean"], first["mean"]);
        assert_eq!(page["neurons"][0]["count"], first["count"]);
        let (status, spellings) = fixture.get("/api/m/token-search?query=paris");
        assert_eq!(status, 200);
        assert_eq!(spellings["data"]["total"], 1, "one neuron, not one hit per spelling: {spellings}");
        assert_eq!(spellings["data"]["neurons"][0]["mean"], 4.5);
        let (status, empty) = fixture.get("/api/m/token-search?query=no-such-token&limit=5");
        assert_eq!((status, &empty["data"]["total"]), (200, &Value::from(0)));
        for bad in ["/api/m/token-search", "/api/m/token-search?query=a&limit=0", "/api/m/token-search?query=a&limit=x"]
        {
            let (status, body) = fixture.get(bad);
            assert_eq!((status, &body["error"]["code"]), (400, &Value::from("bad_parameter")), "{bad}: {body}");
        }
    }

    /// The OpenAPI document describes each new page with a schema and a neuron-level route only.
    #[test]
    fn openapi_documents_the_new_pages() {
        let document = crate::openapi::document();
        let schemas = &document["components"]["schemas"];
        let fields = |name: &str| -> String {
            let schema = &schemas[name];
            let properties = schema["properties"].as_object().expect("properties");
            let mut required: Vec<&str> =
                schema["required"].as_array().expect("required").iter().filter_map(Value::as_str).collect();
            required.sort_unstable();
            let mut listed: Vec<&str> = properties.keys().map(String::as_str).collect();
            listed.sort_unstable();
            assert_eq!(listed, required, "{name}: every field is required");
            let described = properties
                .iter()
                .map(|(field, property)| {
                    let kind = match property.get("$ref").and_then(Value::as_str) {
                        Some(reference) => reference.rsplit('/').next().unwrap_or_default().to_owned(),
                        None => match &property["items"]["$ref"] {
                            Value::String(item) => format!("[{}]", item.rsplit('/').next().unwrap_or_default()),
                            _ => property["type"].to_string().replace('"', ""),
                        },
                    };
                    format!("{field}: {kind}")
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("{name} {{ {described} }}")
        };
        let described = [
            "ActivatingTokensPage",
            "TokenMeanObject",
            "InputTokensPage",
            "TokenValueObject",
            "ConnectionsPage",
            "ConnectionObject",
        ]
        .map(fields)
        .join("\n");
        // The document is a `serde_json::Value`, so fields come out in alphabetical order.
        expect![[r#"
            ActivatingTokensPage { tokens: [TokenMeanObject] }
            TokenMeanObject { count: integer, mean: number, token: string, token_id: integer }
            InputTokensPage { bottom: [TokenValueObject], top: [TokenValueObject] }
            TokenValueObject { token: string, token_id: integer, value: number }
            ConnectionsPage { inputs: [ConnectionObject], outputs: [ConnectionObject] }
            ConnectionObject { layer: integer, neuron: integer, weight: number }"#]]
        .assert_eq(&described);
        let paths = document["paths"].as_object().expect("paths");
        for service in [Service::ActivatingTokens, Service::InputTokens, Service::Connections] {
            let routes: Vec<&str> = paths
                .keys()
                .map(String::as_str)
                .filter(|p| {
                    p.strip_prefix("/api/{model}/").is_some_and(|rest| rest.split('/').next() == Some(service.name()))
                })
                .collect();
            assert_eq!(routes, [format!("/api/{{model}}/{}/{{layer}}/{{neuron}}", service.name())], "{service:?}");
            let envelope = &paths[routes[0]]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
            let data = &envelope["properties"]["data"];
            assert_eq!(data["$ref"], format!("#/components/schemas/{}", service.schema(Level::Neuron)));
        }
    }
}
