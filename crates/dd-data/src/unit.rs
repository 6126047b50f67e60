//! How a unit (a neuron, or later an SAE feature) is addressed, and the data kinds stored per level.

/// A unit of analysis: (model, source, layer, index). The original's (model, layer, neuron) is source `mlp`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnitRef {
    /// Model name.
    pub model: String,
    /// Hook point name, `mlp` for MLP neurons.
    pub source: String,
    /// Layer index.
    pub layer: u32,
    /// Unit index within the layer.
    pub index: u32,
}

/// A unit within one model and source, as stored in lists of neighbours and rankings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeuronIndex {
    /// Layer index.
    pub layer: u32,
    /// Unit index within the layer.
    pub index: u32,
}

data_kinds! {
    /// Data stored per neuron.
    NeuronDataKind {
        /// Top, bottom, quantile-band and random example contexts.
        Examples = 1, "examples";
        /// Activation statistics and histogram.
        Stats = 2, "stats";
        /// Direct logit attribution.
        Logits = 3, "logits";
        /// Natural-language explanations with scores.
        Explanations = 4, "explanations";
        /// Neuron2Graph graph.
        Graph = 5, "graph";
        /// Similar neurons.
        Similar = 6, "similar";
        /// Tokens with the highest mean activation over the recorded dataset.
        ActivatingTokens = 7, "activating_tokens";
        /// Input tokens that drive the neuron most through the direct path, from weights.
        InputTokens = 8, "input_tokens";
        /// Strongest weight connections to earlier- and later-layer neurons.
        Connections = 9, "connections";
        /// The most correlated neurons of the whole model over a token sample.
        Correlations = 10, "correlations";
        /// A vector for the neuron's behaviour and its nearest neighbours.
        Embedding = 11, "embedding";
    }
}

data_kinds! {
    /// Data stored per layer.
    LayerDataKind {
        /// The layer's neurons ranked by interestingness.
        Ranking = 1, "ranking";
        /// Per-neuron summary numbers for the whole layer.
        Summary = 2, "summary";
        /// Every neuron's role in the weight graph.
        Roles = 3, "roles";
        /// Every neuron's change against a baseline recording.
        Changes = 4, "changes";
    }
}

data_kinds! {
    /// Data stored per model.
    ModelDataKind {
        /// Token id to display string.
        Vocabulary = 1, "vocabulary";
        /// The model's most interesting neurons.
        Ranking = 2, "ranking";
        /// Token to neurons index for Neuron2Graph search.
        TokenIndex = 3, "token_index";
        /// Groups of neurons that fire together.
        Groups = 4, "groups";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for kind in NeuronDataKind::ALL {
            assert_eq!(NeuronDataKind::from_code(kind.code()), Some(*kind));
        }
        for kind in LayerDataKind::ALL {
            assert_eq!(LayerDataKind::from_code(kind.code()), Some(*kind));
        }
        for kind in ModelDataKind::ALL {
            assert_eq!(ModelDataKind::from_code(kind.code()), Some(*kind));
        }
        for kind in NeuronDataKind::ALL {
            assert_eq!(NeuronDataKind::from_name(kind.name()), Some(*kind));
        }
        assert_eq!(LayerDataKind::from_name("summary"), Some(LayerDataKind::Summary));
        assert_eq!(ModelDataKind::from_name("examples"), None);
        assert_eq!(NeuronDataKind::from_code(0), None);
        assert_eq!(NeuronDataKind::from_code(200), None);
        // The server names missing data by kind name, so names must be unique too.
        let names: std::collections::HashSet<&str> = NeuronDataKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), NeuronDataKind::ALL.len());
    }
}
