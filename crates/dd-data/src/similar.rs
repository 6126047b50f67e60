//! Neighbours of a neuron by some similarity measure.

/// A neighbouring neuron in the same model and source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimilarNeuron {
    /// Layer of the neighbour.
    pub layer: u32,
    /// Index of the neighbour within its layer.
    pub index: u32,
    /// Similarity in [0, 1], higher is more similar.
    pub similarity: f32,
}

/// A neuron's neighbours, most similar first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimilarNeurons {
    /// The neighbours.
    pub neurons: Vec<SimilarNeuron>,
}

impl SimilarNeurons {
    /// The list from unsorted neighbours: most similar first, ties kept in the given order.
    pub fn from_unsorted(mut neurons: Vec<SimilarNeuron>) -> Self {
        neurons.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        Self { neurons }
    }
}
