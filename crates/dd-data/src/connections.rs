//! Weight-based connections: the neurons of other layers a neuron reads from and writes to most.

use crate::NeuronIndex;

/// A connection to another neuron of the same model and source, with its virtual weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Connection {
    /// The neuron at the other end.
    pub neuron: NeuronIndex,
    /// Strength of the connection, signed: positive excites, negative inhibits.
    pub weight: f32,
}

/// A neuron's strongest connections by weights alone, each list strongest (largest |weight|) first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NeuronConnections {
    /// Earlier-layer neurons that drive this neuron most.
    pub inputs: Vec<Connection>,
    /// Later-layer neurons this neuron drives most.
    pub outputs: Vec<Connection>,
}

impl NeuronConnections {
    /// Builds the lists from unsorted entries: largest |weight| first, ties by neuron, so the stored
    /// order is the same however a recorder collected them.
    pub fn from_unsorted(mut inputs: Vec<Connection>, mut outputs: Vec<Connection>) -> Self {
        sort_by_strength(&mut inputs);
        sort_by_strength(&mut outputs);
        Self { inputs, outputs }
    }
}

fn sort_by_strength(connections: &mut [Connection]) {
    connections.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()).then(a.neuron.cmp(&b.neuron)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_descending_magnitude_then_neuron() {
        let connection = |layer, index, weight| Connection { neuron: NeuronIndex { layer, index }, weight };
        let sorted = NeuronConnections::from_unsorted(
            vec![connection(0, 1, 0.5), connection(1, 0, -2.0), connection(0, 7, 2.0), connection(0, 3, 0.1)],
            vec![connection(5, 5, -0.25), connection(4, 0, 0.75)],
        );
        let inputs: Vec<(u32, u32, f32)> =
            sorted.inputs.iter().map(|c| (c.neuron.layer, c.neuron.index, c.weight)).collect();
        assert_eq!(inputs, vec![(0, 7, 2.0), (1, 0, -2.0), (0, 1, 0.5), (0, 3, 0.1)]);
        let outputs: Vec<f32> = sorted.outputs.iter().map(|c| c.weight).collect();
        assert_eq!(outputs, vec![0.75, -0.25]);
    }
}
