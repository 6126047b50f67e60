//! Relations between neurons: which correlate, which fire together as groups, what role each plays
//! in the weight graph, what its Neuron2Graph behaviour embeds to, and how it changed between two
//! recordings of one architecture.

use crate::{NeuronIndex, SimilarNeuron};

/// Another neuron and its activations' Pearson correlation with this one's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CorrelatedNeuron {
    /// The other neuron, in any layer.
    pub neuron: NeuronIndex,
    /// Pearson's r over the sampled tokens, in [-1, 1].
    pub correlation: f32,
}

/// A neuron's most correlated neurons over a sample of tokens.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NeuronCorrelations {
    /// Tokens the correlations were computed over.
    pub tokens: u32,
    /// The most positively correlated neurons, largest r first.
    pub positive: Vec<CorrelatedNeuron>,
    /// The most negatively correlated neurons, smallest r first.
    pub negative: Vec<CorrelatedNeuron>,
}

/// A context of the correlation sample where a group's members fire together.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupContext {
    /// Index of the context in the recorded dataset.
    pub dataset_index: u64,
    /// Token ids of the context.
    pub tokens: Vec<u32>,
    /// The members' mean standardised activation (z-score) on each token.
    pub scores: Vec<f32>,
    /// Members whose own z-score passes [`GROUP_FIRING_Z`] at the context's best token.
    pub firing: u32,
}

/// The z-score at which a member counts as firing in a group context.
pub const GROUP_FIRING_Z: f32 = 2.0;

/// Neurons that fire together: a community of the correlation graph.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronGroup {
    /// The members, by layer and index.
    pub members: Vec<NeuronIndex>,
    /// Mean Pearson correlation over all pairs of members, exact over the sample.
    pub cohesion: f32,
    /// Contexts where the members fire together most, strongest first.
    pub contexts: Vec<GroupContext>,
}

/// A model's co-activating groups, most cohesive first (a group's number is its position).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NeuronGroups {
    /// How the groups were found, in words, for the pages.
    pub method: String,
    /// Tokens in the correlation sample.
    pub tokens: u32,
    /// The groups.
    pub groups: Vec<NeuronGroup>,
}

data_kinds! {
    /// A neuron's role in the weight graph, after Guimerà and Amaral's hubs and connectors.
    Role {
        /// Much stronger than its layer's neurons (strength z-score at least [`HUB_Z`]).
        Hub = 1, "hub";
        /// Not a hub, with its weight spread over more layers than most (participation in the model's
        /// top [`CONNECTOR_SHARE`]).
        Connector = 2, "connector";
        /// Neither: its weight is ordinary and concentrated in a few layers.
        Peripheral = 3, "peripheral";
    }
}

/// The strength z-score within its layer from which a neuron is a hub.
pub const HUB_Z: f32 = 2.5;
/// The share of a model's neurons, by participation, from which a non-hub is a connector.
///
/// Guimerà and Amaral's fixed boundary (0.62) is for modules of a network; with a deep model's
/// layers as modules almost every neuron spreads its weight over many layers (median participation
/// 0.88 on SmolLM2-135M, where 0.62 would call 90 % of neurons connectors), so the boundary is
/// the model's own: its 90th percentile.
pub const CONNECTOR_SHARE: f32 = 0.1;

impl Role {
    /// The role of a neuron with this strength z-score and participation coefficient, in a model
    /// whose connectors have a participation above `connector_participation`.
    pub fn classify(strength_z: f32, participation: f32, connector_participation: f32) -> Self {
        if strength_z >= HUB_Z {
            Role::Hub
        } else if participation > connector_participation {
            Role::Connector
        } else {
            Role::Peripheral
        }
    }
}

/// One neuron's place in the weight graph between neurons (its stored connections, in and out).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeuronRole {
    /// Edges from earlier-layer neurons.
    pub in_degree: u32,
    /// Edges to later-layer neurons.
    pub out_degree: u32,
    /// Sum of |weight| over the incoming edges.
    pub in_strength: f32,
    /// Sum of |weight| over the outgoing edges.
    pub out_strength: f32,
    /// Total strength as a z-score among its layer's neurons.
    pub strength_z: f32,
    /// Participation coefficient across layers: 1 − Σ (strength to layer s / strength)².
    pub participation: f32,
    /// Betweenness centrality, estimated from sampled sources and normalised to [0, 1].
    pub betweenness: f32,
    /// The role the thresholds give.
    pub role: Role,
    /// The co-activating group the neuron is in, if any (its number in [`NeuronGroups`]).
    pub group: Option<u32>,
}

