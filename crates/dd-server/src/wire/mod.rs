//! The API's JSON wire types: the only place JSON shapes are defined.
//!
//! `refs` holds the references to other neurons that every part shares, `relations` the pages of
//! the relations between neurons (correlations, groups, roles, embeddings, changes).
//!
//! Shapes of the original DeepDecipher's services (`metadata`, `neuroscope`,
//! `neuron_explainer`, `neuron2graph`, `neuron2graph-search`) are kept key for
//! key; new keys may be added, never removed. Each type derives `ToSchema`, so
//! the OpenAPI document is generated from these definitions.

use serde::Serialize;
use utoipa::ToSchema;

mod refs;
mod relations;

pub use refs::{NeuronIndexObject, SimilarNeuronObject};
pub use relations::*;

/// `GET /api`: every model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelsResponse {
    /// The models, in the order they were added.
    pub models: Vec<MetadataObject>,
    /// What the server is still adding to the database, in plain text ("Neuron2Graph graphs are
    /// being built for the 20 most interesting neurons: 7 of 20 done"); null when nothing is.
    pub notice: Option<String>,
}

/// A model's metadata (the original's `MetadataObject`, plus architecture, sizes, provenance and sources).
#[derive(Debug, Serialize, ToSchema)]
pub struct MetadataObject {
    /// Model name, as used in URLs.
    pub name: String,
    /// Number of layers.
    pub num_layers: u64,
    /// MLP neurons per layer.
    pub layer_size: u64,
    /// MLP activation function.
    pub activation_function: String,
    /// `num_layers * layer_size`.
    pub num_total_neurons: u64,
    /// Parameter count.
    pub num_total_parameters: u64,
    /// What the data was recorded on, named as a person writes it (`Shakespeare's plays`,
    /// `openwebtext-10k`). In the original this named the training set, which Neuroscope's examples
    /// came from.
    pub dataset: String,
    /// What the model was trained on; null when unknown.
    pub training_dataset: Option<String>,
    /// Services with data for this model.
    pub available_services: Vec<String>,
    /// Architecture family.
    pub architecture: String,
    /// Residual stream width.
    pub d_model: u64,
    /// Maximum context length.
    pub context_length: u64,
    /// Where the data came from.
    pub provenance: ProvenanceObject,
    /// Hook points with per-unit data; `mlp` first.
    pub sources: Vec<SourceObject>,
}

/// Where a model's data came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvenanceObject {
    /// Exactly where the recorded text came from (a path, a package), or the importer that produced
    /// the data.
    pub data_source: String,
    /// The model files the data was recorded from, as given (a path or hub id); null for synthetic
    /// or imported data.
    pub model_source: Option<String>,
    /// How those files store the weights (`GGUF Q4_1`, `safetensors BF16`); null when unknown.
    pub weights: Option<String>,
    /// Tokens run through the model.
    pub tokens_recorded: u64,
    /// Version of the tool that wrote the data.
    pub tool_version: String,
    /// When, as RFC 3339.
    pub recorded_at: String,
}

/// A hook point of a model.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceObject {
    /// Name (`mlp`), passed as `?source=` to select it.
    pub name: String,
    /// Layers.
    pub num_layers: u64,
    /// Units per layer.
    pub layer_size: u64,
}

/// `neuroscope` at model level: the model's most interesting neurons, most interesting first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NeuroscopeModelPage {
    /// Pairs of neuron and interestingness score, descending (the original sorted ascending).
    pub important_neurons: Vec<(NeuronIndexObject, f32)>,
}

/// `neuroscope` at layer level: the layer's neurons by interestingness.
#[derive(Debug, Serialize, ToSchema)]
pub struct NeuroscopeLayerPage {
    /// Neurons in the layer.
    pub num_neurons: u64,
    /// Pairs of neuron and interestingness score, descending.
    pub important_neurons: Vec<(NeuronIndexObject, f32)>,
}

/// `neuroscope` at neuron level: the top-activating texts.
#[derive(Debug, Serialize, ToSchema)]
pub struct NeuroscopeNeuronPage {
    /// The neuron.
    pub neuron_index: NeuronIndexObject,
    /// Top-activating texts, highest first.
    pub texts: Vec<NeuroscopeText>,
}

