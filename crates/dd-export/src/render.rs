//! The `json` column: every field of every record kind as readable JSON, token ids beside their
//! text from the model's vocabulary; and the metadata row an importer recreates the model from.
//!
//! The JSON is written here by hand from `dd-data`, which has no serialization derives: the
//! export's schema is ours to keep stable, apart from the API's wire types.

use dd_data::{
    Example, ExampleGroupKind, LayerRecord, ModelMetadata, ModelRecord, NeuronIndex, NeuronRecord, Provenance,
    SourceInfo, TokenValue, Vocabulary,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// What the metadata row says: the model as an importer creates it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedModel {
    /// The model's metadata and provenance.
    pub metadata: ModelMetadata,
    /// Its sources, `mlp` first.
    pub sources: Vec<SourceInfo>,
}

/// The metadata row's JSON.
pub fn metadata_json(metadata: &ModelMetadata, sources: &[SourceInfo]) -> String {
    let provenance = &metadata.provenance;
    json!({
        "name": metadata.name,
        "architecture": metadata.architecture,
        "n_layers": metadata.n_layers,
        "d_mlp": metadata.d_mlp,
        "d_model": metadata.d_model,
        "activation_function": metadata.activation_function,
        "dataset": metadata.dataset,
        "training_dataset": metadata.training_dataset,
        "n_parameters": metadata.n_parameters,
        "context_length": metadata.context_length,
        "provenance": {
            "data_source": provenance.data_source,
            "model_source": provenance.model_source,
            "weights": provenance.weights,
            "tokens_recorded": provenance.tokens_recorded,
            "tool_version": provenance.tool_version,
            "recorded_at": provenance.recorded_at,
        },
        "sources": sources.iter().map(|source| json!({
            "name": source.name,
            "n_layers": source.n_layers,
            "units_per_layer": source.units_per_layer,
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

/// The metadata row's JSON, parsed back.
pub fn parse_metadata(text: &str) -> Result<ExportedModel, serde_json::Error> {
    let wire: MetadataWire = serde_json::from_str(text)?;
    let provenance = wire.provenance;
    Ok(ExportedModel {
        metadata: ModelMetadata {
            name: wire.name,
            architecture: wire.architecture,
            n_layers: wire.n_layers,
            d_mlp: wire.d_mlp,
            d_model: wire.d_model,
            activation_function: wire.activation_function,
            dataset: wire.dataset,
            training_dataset: wire.training_dataset,
            n_parameters: wire.n_parameters,
            context_length: wire.context_length,
            provenance: Provenance {
                data_source: provenance.data_source,
                model_source: provenance.model_source,
                weights: provenance.weights,
                tokens_recorded: provenance.tokens_recorded,
                tool_version: provenance.tool_version,
                recorded_at: provenance.recorded_at,
            },
        },
        sources: wire
            .sources
            .into_iter()
            .map(|source| SourceInfo {
                name: source.name,
                n_layers: source.n_layers,
                units_per_layer: source.units_per_layer,
            })
            .collect(),
    })
}

/// The metadata row as written by [`metadata_json`].
#[derive(Deserialize)]
struct MetadataWire {
    name: String,
    architecture: String,
    n_layers: u64,
    d_mlp: u64,
    d_model: u64,
    activation_function: String,
    dataset: String,
    training_dataset: Option<String>,
    n_parameters: u64,
    context_length: u64,
    provenance: ProvenanceWire,
    sources: Vec<SourceWire>,
}

#[derive(Deserialize)]
struct ProvenanceWire {
    data_source: String,
    model_source: Option<String>,
    weights: Option<String>,
    tokens_recorded: u64,
    tool_version: String,
    recorded_at: String,
}

#[derive(Deserialize)]
struct SourceWire {
    name: String,
    n_layers: u64,
    units_per_layer: u64,
}

/// A neuron-level record as JSON.
pub fn neuron_json(record: &NeuronRecord, vocabulary: &Vocabulary) -> Value {
    let text = |ids: &[u32]| -> Vec<Value> { ids.iter().map(|&id| token_text(vocabulary, id)).collect() };
    match record {
        NeuronRecord::Examples(examples) => json!({
            "groups": examples.groups.iter().map(|group| {
                let mut value = group_kind_json(&group.kind);
                value["examples"] = group.examples.iter().map(|example| example_json(example, vocabulary)).collect();
                value
            }).collect::<Vec<_>>(),
        }),
        NeuronRecord::Stats(stats) => json!({
            "count": stats.count,
            "max": stats.max,
            "min": stats.min,
            "mean": stats.mean,
            "variance": stats.variance,
            "skewness": stats.skewness,
            "kurtosis": stats.kurtosis,
            "density": stats.density,
            "histogram": {
                "lower": stats.histogram.lower,
                "upper": stats.histogram.upper,
                "counts": stats.histogram.counts,
            },
            "bos": stats.bos.as_ref().map(|bos| json!({
                "count": bos.count, "max": bos.max, "min": bos.min, "mean": bos.mean,
            })),
        }),
        NeuronRecord::Logits(logits) => json!({
            "top": token_values(&logits.top, vocabulary),
            "bottom": token_values(&logits.bottom, vocabulary),
        }),
        NeuronRecord::InputTokens(inputs) => json!({
            "top": token_values(&inputs.top, vocabulary),
            "bottom": token_values(&inputs.bottom, vocabulary),
        }),
        NeuronRecord::Explanations(explanations) => json!({
            "explanations": explanations.explanations.iter().map(|explanation| json!({
                "text": explanation.text,
                "origin": explanation.origin,
                "author": explanation.author,
                "scores": explanation.scores.iter().map(|score| json!({"name": score.name, "value": score.value})).collect::<Vec<_>>(),
                "provenance": explanation.provenance.as_ref().map(|provenance| json!({
                    "prompt_version": provenance.prompt_version,
                    "prompt": provenance.prompt,
                    "simulator": provenance.simulator,
                    "created": provenance.created,
                })),
                "simulations": explanation.simulations.iter().map(|simulation| json!({
                    "token_ids": simulation.token_ids,
                    "token_texts": text(&simulation.token_ids),
                    "true_activations": simulation.true_activations,
                    "simulated_activations": simulation.simulated_activations,
                })).collect::<Vec<_>>(),
                "embedding": explanation.embedding.as_ref().map(|embedding| json!({
                    "model": embedding.model,
                    "scale": embedding.scale,
                    "values": embedding.values,
                })),
            })).collect::<Vec<_>>(),
        }),
        NeuronRecord::Graph(graph) => json!({
            "subgraph_indices": graph.subgraph_indices,
            "nodes": graph.nodes.iter().map(|node| json!({
                "token": node.token,
                "token_id": node.token_id,
                "required": node.required,
                "importance": node.importance,
                "activation": node.activation,
                "is_end": node.is_end,
            })).collect::<Vec<_>>(),
            "scores": graph.scores.as_ref().map(|scores| {
                let counts = |counts: &dd_data::FiringCounts| json!({
                    "texts": counts.texts,
                    "tokens": counts.tokens,
                    "firing": counts.firing,
                    "predicted": counts.predicted,
                    "true_positives": counts.true_positives,
                });
                json!({
                    "threshold": scores.threshold,
                    "scale": scores.scale,
                    "held_out_top": counts(&scores.held_out_top),
                    "random": counts(&scores.random),
                })
            }),
        }),
        NeuronRecord::Similar(similar) => json!({
            "neurons": similar.neurons.iter().map(|neuron| json!({
                "layer": neuron.layer, "index": neuron.index, "similarity": neuron.similarity,
            })).collect::<Vec<_>>(),
        }),
        NeuronRecord::ActivatingTokens(activating) => json!({
            "tokens": activating.tokens.iter().map(|token| json!({
                "token": token.token,
                "text": token_text(vocabulary, token.token),
                "mean": token.mean,
                "count": token.count,
            })).collect::<Vec<_>>(),
        }),
        NeuronRecord::Connections(connections) => {
            let list = |connections: &[dd_data::Connection]| -> Vec<Value> {
                connections
                    .iter()
                    .map(|c| json!({"layer": c.neuron.layer, "index": c.neuron.index, "weight": c.weight}))
                    .collect()
            };
            json!({"inputs": list(&connections.inputs), "outputs": list(&connections.outputs)})
        }
        NeuronRecord::Correlations(correlations) => {
            let list = |list: &[dd_data::CorrelatedNeuron]| -> Vec<Value> {
                list.iter()
                    .map(|c| json!({"layer": c.neuron.layer, "index": c.neuron.index, "correlation": c.correlation}))
                    .collect()
            };
            json!({
                "tokens": correlations.tokens,
                "positive": list(&correlations.positive),
                "negative": list(&correlations.negative),
            })
        }
        NeuronRecord::Embedding(embedding) => json!({
            "source": embedding.source.name(),
            "scale": embedding.scale,
            "values": embedding.values,
            "neighbours": embedding.neighbours.iter().map(|neuron| json!({
                "layer": neuron.layer, "index": neuron.index, "similarity": neuron.similarity,
            })).collect::<Vec<_>>(),
        }),
    }
}

/// A layer-level record as JSON.
pub fn layer_json(record: &LayerRecord) -> Value {
    match record {
        LayerRecord::Ranking(ranking) => ranking_json(&ranking.neurons),
        LayerRecord::Summary(summary) => json!({
            "neurons": summary.neurons.iter().enumerate().map(|(index, neuron)| json!({
                "index": index,
                "max_activation": neuron.max_activation,
                "min_activation": neuron.min_activation,
                "density": neuron.density,
                "kurtosis": neuron.kurtosis,
            })).collect::<Vec<_>>(),
        }),
        LayerRecord::Roles(roles) => json!({
            "neurons": roles.neurons.iter().enumerate().map(|(index, neuron)| json!({
                "index": index,
                "in_degree": neuron.in_degree,
                "out_degree": neuron.out_degree,
                "in_strength": neuron.in_strength,
                "out_strength": neuron.out_strength,
                "strength_z": neuron.strength_z,
                "participation": neuron.participation,
                "betweenness": neuron.betweenness,
                "role": neuron.role.name(),
                "group": neuron.group,
            })).collect::<Vec<_>>(),
        }),
        LayerRecord::Changes(changes) => json!({
            "baseline": changes.baseline,
            "neurons": changes.neurons.iter().enumerate().map(|(index, neuron)| json!({
                "index": index,
                "mean_change": neuron.mean_change,
                "std_change": neuron.std_change,
                "max_change": neuron.max_change,
                "density_change": neuron.density_change,
                "top_overlap": neuron.top_overlap,
                "shared_contexts": neuron.shared_contexts,
                "activation_correlation": neuron.activation_correlation,
                "score": neuron.score,
            })).collect::<Vec<_>>(),
        }),
    }
}

/// A model-level record as JSON.
pub fn model_json(record: &ModelRecord) -> Value {
    match record {
        ModelRecord::Vocabulary(vocabulary) => json!({"tokens": vocabulary.tokens}),
        ModelRecord::Ranking(ranking) => ranking_json(&ranking.neurons),
        ModelRecord::TokenIndex(index) => {
            let units = |units: &[NeuronIndex]| -> Vec<Value> {
                units.iter().map(|unit| json!({"layer": unit.layer, "index": unit.index})).collect()
            };
            json!({
                "entries": index.entries.iter().map(|entry| json!({
                    "token": entry.token,
                    "activating": units(&entry.activating),
                    "important": units(&entry.important),
                })).collect::<Vec<_>>(),
            })
        }
        ModelRecord::Groups(groups) => json!({
            "method": groups.method,
            "tokens": groups.tokens,
            "groups": groups.groups.iter().map(|group| json!({
                "members": group.members.iter().map(|unit| json!({"layer": unit.layer, "index": unit.index})).collect::<Vec<_>>(),
                "cohesion": group.cohesion,
                "contexts": group.contexts.iter().map(|context| json!({
                    "dataset_index": context.dataset_index,
                    "tokens": context.tokens,
                    "scores": context.scores,
                    "firing": context.firing,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    }
}

fn ranking_json(neurons: &[dd_data::RankedNeuron]) -> Value {
    json!({
        "neurons": neurons.iter().map(|ranked| json!({
            "layer": ranked.neuron.layer, "index": ranked.neuron.index, "score": ranked.score,
        })).collect::<Vec<_>>(),
    })
}

fn group_kind_json(kind: &ExampleGroupKind) -> Value {
    match kind {
        ExampleGroupKind::Top => json!({"kind": "top"}),
        ExampleGroupKind::Bottom => json!({"kind": "bottom"}),
        ExampleGroupKind::Random => json!({"kind": "random"}),
        ExampleGroupKind::Quantile { band, lower, upper } => {
            json!({"kind": "quantile", "band": band, "lower": lower, "upper": upper})
        }
    }
}

fn example_json(example: &Example, vocabulary: &Vocabulary) -> Value {
    json!({
        "dataset_index": example.dataset_index,
        "tokens": example.tokens,
        "token_texts": example.tokens.iter().map(|&id| token_text(vocabulary, id)).collect::<Vec<_>>(),
        "activations": example.activations,
        "max_token_index": example.max_token_index,
        "activation_error": example.activation_error,
    })
}

fn token_values(values: &[TokenValue], vocabulary: &Vocabulary) -> Vec<Value> {
    values
        .iter()
        .map(|value| json!({"token": value.token, "text": token_text(vocabulary, value.token), "value": value.value}))
        .collect()
}

/// A token's text, `null` when the vocabulary lacks the id (an export never fails over a label).
fn token_text(vocabulary: &Vocabulary, id: u32) -> Value {
    vocabulary.tokens.get(id as usize).map_or(Value::Null, |text| Value::String(text.clone()))
}
