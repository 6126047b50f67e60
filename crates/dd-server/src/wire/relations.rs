//! The pages of the relations between neurons: `correlations`, `groups`, `roles`, `embedding` and
//! `changes`.

use serde::Serialize;
use utoipa::ToSchema;

use super::refs::{NeuronIndexObject, SimilarNeuronObject};

/// `correlations`: the neurons of the whole model whose activations correlate most with this one's.
#[derive(Debug, Serialize, ToSchema)]
pub struct CorrelationsPage {
    /// Tokens of the recording's contexts the correlations were measured on.
    pub tokens: u32,
    /// Most positively correlated first.
    pub positive: Vec<CorrelatedNeuronObject>,
    /// Most negatively correlated first.
    pub negative: Vec<CorrelatedNeuronObject>,
}

/// A neuron and its Pearson correlation with the page's neuron.
#[derive(Debug, Serialize, ToSchema)]
pub struct CorrelatedNeuronObject {
    /// Layer.
    pub layer: u32,
    /// Index in the layer.
    pub neuron: u32,
    /// Pearson's r in [-1, 1].
    pub correlation: f32,
}

/// `groups` at model level: every co-activating group, most cohesive first.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupsPage {
    /// How the groups were found.
    pub method: String,
    /// Tokens of the correlation sample.
    pub tokens: u32,
    /// The groups.
    pub groups: Vec<GroupSummaryObject>,
}

/// A group in the model's list.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupSummaryObject {
    /// Its number (its position in the list).
    pub group: u32,
    /// Mean Pearson r over all pairs of members.
    pub cohesion: f32,
    /// The members.
    pub members: Vec<NeuronIndexObject>,
}

/// `groups` at neuron level: the group the neuron is in.
#[derive(Debug, Serialize, ToSchema)]
pub struct NeuronGroupPage {
    /// The group, with the contexts where its members fire together; null when the neuron is in none.
    pub group: Option<GroupPage>,
}

/// A group with the contexts where its members fire together.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupPage {
    /// Its number in the model's list.
    pub group: u32,
    /// Mean Pearson r over all pairs of members.
    pub cohesion: f32,
    /// The members.
    pub members: Vec<NeuronIndexObject>,
    /// Contexts where the members fire together most, strongest first.
    pub contexts: Vec<GroupContextObject>,
}

/// A context where a group fires together.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupContextObject {
    /// Index of the context in the recorded dataset.
    pub dataset_index: u64,
    /// Token strings.
    pub tokens: Vec<String>,
    /// Token ids.
    pub token_ids: Vec<u32>,
    /// The members' mean z-score on each token.
    pub scores: Vec<f32>,
    /// Members whose own z-score is at least 2 at the best token.
    pub firing: u32,
}

/// A neuron's role in the weight graph (`roles` at neuron level, and each entry at layer level).
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleObject {
    /// Layer.
    pub layer: u32,
    /// Index in the layer.
    pub neuron: u32,
    /// `hub`, `connector` or `peripheral`.
    #[schema(pattern = "^(hub|connector|peripheral)$")]
    pub role: String,
    /// Edges from earlier-layer neurons.
    pub in_degree: u32,
    /// Edges to later-layer neurons.
    pub out_degree: u32,
    /// Sum of |weight| over the incoming edges.
    pub in_strength: f32,
    /// Sum of |weight| over the outgoing edges.
    pub out_strength: f32,
    /// Total strength as a z-score within the layer.
    pub strength_z: f32,
    /// Participation coefficient across layers, in [0, 1].
    pub participation: f32,
    /// Estimated betweenness centrality, normalised to [0, 1].
    pub betweenness: f32,
    /// The co-activating group the neuron is in, if any.
    pub group: Option<u32>,
}

/// `roles` at layer level: every neuron's role, by index.
#[derive(Debug, Serialize, ToSchema)]
pub struct LayerRolesPage {
    /// The layer.
    pub layer: u32,
    /// One entry per neuron.
    pub neurons: Vec<RoleObject>,
}

/// `roles` at model level: the thresholds, how many neurons take each role, and the neurons
/// ranked by each measure.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolesModelPage {
    /// The strength z-score from which a neuron is a hub.
    pub hub_z: f32,
    /// The participation above which a non-hub is a connector: the model's 90th percentile.
    pub connector_participation: f32,
    /// Hubs.
    pub hubs: u64,
    /// Connectors.
    pub connectors: u64,
    /// Peripheral neurons.
    pub peripheral: u64,
    /// The strongest neurons, by total strength z-score.
    pub by_strength: Vec<RoleObject>,
    /// The neurons of highest betweenness.
    pub by_betweenness: Vec<RoleObject>,
    /// The neurons of highest participation.
    pub by_participation: Vec<RoleObject>,
}

/// `embedding`: a vector for the neuron's behaviour and its nearest neighbours.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingPage {
    /// What the vector was built from: `graph` (its Neuron2Graph graph) or `activating_tokens`.
    #[schema(pattern = "^(graph|activating_tokens)$")]
    pub source: String,
    /// The unit-length vector, dequantised from int8.
    pub vector: Vec<f32>,
    /// Nearest neurons by the vectors' centred cosine, nearest first.
    pub neighbours: Vec<SimilarNeuronObject>,
}

/// A neuron's change against the baseline.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeObject {
    /// Layer.
    pub layer: u32,
    /// Index in the layer.
    pub neuron: u32,
    /// How much it changed, in [0, 1].
    pub score: f32,
    /// Change of the mean activation (this minus baseline).
    pub mean_change: f32,
    /// Change of the standard deviation.
    pub std_change: f32,
    /// Change of the maximum activation.
    pub max_change: f32,
    /// Change of the fraction of positive activations.
    pub density_change: f32,
    /// Jaccard overlap of the two recordings' top contexts.
    pub top_overlap: f32,
    /// Contexts both recordings stored.
    pub shared_contexts: u32,
    /// Pearson r of the activations on the shared contexts; null when undefined.
    pub activation_correlation: Option<f32>,
}

/// `changes` at neuron level.
#[derive(Debug, Serialize, ToSchema)]
pub struct NeuronChangePage {
    /// The baseline model, in the same database.
    pub baseline: String,
    /// How the score is computed.
    pub score_formula: String,
    /// The neuron's change.
    pub change: ChangeObject,
}

/// `changes` at layer level: every neuron's change, by index.
#[derive(Debug, Serialize, ToSchema)]
pub struct LayerChangesPage {
    /// The baseline model, in the same database.
    pub baseline: String,
    /// The layer.
    pub layer: u32,
    /// One entry per neuron.
    pub neurons: Vec<ChangeObject>,
}

/// `changes` at model level: the most changed neurons, overall and per layer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesModelPage {
    /// The baseline model, in the same database.
    pub baseline: String,
    /// How the score is computed.
    pub score_formula: String,
    /// The most changed neurons of the model, most changed first.
    pub most_changed: Vec<ChangeObject>,
    /// Per layer: its mean score and its most changed neurons.
    pub layers: Vec<LayerChangeSummaryObject>,
}

/// One layer's change in brief.
#[derive(Debug, Serialize, ToSchema)]
pub struct LayerChangeSummaryObject {
    /// The layer.
    pub layer: u32,
    /// Mean score over its neurons.
    pub mean_score: f32,
    /// Its most changed neurons, most changed first.
    pub most_changed: Vec<ChangeObject>,
}