/// One text with the neuron's activation on each token (the original's `Text`).
#[derive(Debug, Serialize, ToSchema)]
pub struct NeuroscopeText {
    /// Smallest activation over all of the neuron's texts (for a shared colour scale).
    pub min_range: f32,
    /// Largest activation over all of the neuron's texts.
    pub max_range: f32,
    /// Smallest activation in this text.
    pub min_activation: f32,
    /// Largest activation in this text.
    pub max_activation: f32,
    /// Index of the text in the recorded dataset.
    pub data_index: u64,
    /// Position of the max-activating token.
    pub max_activating_token_index: u32,
    /// Display string of each token.
    pub tokens: Vec<String>,
    /// Activation on each token, printed to the stored precision.
    pub activations: Vec<f32>,
    /// Largest error of `activations` against the recorded values (new).
    pub activation_error: f32,
}

/// `examples`: every recorded example group with token ids.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExamplesPage {
    /// The neuron.
    pub neuron_index: NeuronIndexObject,
    /// Groups: `top`, `bottom`, `quantile` bands, `random`.
    pub groups: Vec<ExampleGroupObject>,
}

/// One group of examples.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExampleGroupObject {
    /// `top`, `bottom`, `quantile` or `random`.
    pub kind: String,
    /// Band number for `quantile` groups.
    pub band: Option<u32>,
    /// Lower activation bound of a `quantile` band.
    pub lower: Option<f32>,
    /// Upper activation bound of a `quantile` band.
    pub upper: Option<f32>,
    /// The examples.
    pub examples: Vec<ExampleObject>,
}

/// One example context.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExampleObject {
    /// Index of the context in the recorded dataset.
    pub data_index: u64,
    /// Position of the token that selected the example.
    pub max_token_index: u32,
    /// Largest activation.
    pub max_activation: f32,
    /// Smallest activation.
    pub min_activation: f32,
    /// Largest error of `activations`.
    pub activation_error: f32,
    /// Token ids.
    pub token_ids: Vec<u32>,
    /// Display strings.
    pub tokens: Vec<String>,
    /// Activations.
    pub activations: Vec<f32>,
}

/// `stats` at neuron level: every position but the BOS token that starts each context, which
/// `bos` summarises apart (models park attention-sink values there).
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsPage {
    /// Activations summarised (BOS positions excluded).
    pub count: u64,
    /// Largest activation.
    pub max: f64,
    /// Smallest activation.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Population variance.
    pub variance: f64,
    /// Skewness.
    pub skewness: f64,
    /// Kurtosis (not excess).
    pub kurtosis: f64,
    /// Share of tokens with activation > 0.
    pub density: f64,
    /// Activation histogram.
    pub histogram: HistogramObject,
    /// How selective the neuron is: `(a₂₀ − mean) / standard deviation`, where `a₂₀` is its
    /// 20th-largest activation (read from the histogram); rankings sort by it (new).
    pub interestingness: f32,
    /// The activations at the BOS position, or null where the data has none apart (recorded
    /// before 2026-12, synthetic, or a tokenizer without BOS) (new).
    pub bos: Option<PositionStatsObject>,
}

/// A neuron's activations at one position of every context.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionStatsObject {
    /// Contexts summarised.
    pub count: u64,
    /// Largest activation.
    pub max: f64,
    /// Smallest activation.
    pub min: f64,
    /// Mean activation.
    pub mean: f64,
}

/// An equal-width histogram.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistogramObject {
    /// Bin edges (`counts.len() + 1` values).
    pub edges: Vec<f32>,
    /// Count per bin.
    pub counts: Vec<u64>,
}

/// `stats` at layer level: summary numbers for every neuron.
#[derive(Debug, Serialize, ToSchema)]
pub struct LayerStatsPage {
    /// The layer.
    pub layer: u32,
    /// One entry per neuron, by index.
    pub neurons: Vec<NeuronSummaryObject>,
}

/// Headline numbers of one neuron.
#[derive(Debug, Serialize, ToSchema)]
pub struct NeuronSummaryObject {
    /// Index in the layer.
    pub neuron: u32,
    /// Largest activation.
    pub max_activation: f32,
    /// Smallest activation.
    pub min_activation: f32,
    /// Share of tokens on which it fires.
    pub density: f32,
    /// Kurtosis.
    pub kurtosis: f32,
}

/// `logits`: direct logit attribution.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogitsPage {
    /// Output tokens promoted most, largest first.
    pub top: Vec<TokenValueObject>,
    /// Output tokens suppressed most, most negative first.
    pub bottom: Vec<TokenValueObject>,
}

/// A token with a value.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenValueObject {
    /// Token id.
    pub token_id: u32,
    /// Display string.
    pub token: String,
    /// The value.
    pub value: f32,
}

