//! The vocabulary of DeepDecipher: models, units (neurons), and every kind of
//! per-neuron, per-layer and per-model data, as plain Rust values with no IO.
//!
//! # Layout
//! - [`model`]: model metadata and provenance, and the hook points (sources) a model exposes.
//! - [`unit`]: how one neuron is addressed, and the data kinds stored per level.
//! - [`examples`], [`stats`], [`logits`], [`explanation`], [`graph`], [`similar`],
//!   [`activating_tokens`], [`input_tokens`], [`connections`]: neuron-level data.
//! - [`ranking`], [`summary`]: layer- and model-level records.
//! - [`relations`]: correlations, co-activating groups, roles in the weight graph, behaviour
//!   embeddings and change between recordings.
//! - [`vocab`], [`token_index`]: model-level token tables.
//! - [`n2g_label`]: how the original Neuron2Graph writes a token as a node label.
//! - [`time`]: timestamps as the store keeps them (RFC 3339, UTC); reading the clock is the one
//!   effect here.
//!
//! Types here are never `Serialize`: the store owns the binary encoding and the
//! server owns the JSON wire types, so neither format is tied to these structs.

#[macro_use]
mod macros {
    /// Generates an enum with stable one-byte codes (stored in the database) and stable names: the
    /// data kinds, and the coded values inside records (roles, embedding sources).
    macro_rules! data_kinds {
        ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal, $text:literal;)+ }) => {
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
            pub enum $name { $($(#[$vdoc])* $variant,)+ }

            impl $name {
                /// Every kind, in code order.
                pub const ALL: &'static [$name] = &[$($name::$variant,)+];

                /// The stable code stored in the database; never reuse a retired one.
                pub fn code(self) -> u8 {
                    match self { $($name::$variant => $code,)+ }
                }

                /// The kind with this code, if any.
                pub fn from_code(code: u8) -> Option<Self> {
                    match code { $($code => Some($name::$variant),)+ _ => None }
                }

                /// A stable lower-case name for logs and `info`.
                pub fn name(self) -> &'static str {
                    match self { $($name::$variant => $text,)+ }
                }

                /// The kind with this name, if any.
                pub fn from_name(name: &str) -> Option<Self> {
                    match name { $($text => Some($name::$variant),)+ _ => None }
                }
            }
        };
    }
}

pub mod activating_tokens;
pub mod connections;
pub mod error;
pub mod examples;
pub mod explanation;
pub mod graph;
pub mod input_tokens;
pub mod logits;
pub mod model;
pub mod n2g_label;
pub mod ranking;
pub mod records;
pub mod relations;
pub mod similar;
pub mod stats;
pub mod summary;
pub mod time;
pub mod token_index;
pub mod unit;
pub mod vocab;

pub use activating_tokens::{ActivatingTokens, TokenMean};
pub use connections::{Connection, NeuronConnections};
pub use error::DataError;
pub use examples::{Example, ExampleGroup, ExampleGroupKind, NeuronExamples};
pub use explanation::{Explanation, ExplanationProvenance, Explanations, NamedScore, SimulatedSequence, TextEmbedding};
pub use graph::{FiringCounts, GraphNode, GraphScores, NeuronGraph};
pub use input_tokens::InputTokens;
pub use logits::{LogitAttribution, TokenValue};
pub use model::{MAX_NAME_BYTES, MLP_SOURCE, ModelMetadata, Provenance, SourceInfo, validate_name};
pub use ranking::{
    INTERESTINGNESS_FORMULA, MODEL_RANKING_LEN, NeuronRanking, RankedNeuron, SELECTIVE_TOKENS, interestingness,
};
pub use records::{LayerRecord, ModelRecord, NeuronRecord};
pub use relations::{
    CHANGE_SCORE_FORMULA, CONNECTOR_SHARE, CorrelatedNeuron, EmbeddingSource, GROUP_FIRING_Z, GroupContext, HUB_Z,
    LayerChanges, LayerRoles, NeuronChange, NeuronCorrelations, NeuronEmbedding, NeuronGroup, NeuronGroups, NeuronRole,
    Role, change_score,
};
pub use similar::{SimilarNeuron, SimilarNeurons};
pub use stats::{HISTOGRAM_BINS, Histogram, NeuronStats, PositionStats};
pub use summary::{LayerSummary, NeuronSummary};
pub use token_index::{TokenIndex, TokenIndexEntry, normalise_token};
pub use unit::{LayerDataKind, ModelDataKind, NeuronDataKind, NeuronIndex, UnitRef};
pub use vocab::{Vocabulary, display_token};
