//! The neuron store (spec §8): which normalised tokens each neuron's graph holds, as activating
//! tokens or as important context, and the model-wide token → neurons index built from them.
//!
//! The original fills its store from the prediction trie (every non-wildcard node, activating when
//! the node's own activation passed 0.5). We fill it from the stored [`NeuronGraph`], which is what
//! imported graphs have too: depth-0 nodes are the activating tokens, and a context node counts as
//! activating only when the builder recorded that it fired itself. Keys are [`normalise_token`]'s,
//! the rule the server's search applies to queries, so ` The` in a graph is found by `the`.

use std::collections::BTreeMap;

use dd_data::{NeuronGraph, NeuronIndex, TokenIndex, TokenIndexEntry, normalise_token};

/// The tokens of one neuron's graph as the neuron store files them (normalised keys, sorted, deduplicated).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct GraphTokens {
    /// Tokens the neuron fires on.
    pub activating: Vec<String>,
    /// Tokens that matter as context before a firing token.
    pub important: Vec<String>,
}

/// The cluster that holds a graph's depth-0 (activating) nodes; cluster 0 is the original's empty
/// root cluster.
pub const ACTIVATING_CLUSTER: usize = 1;

/// The original's marker tokens; its store skips them, and a graph imported from a trie view could
/// carry them.
const SPECIAL_TOKENS: [&str; 3] = ["**ROOT**", "**IGNORE**", "**END**"];

/// A graph's tokens: depth-0 nodes, and context nodes whose activation exceeds `threshold` (the original's "activator"), are activating; every other node is important context. A token both activating and important is listed in both.
pub fn graph_tokens(graph: &NeuronGraph, threshold: f32) -> GraphTokens {
    let clusters = graph.node_clusters();
    let mut tokens = GraphTokens::default();
    for (node, cluster) in graph.nodes.iter().zip(clusters) {
        if SPECIAL_TOKENS.contains(&node.token.as_str()) {
            continue;
        }
        let key = normalise_token(&node.token);
        let activator =
            cluster == Some(ACTIVATING_CLUSTER) || node.activation.is_some_and(|activation| activation > threshold);
        match activator {
            true => tokens.activating.push(key),
            false => tokens.important.push(key),
        }
    }
    for list in [&mut tokens.activating, &mut tokens.important] {
        list.sort_unstable();
        list.dedup();
    }
    tokens
}

/// Token → neurons over a model's graphs: the stored `TokenIndex` (entries sorted by token, neuron lists sorted).
///
/// Tokens are used as given (already normalised by [`graph_tokens`]); a neuron given twice is
/// listed once per token.
pub fn token_index(graphs: impl IntoIterator<Item = (NeuronIndex, GraphTokens)>) -> TokenIndex {
    let mut tokens: BTreeMap<String, (Vec<NeuronIndex>, Vec<NeuronIndex>)> = BTreeMap::new();
    for (neuron, graph) in graphs {
        for token in graph.activating {
            tokens.entry(token).or_default().0.push(neuron);
        }
        for token in graph.important {
            tokens.entry(token).or_default().1.push(neuron);
        }
    }
    let entries = tokens
        .into_iter()
        .map(|(token, (mut activating, mut important))| {
            for neurons in [&mut activating, &mut important] {
                neurons.sort_unstable();
                neurons.dedup();
            }
            TokenIndexEntry { token, activating, important }
        })
        .collect();
    TokenIndex { entries }
}