/// `neuron_explainer`: the first explanation and its first score (the original's shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct NeuronExplainerPage {
    /// Explanation text.
    pub explanation: String,
    /// Its first score (OpenAI's `ev_correlation_score` for imported explanations); null when unscored.
    pub score: Option<f32>,
}

/// `explanations`: every explanation with all scores.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationsPage {
    /// Explanations, best first.
    pub explanations: Vec<ExplanationObject>,
}

/// One explanation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationObject {
    /// Text.
    pub text: String,
    /// Origin (`generated`, `openai`, `neuronpedia`, `neuron2graph`, `synthetic`, ...).
    pub origin: String,
    /// Author, when known: for generated explanations, the explainer model.
    pub author: Option<String>,
    /// Named scores, most important first (`ev_correlation_score` first for generated ones).
    pub scores: Vec<ScoreObject>,
    /// How it was generated; null for imported explanations that do not say (new).
    pub provenance: Option<ExplanationProvenanceObject>,
    /// Held-out sequences with the neuron's true activations and the simulator's predictions from
    /// the explanation, which the scores compare; empty when none were kept (new).
    pub simulations: Vec<SimulatedSequenceObject>,
    /// The sentence-embedding model the explanation was embedded with for search by meaning; null
    /// without an embedding. The vector itself is not served (new).
    pub embedding_model: Option<String>,
}

/// How an explanation was generated.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationProvenanceObject {
    /// The prompt format and its version (`oai-token-activation-pairs/1`).
    pub prompt_version: String,
    /// The exact prompt sent to the explainer (its chat messages as one text).
    pub prompt: String,
    /// The simulator that produced the scores; null when unscored.
    pub simulator: Option<String>,
    /// When it was generated, RFC 3339 UTC (`2026-12-06T10:40:00Z`).
    pub created: String,
}

/// A held-out sequence as the simulator predicted it from the explanation.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimulatedSequenceObject {
    /// Token ids.
    pub token_ids: Vec<u32>,
    /// Display strings, as in `examples`.
    pub tokens: Vec<String>,
    /// The neuron's recorded activation on each token.
    pub true_activations: Vec<f32>,
    /// The simulator's prediction for each token, calibrated to activation units.
    pub simulated_activations: Vec<f32>,
}

/// `explanation-search`: the explanations closest in meaning to a query, most similar first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationSearchPage {
    /// The query as sent.
    pub query: String,
    /// The sentence-embedding model of the query and the indexed explanations (`all-MiniLM-L6-v2`).
    pub embedding_model: String,
    /// Explanations of the model with an embedding of that model: those searched.
    pub indexed: u64,
    /// Indexed explanations that pass the filters (`min_score`, `origin`, `layer`); `explanations`
    /// holds `?limit=` of them from `?offset=`.
    pub total: u64,
    /// Explanations skipped before `explanations`.
    pub offset: u64,
    /// Highest cosine similarity first; ties by layer, neuron and position.
    pub explanations: Vec<ExplanationSearchHitObject>,
}

/// An explanation found by meaning.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationSearchHitObject {
    /// Layer of the explained neuron.
    pub layer: u32,
    /// Its index within the layer.
    pub neuron: u32,
    /// Position of the explanation in the neuron's `explanations` list.
    pub explanation_index: u32,
    /// Cosine similarity of the explanation's embedding to the query's, from -1 to 1, computed on
    /// 8-bit quantised vectors (about three decimals).
    pub similarity: f32,
    /// The explanation's text.
    pub text: String,
    /// Its origin (`generated`, `openai`, ...).
    pub origin: String,
    /// Its author (the explainer model), when known.
    pub author: Option<String>,
    /// Its first `ev_correlation_score`, the value `min_score` filters on; null when it has none.
    pub score: Option<f32>,
    /// All its named scores, most important first.
    pub scores: Vec<ScoreObject>,
}

/// A named score.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreObject {
    /// Name.
    pub name: String,
    /// Value.
    pub value: f32,
}

/// `neuron2graph`: the graph, its DOT rendering and similar neurons (the original's shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct Neuron2GraphPage {
    /// The graph.
    pub graph: GraphObject,
    /// The graph as Graphviz DOT.
    pub graphviz: String,
    /// Similar neurons, most similar first.
    pub similar: Vec<SimilarNeuronObject>,
    /// How well the graph predicts the neuron; null for graphs without scores (imported) (new).
    pub scores: Option<GraphScoresObject>,
}

