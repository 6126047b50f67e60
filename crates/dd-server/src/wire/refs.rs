//! References to other neurons, shared by every part of the wire types.

use serde::Serialize;
use utoipa::ToSchema;

/// A neuron's position.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq, PartialOrd, Ord)]
pub struct NeuronIndexObject {
    /// Layer.
    pub layer: u32,
    /// Index within the layer.
    pub neuron: u32,
}

/// A similar neuron.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarNeuronObject {
    /// Layer.
    pub layer: u32,
    /// Index in the layer.
    pub neuron: u32,
    /// Similarity in [0, 1].
    pub similarity: f32,
}
