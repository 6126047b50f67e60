//! A Neuron2Graph graph: the token patterns that make a neuron fire.

use crate::DataError;

/// One node of a Neuron2Graph graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    /// The token (pattern element) this node matches.
    pub token: String,
    /// Indices of the nodes that must precede this one.
    pub required: Vec<u32>,
    /// Importance in [0, 1].
    pub importance: f32,
}

/// A Neuron2Graph graph in the original's flattened form: nodes in depth order and depth boundaries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NeuronGraph {
    /// Start index in `nodes` of each depth (cluster).
    pub subgraph_indices: Vec<u32>,
    /// The nodes, depth by depth.
    pub nodes: Vec<GraphNode>,
}

impl NeuronGraph {
    /// Checks that every node reference points at a node.
    pub fn validate(&self) -> Result<(), DataError> {
        let n_nodes = self.nodes.len() as u64;
        for &start in &self.subgraph_indices {
            if u64::from(start) > n_nodes {
                return Err(DataError::IndexOutOfRange { what: "subgraph_indices", index: start.into(), len: n_nodes });
            }
        }
        for node in &self.nodes {
            if let Some(&bad) = node.required.iter().find(|&&r| u64::from(r) >= n_nodes) {
                return Err(DataError::IndexOutOfRange { what: "required", index: bad.into(), len: n_nodes });
            }
            if !node.importance.is_finite() {
                return Err(DataError::NotFinite { what: "importance" });
            }
        }
        Ok(())
    }
}