/// How a graph was scored: its predictions against the neuron's firing, token by token.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphScoresObject {
    /// The firing threshold, in normalised activation.
    pub threshold: f32,
    /// The activation normalised activations divide by (the neuron's recorded maximum).
    pub scale: f32,
    /// On the neuron's top examples kept out of building the graph.
    pub held_out_top: FiringCountsObject,
    /// On random examples of the recording.
    pub random: FiringCountsObject,
}

/// The graph's predictions on a set of texts against the neuron's firing.
#[derive(Debug, Serialize, ToSchema)]
pub struct FiringCountsObject {
    /// Texts evaluated.
    pub texts: u32,
    /// Tokens evaluated (BOS excluded).
    pub tokens: u64,
    /// Tokens on which the neuron fired (normalised activation at or above the threshold).
    pub firing: u64,
    /// Tokens on which the graph predicted firing.
    pub predicted: u64,
    /// Tokens on which both fired.
    pub true_positives: u64,
    /// `true_positives / predicted`; null when the graph predicted nothing.
    pub precision: Option<f64>,
    /// `true_positives / firing`; null when the neuron never fired.
    pub recall: Option<f64>,
    /// `2 · true_positives / (firing + predicted)`; null when neither fired.
    pub f1: Option<f64>,
}

/// A Neuron2Graph graph in the original's flattened form.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphObject {
    /// Start index of each depth in `graph`.
    pub subgraph_indices: Vec<u32>,
    /// Nodes, depth by depth.
    pub graph: Vec<GraphNodeObject>,
}

/// A graph node.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphNodeObject {
    /// Token.
    pub token: String,
    /// Indices of required preceding nodes.
    pub required: Vec<u32>,
    /// Importance in [0, 1].
    pub importance: f32,
    /// The token's id; null in graphs imported from the original's DOT files (new).
    pub token_id: Option<u32>,
    /// The neuron's normalised activation (÷ `scores.scale`) on this token where the builder saw it;
    /// null in imported graphs (new).
    pub activation: Option<f32>,
    /// Whether a pattern may end here (the original's bold outline) (new).
    pub is_end: bool,
}

/// `similar`: neighbours of a neuron.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarPage {
    /// Most similar first.
    pub similar: Vec<SimilarNeuronObject>,
}

/// `activating_tokens`: the tokens with the highest mean activation over the recorded dataset.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivatingTokensPage {
    /// Highest mean first.
    pub tokens: Vec<TokenMeanObject>,
}

/// A token with the neuron's mean activation on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenMeanObject {
    /// Token id.
    pub token_id: u32,
    /// Display string.
    pub token: String,
    /// Mean activation of the neuron over the token's occurrences.
    pub mean: f32,
    /// Occurrences of the token in the recorded dataset.
    pub count: u64,
}

/// `token-search`: the neurons that respond to a query's tokens, in their activating tokens or
/// their Neuron2Graph graph, most selective first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenSearchPage {
    /// The first term's token as looked up (trimmed and lower-cased, `·` read as a space, or with
    /// `match=exact` as typed, `·` read as a space); empty when the query has no terms.
    pub token: String,
    /// Neurons found in all; `neurons` holds `?limit=` of them from `?offset=`.
    pub total: u64,
    /// Highest score (`z`) first; neurons whose score is undefined last; ties by layer and index.
    pub neurons: Vec<TokenSearchHitObject>,
    /// The query as sent (new).
    pub query: String,
    /// `insensitive` or `exact` (new).
    #[serde(rename = "match")]
    pub match_mode: String,
    /// The terms read from the query, in order; every one must match (new).
    pub terms: Vec<SearchTermObject>,
    /// Neurons skipped before `neurons` (new).
    pub offset: u64,
}

/// A term of a search query.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchTermObject {
    /// `activating`, `important` or `any`.
    pub kind: String,
    /// The token as typed, quotes removed.
    pub token: String,
}

/// A neuron found by token search.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenSearchHitObject {
    /// Layer.
    pub layer: u32,
    /// Index within the layer.
    pub neuron: u32,
    /// The token mean of the term that sets the score: the neuron's recorded mean activation on the
    /// token, or for a graph-only match the node's normalised activation × the graph's scale; null
    /// when undefined (a graph without activations or scores).
    pub mean: Option<f32>,
    /// Occurrences of that token in the recorded dataset; null when its activating tokens do not list it.
    pub count: Option<u64>,
    /// The score: the smallest z over the terms, z = (token mean − neuron mean) / neuron standard
    /// deviation (BOS excluded); null when undefined (no stats, or no token mean) (new).
    pub z: Option<f32>,
    /// How the neuron matched each term, in the order of `terms` (new).
    pub matches: Vec<TermMatchObject>,
    /// The neuron's first explanation, null when it has none (new).
    pub explanation: Option<String>,
}

