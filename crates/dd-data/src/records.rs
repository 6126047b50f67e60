//! One value of any data kind per level, as the store writes and reads them.

use crate::{
    ActivatingTokens, DataError, Explanations, InputTokens, LayerChanges, LayerDataKind, LayerRoles, LayerSummary,
    LogitAttribution, ModelDataKind, NeuronConnections, NeuronCorrelations, NeuronDataKind, NeuronEmbedding,
    NeuronExamples, NeuronGraph, NeuronGroups, NeuronRanking, NeuronStats, SimilarNeurons, TokenIndex, Vocabulary,
};

/// A neuron-level record of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum NeuronRecord {
    /// Example contexts.
    Examples(NeuronExamples),
    /// Activation statistics.
    Stats(NeuronStats),
    /// Direct logit attribution.
    Logits(LogitAttribution),
    /// Explanations.
    Explanations(Explanations),
    /// Neuron2Graph graph.
    Graph(NeuronGraph),
    /// Similar neurons.
    Similar(SimilarNeurons),
    /// Tokens with the highest mean activation.
    ActivatingTokens(ActivatingTokens),
    /// Input tokens driving the neuron through the direct path.
    InputTokens(InputTokens),
    /// Strongest weight connections to other layers' neurons.
    Connections(NeuronConnections),
    /// Most correlated neurons.
    Correlations(NeuronCorrelations),
    /// Behaviour embedding and its neighbours.
    Embedding(NeuronEmbedding),
}

/// A layer-level record of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerRecord {
    /// Neurons of the layer by interestingness.
    Ranking(NeuronRanking),
    /// Per-neuron summary numbers.
    Summary(LayerSummary),
    /// Every neuron's role in the weight graph.
    Roles(LayerRoles),
    /// Every neuron's change against a baseline.
    Changes(LayerChanges),
}

/// A model-level record of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelRecord {
    /// The vocabulary.
    Vocabulary(Vocabulary),
    /// The model's most interesting neurons.
    Ranking(NeuronRanking),
    /// The token search index.
    TokenIndex(TokenIndex),
    /// Co-activating groups.
    Groups(NeuronGroups),
}

impl NeuronRecord {
    /// The kind of this record.
    pub fn kind(&self) -> NeuronDataKind {
        match self {
            NeuronRecord::Examples(_) => NeuronDataKind::Examples,
            NeuronRecord::Stats(_) => NeuronDataKind::Stats,
            NeuronRecord::Logits(_) => NeuronDataKind::Logits,
            NeuronRecord::Explanations(_) => NeuronDataKind::Explanations,
            NeuronRecord::Graph(_) => NeuronDataKind::Graph,
            NeuronRecord::Similar(_) => NeuronDataKind::Similar,
            NeuronRecord::ActivatingTokens(_) => NeuronDataKind::ActivatingTokens,
            NeuronRecord::InputTokens(_) => NeuronDataKind::InputTokens,
            NeuronRecord::Connections(_) => NeuronDataKind::Connections,
            NeuronRecord::Correlations(_) => NeuronDataKind::Correlations,
            NeuronRecord::Embedding(_) => NeuronDataKind::Embedding,
        }
    }

    /// Checks the invariants of the record's type.
    pub fn validate(&self) -> Result<(), DataError> {
        match self {
            NeuronRecord::Examples(examples) => examples.validate(),
            NeuronRecord::Stats(stats) => stats.validate(),
            NeuronRecord::Graph(graph) => graph.validate(),
            NeuronRecord::Logits(logits) => {
                finite("logit value", logits.top.iter().chain(&logits.bottom).map(|t| t.value))
            }
            NeuronRecord::Explanations(explanations) => {
                finite("explanation score", explanations.explanations.iter().flat_map(|e| &e.scores).map(|s| s.value))
            }
            NeuronRecord::Similar(similar) => finite("similarity", similar.neurons.iter().map(|n| n.similarity)),
            NeuronRecord::ActivatingTokens(activating) => {
                finite("activating token mean", activating.tokens.iter().map(|t| t.mean))
            }
            NeuronRecord::InputTokens(inputs) => {
                finite("input token value", inputs.top.iter().chain(&inputs.bottom).map(|t| t.value))
            }
            NeuronRecord::Connections(connections) => {
                finite("connection weight", connections.inputs.iter().chain(&connections.outputs).map(|c| c.weight))
            }
            NeuronRecord::Correlations(correlations) => {
                finite("correlation", correlations.positive.iter().chain(&correlations.negative).map(|c| c.correlation))
            }
            NeuronRecord::Embedding(embedding) => finite(
                "embedding value",
                std::iter::once(embedding.scale).chain(embedding.neighbours.iter().map(|n| n.similarity)),
            ),
        }
    }
}

