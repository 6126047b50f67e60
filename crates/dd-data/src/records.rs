//! One value of any data kind per level, as the store writes and reads them.

use crate::{
    DataError, Explanations, LayerDataKind, LayerSummary, LogitAttribution, ModelDataKind, NeuronDataKind,
    NeuronExamples, NeuronGraph, NeuronRanking, NeuronStats, SimilarNeurons, TokenIndex, Vocabulary,
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
}

/// A layer-level record of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerRecord {
    /// Neurons of the layer by interestingness.
    Ranking(NeuronRanking),
    /// Per-neuron summary numbers.
    Summary(LayerSummary),
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
        }
    }

    /// The kind of this record.
    pub fn kind(&self) -> LayerDataKind {
        match self {
            LayerRecord::Ranking(_) => LayerDataKind::Ranking,
            LayerRecord::Summary(_) => LayerDataKind::Summary,
        }
    }
}

impl ModelRecord {
    /// Checks that every number is finite.
    pub fn validate(&self) -> Result<(), DataError> {
        match self {
            ModelRecord::Ranking(ranking) => finite("ranking score", ranking.neurons.iter().map(|r| r.score)),
            ModelRecord::Vocabulary(_) | ModelRecord::TokenIndex(_) => Ok(()),
        }
    }

    /// The kind of this record.
    pub fn kind(&self) -> ModelDataKind {
        match self {
            ModelRecord::Vocabulary(_) => ModelDataKind::Vocabulary,
            ModelRecord::Ranking(_) => ModelDataKind::Ranking,
            ModelRecord::TokenIndex(_) => ModelDataKind::TokenIndex,
        }
    }
}