/// How a neuron matched one search term.
#[derive(Debug, Serialize, ToSchema)]
pub struct TermMatchObject {
    /// The token forms matched, as displayed (`·Paris` for a query `paris`).
    pub tokens: Vec<String>,
    /// Where: `activating_tokens` (its recorded highest-mean tokens), `graph_activating` (an
    /// activating node of its graph), `graph_context` (a context node).
    pub found_in: Vec<String>,
    /// Token mean of the best matched form; null when undefined.
    pub mean: Option<f32>,
    /// Occurrences of that form in the recorded dataset; null when not among the activating tokens.
    pub count: Option<u64>,
    /// z of the best matched form; null when undefined.
    pub z: Option<f32>,
}

/// `activations` at neuron level: the neuron's activation on each token of the text.
#[derive(Debug, Serialize, ToSchema)]
pub struct TextActivationsPage {
    /// The tokens run, BOS first when the model has one, each with the neuron's activation.
    pub tokens: Vec<TokenActivationObject>,
    /// Tokens cut off by the server's limit.
    pub tokens_cut: u64,
}

/// A token of a text with the neuron's activation on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenActivationObject {
    /// Token id.
    pub token_id: u32,
    /// Display string.
    pub token: String,
    /// The neuron's activation.
    pub activation: f32,
}

/// `activations` at model level: per token of the text, the neurons that fire most.
#[derive(Debug, Serialize, ToSchema)]
pub struct TextFiringPage {
    /// The tokens run, BOS first when the model has one.
    pub tokens: Vec<TokenFiringObject>,
    /// Tokens cut off by the server's limit.
    pub tokens_cut: u64,
}

/// A token of a text with the neurons that fire most on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenFiringObject {
    /// Token id.
    pub token_id: u32,
    /// Display string.
    pub token: String,
    /// Strongest first: by share of the recorded maximum where the layer summary is stored, then by value.
    pub neurons: Vec<FiringObject>,
}

/// A neuron firing on a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct FiringObject {
    /// Layer.
    pub layer: u32,
    /// Index within the layer.
    pub neuron: u32,
    /// Its activation on the token.
    pub activation: f32,
    /// The activation over the neuron's largest recorded activation, when known.
    pub relative: Option<f32>,
}

/// `input_tokens`: the input tokens whose embeddings drive the neuron most through the direct path.
#[derive(Debug, Serialize, ToSchema)]
pub struct InputTokensPage {
    /// Tokens that raise the neuron most, largest first.
    pub top: Vec<TokenValueObject>,
    /// Tokens that lower it most, most negative first.
    pub bottom: Vec<TokenValueObject>,
}

/// `connections`: the neuron's strongest weight connections to other layers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionsPage {
    /// Earlier-layer neurons that drive this one most, largest |weight| first.
    pub inputs: Vec<ConnectionObject>,
    /// Later-layer neurons this one drives most, largest |weight| first.
    pub outputs: Vec<ConnectionObject>,
}

/// A connection to another neuron.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionObject {
    /// Layer of the other neuron.
    pub layer: u32,
    /// Its index in the layer.
    pub neuron: u32,
    /// Signed strength: positive excites, negative inhibits.
    pub weight: f32,
}

/// The canonical error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorObject,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorObject {
    /// Stable machine-readable code (`unknown_model`, `bad_parameter`, `missing_data`, ...).
    pub code: String,
    /// HTTP status.
    pub status: u16,
    /// Human-readable message.
    pub message: String,
}

/// `/-/version`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionResponse {
    /// DeepDecipher version.
    pub version: String,
    /// Database schema version this build reads.
    pub schema_version: u32,
    /// Blob format version this build reads.
    pub format_version: u8,
}

/// `records`: a unit's stored records in the store's own encoding, for clients that decode them
/// with the same codec (the Python package's `Client`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordsPage {
    /// The newest blob format this server writes; each blob names its own version in its first byte.
    pub format_version: u8,
    /// The stored records of the unit, in kind order; kinds it has no record of are left out.
    pub records: Vec<RecordObject>,
}

/// One stored record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordObject {
    /// The kind's name (`examples`, `stats`; `summary` at layer level; `vocabulary` at model level).
    pub kind: String,
    /// The blob, base64 (standard alphabet, padded).
    pub data: String,
}