/// Every number the API prints must be finite: JSON has no NaN, and the schema says `number`.
fn finite(what: &'static str, mut values: impl Iterator<Item = f32>) -> Result<(), DataError> {
    if values.all(f32::is_finite) { Ok(()) } else { Err(DataError::NotFinite { what }) }
}

impl LayerRecord {
    /// Checks that every number is finite.
    pub fn validate(&self) -> Result<(), DataError> {
        match self {
            LayerRecord::Ranking(ranking) => finite("ranking score", ranking.neurons.iter().map(|r| r.score)),
            LayerRecord::Summary(summary) => finite(
                "summary value",
                summary.neurons.iter().flat_map(|n| [n.max_activation, n.min_activation, n.density, n.kurtosis]),
            ),
            LayerRecord::Roles(roles) => finite(
                "role value",
                std::iter::once(roles.connector_participation).chain(
                    roles
                        .neurons
                        .iter()
                        .flat_map(|n| [n.in_strength, n.out_strength, n.strength_z, n.participation, n.betweenness]),
                ),
            ),
            LayerRecord::Changes(changes) => finite(
                "change value",
                changes.neurons.iter().flat_map(|n| {
                    [n.mean_change, n.std_change, n.max_change, n.density_change, n.top_overlap, n.score]
                        .into_iter()
                        .chain(n.activation_correlation)
                }),
            ),
        }
    }

    /// The kind of this record.
    pub fn kind(&self) -> LayerDataKind {
        match self {
            LayerRecord::Ranking(_) => LayerDataKind::Ranking,
            LayerRecord::Summary(_) => LayerDataKind::Summary,
            LayerRecord::Roles(_) => LayerDataKind::Roles,
            LayerRecord::Changes(_) => LayerDataKind::Changes,
        }
    }
}

impl ModelRecord {
    /// Checks that every number is finite.
    pub fn validate(&self) -> Result<(), DataError> {
        match self {
            ModelRecord::Ranking(ranking) => finite("ranking score", ranking.neurons.iter().map(|r| r.score)),
            ModelRecord::Vocabulary(_) | ModelRecord::TokenIndex(_) => Ok(()),
            ModelRecord::Groups(groups) => finite(
                "group value",
                groups.groups.iter().flat_map(|g| {
                    std::iter::once(g.cohesion).chain(g.contexts.iter().flat_map(|c| c.scores.iter().copied()))
                }),
            ),
        }
    }

    /// The kind of this record.
    pub fn kind(&self) -> ModelDataKind {
        match self {
            ModelRecord::Vocabulary(_) => ModelDataKind::Vocabulary,
            ModelRecord::Ranking(_) => ModelDataKind::Ranking,
            ModelRecord::TokenIndex(_) => ModelDataKind::TokenIndex,
            ModelRecord::Groups(_) => ModelDataKind::Groups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Connection, NeuronIndex, TokenMean, TokenValue};

    fn weight_records(value: f32) -> [NeuronRecord; 3] {
        let connection = Connection { neuron: NeuronIndex { layer: 0, index: 4 }, weight: value };
        [
            NeuronRecord::ActivatingTokens(ActivatingTokens {
                tokens: vec![TokenMean { token: 3, mean: value, count: 9 }],
            }),
            NeuronRecord::InputTokens(InputTokens { top: vec![], bottom: vec![TokenValue { token: 1, value }] }),
            NeuronRecord::Connections(NeuronConnections { inputs: vec![], outputs: vec![connection] }),
        ]
    }

    #[test]
    fn new_kinds_report_their_kind_and_refuse_non_finite_values() {
        let kinds = weight_records(1.0).map(|r| r.kind());
        assert_eq!(kinds, [NeuronDataKind::ActivatingTokens, NeuronDataKind::InputTokens, NeuronDataKind::Connections]);
        assert_eq!(kinds.map(|k| k.code()), [7, 8, 9]);
        for record in weight_records(-2.5) {
            assert_eq!(record.validate(), Ok(()), "{record:?}");
        }
        let expected = ["activating token mean", "input token value", "connection weight"];
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for (record, what) in weight_records(bad).iter().zip(expected) {
                assert_eq!(record.validate(), Err(DataError::NotFinite { what }), "{record:?}");
            }
        }
    }
}