/// The inverse of [`token_index`]: every neuron the index names, sorted, with its tokens.
pub fn neuron_tokens(index: &TokenIndex) -> Vec<(NeuronIndex, GraphTokens)> {
    let mut neurons: BTreeMap<NeuronIndex, GraphTokens> = BTreeMap::new();
    for entry in &index.entries {
        for &neuron in &entry.activating {
            neurons.entry(neuron).or_default().activating.push(entry.token.clone());
        }
        for &neuron in &entry.important {
            neurons.entry(neuron).or_default().important.push(entry.token.clone());
        }
    }
    neurons
        .into_iter()
        .map(|(neuron, mut tokens)| {
            // Entries are sorted in valid indices; a hand-made index may not be.
            for list in [&mut tokens.activating, &mut tokens.important] {
                list.sort_unstable();
                list.dedup();
            }
            (neuron, tokens)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use dd_data::GraphNode;

    use super::*;

    fn node(token: &str, activation: Option<f32>) -> GraphNode {
        GraphNode { token: token.into(), token_id: None, required: vec![], importance: 0.5, activation, is_end: false }
    }

    fn strings(tokens: &[&str]) -> Vec<String> {
        tokens.iter().map(|t| t.to_string()).collect()
    }

    /// Depth 0 is activating whatever its activation; context is activating only above the threshold,
    /// and a token in both roles is listed in both.
    #[test]
    fn graph_tokens_splits_by_depth_and_activation() {
        let graph = NeuronGraph {
            subgraph_indices: vec![0, 0, 3, 7],
            nodes: vec![
                node(" The", Some(0.9)),
                node("the", Some(0.8)),
                node(" Paris", None),
                node(" of", Some(0.1)),
                node(" France", Some(0.7)),
                node("**IGNORE**", None),
                node(" paris", Some(0.2)),
                node("\n", None),
            ],
            scores: None,
        };
        let tokens = graph_tokens(&graph, 0.5);
        assert_eq!(tokens.activating, strings(&["france", "paris", "the"]));
        assert_eq!(tokens.important, strings(&["", "of", "paris"]));
        let strict = graph_tokens(&graph, 0.75);
        assert_eq!(strict.activating, strings(&["paris", "the"]));
        assert_eq!(strict.important, strings(&["", "france", "of", "paris"]));
    }

    /// Imported graphs carry odd `subgraph_indices`; every one gives an answer and no panic, and a node
    /// is activating exactly when the first range covering it is cluster 1.
    #[test]
    fn graph_tokens_survives_damaged_clusters() {
        let cases: [&[u32]; 7] =
            [&[], &[0], &[0, 3], &[2, 1, 99, u32::MAX, 0], &[5, 5, 5], &[0, 0, 1, 1, 2], &[u32::MAX, 0, 2]];
        let nodes: Vec<GraphNode> = (0..4).map(|i| node(&format!("t{i}"), None)).collect();
        for indices in cases {
            let graph = NeuronGraph { subgraph_indices: indices.to_vec(), nodes: nodes.clone(), scores: None };
            let tokens = graph_tokens(&graph, 0.5);
            let expected: Vec<String> = (0..nodes.len())
                .filter(|&i| {
                    let covering = (0..indices.len()).find(|&c| {
                        let start = indices[c] as usize;
                        let end = indices.get(c + 1).map_or(usize::MAX, |&e| e as usize);
                        start <= i && i < end
                    });
                    covering == Some(ACTIVATING_CLUSTER)
                })
                .map(|i| format!("t{i}"))
                .collect();
            assert_eq!(tokens.activating, expected, "{indices:?}");
            assert_eq!(tokens.activating.len() + tokens.important.len(), nodes.len(), "{indices:?}");
        }
    }

    /// The index against a brute-force scan of every graph, and back again.
    #[test]
    fn token_index_matches_brute_force_and_inverts() {
        let mut state = 7u64;
        let mut next = move |bound: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % bound
        };
        let mut graphs = Vec::new();
        for _ in 0..200 {
            let neuron = NeuronIndex { layer: next(4) as u32, index: next(30) as u32 };
            let pick = |n: u64, next: &mut dyn FnMut(u64) -> u64| -> Vec<String> {
                let set: BTreeSet<String> = (0..n).map(|_| format!("w{}", next(40))).collect();
                set.into_iter().collect()
            };
            let n_activating = next(4);
            let activating = pick(n_activating, &mut next);
            let n_important = next(8);
            let important = pick(n_important, &mut next);
            graphs.push((neuron, GraphTokens { activating, important }));
        }
        let index = token_index(graphs.clone());
        assert!(index.entries.windows(2).all(|w| w[0].token < w[1].token));
        for entry in &index.entries {
            let expected = |pick: fn(&GraphTokens) -> &Vec<String>| -> Vec<NeuronIndex> {
                let set: BTreeSet<NeuronIndex> =
                    graphs.iter().filter(|(_, g)| pick(g).contains(&entry.token)).map(|(n, _)| *n).collect();
                set.into_iter().collect()
            };
            assert_eq!(entry.activating, expected(|g| &g.activating), "{}", entry.token);
            assert_eq!(entry.important, expected(|g| &g.important), "{}", entry.token);
        }
        // A neuron given twice holds the union of its token sets.
        let mut merged: BTreeMap<NeuronIndex, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for (neuron, tokens) in &graphs {
            let slot = merged.entry(*neuron).or_default();
            slot.0.extend(tokens.activating.iter().cloned());
            slot.1.extend(tokens.important.iter().cloned());
        }
        merged.retain(|_, (a, i)| !(a.is_empty() && i.is_empty()));
        let inverse = neuron_tokens(&index);
        let expected: Vec<(NeuronIndex, GraphTokens)> = merged
            .into_iter()
            .map(|(n, (a, i))| {
                (n, GraphTokens { activating: a.into_iter().collect(), important: i.into_iter().collect() })
            })
            .collect();
        assert_eq!(inverse, expected);
        assert_eq!(token_index(inverse), index);
    }
}
