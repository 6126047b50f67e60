//! A Neuron2Graph graph: the token patterns that make a neuron fire, and how well they predict it.

use crate::DataError;

/// One node of a Neuron2Graph graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    /// The token (pattern element) this node matches, as the tokenizer decodes it (` the`, not `·the`).
    pub token: String,
    /// The token's id in the model's vocabulary; `None` in graphs imported from the original's DOT files.
    pub token_id: Option<u32>,
    /// Indices of the nodes that must precede this one (its edges towards earlier context).
    pub required: Vec<u32>,
    /// Importance in [0, 1]: for activating nodes (depth 0) their normalised activation as the
    /// original's colour encodes it, for context nodes how much masking them lowers the activation.
    pub importance: f32,
    /// The neuron's normalised activation (activation / the neuron's maximum) on this token where the
    /// builder saw it; `None` in imported graphs.
    pub activation: Option<f32>,
    /// Whether a pattern may end at this node (the original's bold outline).
    pub is_end: bool,
}

/// How a graph's predictions compare with the neuron on a set of texts, token by token, at the
/// firing threshold: counts, from which precision, recall and F1 of the firing class follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FiringCounts {
    /// Texts evaluated.
    pub texts: u32,
    /// Tokens evaluated (BOS excluded).
    pub tokens: u64,
    /// Tokens on which the neuron fired (normalised activation ≥ the threshold).
    pub firing: u64,
    /// Tokens on which the graph predicted firing.
    pub predicted: u64,
    /// Tokens on which both fired.
    pub true_positives: u64,
}

impl FiringCounts {
    /// Precision of the firing class; `None` when the graph predicted no firing token.
    pub fn precision(&self) -> Option<f64> {
        (self.predicted > 0).then(|| self.true_positives as f64 / self.predicted as f64)
    }

    /// Recall of the firing class; `None` when the neuron never fired.
    pub fn recall(&self) -> Option<f64> {
        (self.firing > 0).then(|| self.true_positives as f64 / self.firing as f64)
    }

    /// F1 of the firing class: `2·TP / (firing + predicted)`; `None` when neither the neuron nor the
    /// graph fired (nothing to score), 0 when one fired and they never agreed.
    pub fn f1(&self) -> Option<f64> {
        let denominator = self.firing + self.predicted;
        (denominator > 0).then(|| 2.0 * self.true_positives as f64 / denominator as f64)
    }

    /// Sums two sets of counts (micro-averaging).
    pub fn add(&self, other: &Self) -> Self {
        Self {
            texts: self.texts + other.texts,
            tokens: self.tokens + other.tokens,
            firing: self.firing + other.firing,
            predicted: self.predicted + other.predicted,
            true_positives: self.true_positives + other.true_positives,
        }
    }

    fn validate(&self) -> Result<(), DataError> {
        if self.true_positives > self.firing.min(self.predicted) || self.firing.max(self.predicted) > self.tokens {
            return Err(DataError::Invalid { what: "graph scores", why: "counts do not add up" });
        }
        Ok(())
    }
}

/// How a built graph was scored: on held-out top examples and on random examples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GraphScores {
    /// The firing threshold, in normalised activation (the original's 0.5).
    pub threshold: f32,
    /// The neuron's activation that normalised activations divide by (its recorded maximum).
    pub scale: f32,
    /// On the neuron's top examples kept out of training.
    pub held_out_top: FiringCounts,
    /// On the recording's uniform random examples.
    pub random: FiringCounts,
}

/// A Neuron2Graph graph in the original's flattened form: nodes in depth order and depth boundaries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NeuronGraph {
    /// Start index in `nodes` of each depth (cluster).
    pub subgraph_indices: Vec<u32>,
    /// The nodes, depth by depth.
    pub nodes: Vec<GraphNode>,
    /// How well the graph predicts the neuron; `None` for imported graphs.
    pub scores: Option<GraphScores>,
}

impl NeuronGraph {
    /// Each node's cluster (its depth in the original's layout: 0 the empty root cluster, 1 the
    /// activating tokens, 2.. the context): the first `subgraph_indices` range
    /// `[start, next start or end)` that covers it, `None` for a node no range covers. Ranges come
    /// from files and may overlap, run backwards or point past the end; all are clipped, so a
    /// damaged graph gets some answer rather than a panic.
    pub fn node_clusters(&self) -> Vec<Option<usize>> {
        let n_nodes = self.nodes.len();
        let mut clusters = vec![None; n_nodes];
        for (cluster, &start) in self.subgraph_indices.iter().enumerate() {
            let start = (start as usize).min(n_nodes);
            let end = self.subgraph_indices.get(cluster + 1).map_or(n_nodes, |&end| (end as usize).min(n_nodes));
            for slot in clusters.get_mut(start..end).unwrap_or_default() {
                slot.get_or_insert(cluster);
            }
        }
        clusters
    }

    /// Checks that every node reference points at a node and that numbers are finite and consistent.
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
            if node.activation.is_some_and(|a| !a.is_finite()) {
                return Err(DataError::NotFinite { what: "graph node activation" });
            }
        }
        if let Some(scores) = &self.scores {
            if !(scores.threshold.is_finite() && scores.scale.is_finite()) {
                return Err(DataError::NotFinite { what: "graph score threshold or scale" });
            }
            scores.held_out_top.validate()?;
            scores.random.validate()?;
        }
        Ok(())
    }
}
