//! The `neuron2graph` page: a graph in the original's flattened form with what DeepDecipher adds
//! (token ids, activations, end flags, scores), its Graphviz DOT, and similar neurons.

use dd_data::{FiringCounts, NeuronGraph, SimilarNeurons};

use crate::wire;

/// The page of a graph and the neuron's similar neurons.
pub(crate) fn page(graph: NeuronGraph, similar: Vec<wire::SimilarNeuronObject>) -> wire::Neuron2GraphPage {
    wire::Neuron2GraphPage {
        graphviz: graphviz(&graph),
        scores: graph.scores.map(|scores| wire::GraphScoresObject {
            threshold: scores.threshold,
            scale: scores.scale,
            held_out_top: firing_counts(&scores.held_out_top),
            random: firing_counts(&scores.random),
        }),
        graph: graph_object(graph),
        similar,
    }
}

/// Similar neurons as the pages list them.
pub(crate) fn similar_objects(similar: &SimilarNeurons) -> Vec<wire::SimilarNeuronObject> {
    similar
        .neurons
        .iter()
        .map(|s| wire::SimilarNeuronObject { layer: s.layer, neuron: s.index, similarity: s.similarity })
        .collect()
}

fn firing_counts(counts: &FiringCounts) -> wire::FiringCountsObject {
    wire::FiringCountsObject {
        texts: counts.texts,
        tokens: counts.tokens,
        firing: counts.firing,
        predicted: counts.predicted,
        true_positives: counts.true_positives,
        precision: counts.precision(),
        recall: counts.recall(),
        f1: counts.f1(),
    }
}

fn graph_object(graph: NeuronGraph) -> wire::GraphObject {
    wire::GraphObject {
        subgraph_indices: graph.subgraph_indices,
        graph: graph
            .nodes
            .into_iter()
            .map(|n| wire::GraphNodeObject {
                token: n.token,
                required: n.required,
                importance: n.importance,
                token_id: n.token_id,
                activation: n.activation,
                is_end: n.is_end,
            })
            .collect(),
    }
}

/// Graphviz DOT of a graph, as the original served it: activating depths red, context depths blue,
/// fill strength from importance, edges from each node to the nodes it requires.
pub(crate) fn graphviz(graph: &NeuronGraph) -> String {
    use std::fmt::Write;
    let mut dot = String::from("digraph {\n  graph [rankdir=LR splines=spline ranksep=1.5 nodesep=0.2]\n");
    let n_nodes = graph.nodes.len() as u32;
    for (depth, &start) in graph.subgraph_indices.iter().enumerate() {
        let end = graph.subgraph_indices.get(depth + 1).copied().unwrap_or(n_nodes).min(n_nodes);
        let _ = writeln!(dot, "  subgraph cluster_{depth} {{");
        for id in start..end {
            let node = &graph.nodes[id as usize];
            let shade = (255.0 * (1.0 - node.importance.clamp(0.0, 1.0))).round() as u8;
            let fill =
                if depth <= 1 { format!("#ff{shade:02x}{shade:02x}") } else { format!("#{shade:02x}{shade:02x}ff") };
            let label = node.token.replace('\\', "\\\\").replace('"', "\\\"");
            // The original's bold outline: a pattern may stop at this node.
            let pen = if node.is_end { 7 } else { 3 };
            let _ = writeln!(
                dot,
                "    {id} [label=\"{label}\" fillcolor=\"{fill}\" shape=box style=\"filled,solid\" penwidth={pen}]"
            );
        }
        dot.push_str("  }\n");
    }
    for (id, node) in graph.nodes.iter().enumerate() {
        for required in &node.required {
            let _ = writeln!(dot, "  {required} -> {id}");
        }
    }
    dot.push_str("}\n");
    dot
}