/// Every neuron of a layer's role, by neuron index.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerRoles {
    /// The participation above which a non-hub is a connector in this model (the same in every
    /// layer; see [`CONNECTOR_SHARE`]).
    pub connector_participation: f32,
    /// One entry per neuron.
    pub neurons: Vec<NeuronRole>,
}

data_kinds! {
    /// Which of a neuron's data its embedding was built from.
    EmbeddingSource {
        /// Its Neuron2Graph graph's nodes, weighted by importance.
        Graph = 1, "graph";
        /// Its tokens of highest mean activation, for a neuron without a graph.
        ActivatingTokens = 2, "activating_tokens";
    }
}

/// A vector for a neuron's behaviour, and the neurons whose vectors are nearest.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronEmbedding {
    /// What the vector was built from.
    pub source: EmbeddingSource,
    /// Multiply `values` by this to get the unit-length vector.
    pub scale: f32,
    /// The vector, quantised to int8.
    pub values: Vec<i8>,
    /// The nearest neurons by the vectors' centred cosine, nearest first.
    pub neighbours: Vec<SimilarNeuron>,
}

/// How one neuron changed from a baseline recording to this one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeuronChange {
    /// Change of the mean activation (this minus baseline).
    pub mean_change: f32,
    /// Change of the standard deviation.
    pub std_change: f32,
    /// Change of the maximum activation.
    pub max_change: f32,
    /// Change of the fraction of positive activations.
    pub density_change: f32,
    /// Jaccard overlap of the two recordings' top contexts, in [0, 1].
    pub top_overlap: f32,
    /// Contexts whose activations both recordings stored.
    pub shared_contexts: u32,
    /// Pearson correlation of the activations on the shared contexts' tokens, when defined.
    pub activation_correlation: Option<f32>,
    /// How much the neuron changed, in [0, 1] (see [`change_score`]).
    pub score: f32,
}

/// Every neuron of a layer's change against a baseline model, by neuron index.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerChanges {
    /// The baseline model's name in the same database.
    pub baseline: String,
    /// One entry per neuron.
    pub neurons: Vec<NeuronChange>,
}

/// The formula of [`change_score`], for the pages.
pub const CHANGE_SCORE_FORMULA: &str =
    "mean of (1 − top-context overlap), (1 − r) / 2 on shared contexts, and min(1, |ln(σ / σ_baseline)|)";

/// How much a neuron changed, in [0, 1]: the mean of how much its top contexts differ, how far its
/// activations on shared contexts are from agreeing (left out when undefined), and how much its
/// scale changed.
pub fn change_score(top_overlap: f32, activation_correlation: Option<f32>, std_baseline: f64, std: f64) -> f32 {
    let scale = if std_baseline > 0.0 && std > 0.0 {
        (std / std_baseline).ln().abs().min(1.0) as f32
    } else if std_baseline == std {
        0.0
    } else {
        1.0
    };
    let mut terms = vec![1.0 - top_overlap.clamp(0.0, 1.0), scale];
    if let Some(r) = activation_correlation {
        terms.push((1.0 - r.clamp(-1.0, 1.0)) / 2.0);
    }
    terms.iter().sum::<f32>() / terms.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_documented_thresholds() {
        assert_eq!(Role::classify(2.5, 0.0, 0.9), Role::Hub);
        assert_eq!(Role::classify(2.49, 0.91, 0.9), Role::Connector);
        assert_eq!(Role::classify(2.49, 0.9, 0.9), Role::Peripheral);
        for role in Role::ALL {
            assert_eq!(Role::from_code(role.code()), Some(*role));
        }
        assert_eq!(Role::from_code(0), None);
    }

    #[test]
    fn change_score_is_zero_for_no_change_and_one_for_total_change() {
        assert_eq!(change_score(1.0, Some(1.0), 2.0, 2.0), 0.0);
        assert_eq!(change_score(0.0, Some(-1.0), 1.0, 10.0), 1.0);
        assert_eq!(change_score(0.5, None, 1.0, 1.0), 0.25);
        assert_eq!(change_score(1.0, None, 0.0, 0.0), 0.0);
        assert_eq!(change_score(1.0, None, 0.0, 1.0), 0.5);
    }
}
