//! Each neuron's place in the weight graph: the directed graph whose edges are the neurons' stored
//! connections (an earlier-layer neuron to a later-layer one, weighted by the virtual weight).
//!
//! - Degree and strength, in and out: edges and the sum of |weight| over them. A connection is an
//!   edge whichever end's list holds it (a neuron's outputs, or the other's inputs), once.
//! - Participation across layers (Guimerà and Amaral's coefficient with layers as modules):
//!   `1 − Σ_s (strength to layer s / strength)²`, 0 for a neuron whose weight all goes to one layer.
//! - Betweenness: Brandes's algorithm over hop distances from sampled sources (every node when
//!   there are few), scaled by `nodes / sources` and normalised by `(n − 1)(n − 2)`.
//! - The role from the strength's z-score within the layer and the participation against the
//!   model's own connector boundary, its 90th percentile ([`dd_data::Role::classify`],
//!   [`dd_data::CONNECTOR_SHARE`]).

use std::collections::{BTreeMap, VecDeque};

use dd_data::{NeuronConnections, NeuronIndex, NeuronRole, Role};
use rayon::prelude::*;

use crate::hash::mix;

/// The weight graph between a model's neurons, numbered across layers.
#[derive(Clone, Debug)]
pub struct WeightGraph {
    neurons_per_layer: u32,
    n_layers: u32,
    /// `(from, to, |weight|)`, sorted, one per pair.
    edges: Vec<(u32, u32, f32)>,
}

impl WeightGraph {
    /// The graph of these neurons' connections in a model of `n_layers × neurons_per_layer`;
    /// connections to neurons outside the model are ignored.
    pub fn from_connections<'a>(
        n_layers: u32,
        neurons_per_layer: u32,
        connections: impl IntoIterator<Item = (NeuronIndex, &'a NeuronConnections)>,
    ) -> Self {
        let global = |neuron: NeuronIndex| {
            (neuron.layer < n_layers && neuron.index < neurons_per_layer)
                .then(|| neuron.layer * neurons_per_layer + neuron.index)
        };
        let mut edges = BTreeMap::<(u32, u32), f32>::new();
        let mut add = |from: Option<u32>, to: Option<u32>, weight: f32| {
            if let (Some(from), Some(to)) = (from, to) {
                if from != to {
                    let entry = edges.entry((from, to)).or_insert(0.0);
                    *entry = entry.max(weight.abs());
                }
            }
        };
        for (neuron, lists) in connections {
            let this = global(neuron);
            for input in &lists.inputs {
                add(global(input.neuron), this, input.weight);
            }
            for output in &lists.outputs {
                add(this, global(output.neuron), output.weight);
            }
        }
        Self { neurons_per_layer, n_layers, edges: edges.into_iter().map(|((a, b), w)| (a, b, w)).collect() }
    }

    /// Nodes in the graph: every neuron of the model.
    pub fn nodes(&self) -> usize {
        (self.n_layers * self.neurons_per_layer) as usize
    }

    /// Edges in the graph.
    pub fn edges(&self) -> usize {
        self.edges.len()
    }

    fn layer(&self, node: u32) -> usize {
        (node / self.neurons_per_layer) as usize
    }
}

/// Betweenness from `sources` sampled source nodes (every node when the graph has no more).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleOptions {
    /// Sources of the betweenness estimate.
    pub betweenness_sources: usize,
}

impl Default for RoleOptions {
    /// 256 sources: a few seconds on SmolLM2's 46,080 neurons.
    fn default() -> Self {
        Self { betweenness_sources: 256 }
    }
}

/// Every neuron's role, numbered across layers, and the participation above which a non-hub is a
/// connector; `groups` gives each neuron's co-activating group (empty when there are none).
pub fn neuron_roles(graph: &WeightGraph, groups: &[Option<u32>], options: &RoleOptions) -> (Vec<NeuronRole>, f32) {
    let n = graph.nodes();
    let n_layers = graph.n_layers as usize;
    let mut in_degree = vec![0u32; n];
    let mut out_degree = vec![0u32; n];
    let mut in_strength = vec![0f64; n];
    let mut out_strength = vec![0f64; n];
    // Strength of each node's edges to each layer, for the participation.
    let mut by_layer = vec![0f64; n * n_layers];
    for &(from, to, weight) in &graph.edges {
        let (from_index, to_index, weight) = (from as usize, to as usize, f64::from(weight));
        out_degree[from_index] += 1;
        in_degree[to_index] += 1;
        out_strength[from_index] += weight;
        in_strength[to_index] += weight;
        by_layer[from_index * n_layers + graph.layer(to)] += weight;
        by_layer[to_index * n_layers + graph.layer(from)] += weight;
    }
    let strength: Vec<f64> = (0..n).map(|node| in_strength[node] + out_strength[node]).collect();
    let per_layer = graph.neurons_per_layer as usize;
    let layer_moments: Vec<(f64, f64)> = strength
        .chunks(per_layer.max(1))
        .map(|layer| {
            let mean = layer.iter().sum::<f64>() / layer.len() as f64;
            let variance = layer.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / layer.len() as f64;
            (mean, variance.sqrt())
        })
        .collect();
    let betweenness = betweenness(graph, options.betweenness_sources);
    let participation: Vec<f32> = (0..n)
        .map(|node| {
            if strength[node] > 0.0 {
                let shares = &by_layer[node * n_layers..(node + 1) * n_layers];
                (1.0 - shares.iter().map(|s| (s / strength[node]).powi(2)).sum::<f64>()).max(0.0) as f32
            } else {
                0.0
            }
        })
        .collect();
    let connector_participation = quantile(&participation, 1.0 - dd_data::CONNECTOR_SHARE);
    let roles = (0..n)
        .map(|node| {
            let (mean, std) = layer_moments[node / per_layer];
            let strength_z = if std > 0.0 { ((strength[node] - mean) / std) as f32 } else { 0.0 };
            let participation = participation[node];
            NeuronRole {
                in_degree: in_degree[node],
                out_degree: out_degree[node],
                in_strength: in_strength[node] as f32,
                out_strength: out_strength[node] as f32,
                strength_z,
                participation,
                betweenness: betweenness[node] as f32,
                role: Role::classify(strength_z, participation, connector_participation),
                group: groups.get(node).copied().flatten(),
            }
        })
        .collect();
    (roles, connector_participation)
}

/// The `q` quantile of `values`: the least value with a share `q` of them at or below it; 0 for none.
fn quantile(values: &[f32], q: f32) -> f32 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n => sorted[((n as f32 * q).ceil() as usize).clamp(1, n) - 1],
    }
}

/// Sampled-source Brandes betweenness over hop distances, normalised to [0, 1].
fn betweenness(graph: &WeightGraph, sources: usize) -> Vec<f64> {
    let n = graph.nodes();
    if n < 3 {
        return vec![0.0; n];
    }
    let mut offsets = vec![0usize; n + 1];
    for &(from, _, _) in &graph.edges {
        offsets[from as usize + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    // Edges are sorted by source, so their targets are already in compressed rows.
    let targets: Vec<u32> = graph.edges.iter().map(|&(_, to, _)| to).collect();
    let chosen: Vec<usize> = if sources >= n {
        (0..n).collect()
    } else {
        // The `sources` nodes of smallest hash: spread over the layers, the same every run.
        let mut ranked: Vec<(u64, usize)> = (0..n).map(|node| (mix(node as u64), node)).collect();
        ranked.sort_unstable();
        let mut chosen: Vec<usize> = ranked[..sources.max(1)].iter().map(|&(_, node)| node).collect();
        chosen.sort_unstable();
        chosen
    };
    let partial: Vec<Vec<f64>> = chosen
        .par_chunks(chosen.len().div_ceil(rayon::current_num_threads()).max(1))
        .map(|chunk| {
            let mut centrality = vec![0.0f64; n];
            let mut sigma = vec![0f64; n];
            let mut distance = vec![u32::MAX; n];
            let mut delta = vec![0f64; n];
            let mut order = Vec::with_capacity(n);
            let mut queue = VecDeque::new();
            for &source in chunk {
                order.clear();
                sigma[source] = 1.0;
                distance[source] = 0;
                queue.push_back(source);
                while let Some(node) = queue.pop_front() {
                    order.push(node);
                    for &next in &targets[offsets[node]..offsets[node + 1]] {
                        let next = next as usize;
                        if distance[next] == u32::MAX {
                            distance[next] = distance[node] + 1;
                            queue.push_back(next);
                        }
                        if distance[next] == distance[node] + 1 {
                            sigma[next] += sigma[node];
                        }
                    }
                }
                // Dependencies back from the farthest node: a predecessor is one hop closer.
                for &node in order.iter().rev() {
                    for &next in &targets[offsets[node]..offsets[node + 1]] {
                        let next = next as usize;
                        if distance[next] == distance[node] + 1 {
                            delta[node] += sigma[node] / sigma[next] * (1.0 + delta[next]);
                        }
                    }
                    if node != source {
                        centrality[node] += delta[node];
                    }
                }
                for &node in &order {
                    sigma[node] = 0.0;
                    distance[node] = u32::MAX;
                    delta[node] = 0.0;
                }
            }
            centrality
        })
        .collect();
    let scale = n as f64 / chosen.len() as f64 / ((n - 1) as f64 * (n - 2) as f64);
    (0..n).map(|node| partial.iter().map(|part| part[node]).sum::<f64>() * scale).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dd_data::Connection;

    fn connection(layer: u32, index: u32, weight: f32) -> Connection {
        Connection { neuron: NeuronIndex { layer, index }, weight }
    }

    /// Betweenness as the definition says, from every path of the (acyclic) graph enumerated: for
    /// each pair s, t, the share of its shortest paths that pass through v, summed.
    fn brute_force_betweenness(n: usize, edges: &[(u32, u32, f32)]) -> Vec<f64> {
        fn walk(node: usize, edges: &[(u32, u32, f32)], path: &mut Vec<usize>, all: &mut Vec<Vec<usize>>) {
            all.push(path.clone());
            for &(a, b, _) in edges {
                if a as usize == node {
                    path.push(b as usize);
                    walk(b as usize, edges, path, all);
                    path.pop();
                }
            }
        }
        let mut paths = Vec::new();
        for s in 0..n {
            walk(s, edges, &mut vec![s], &mut paths);
        }
        let mut total = vec![0.0; n];
        for s in 0..n {
            for t in 0..n {
                let between: Vec<&Vec<usize>> =
                    paths.iter().filter(|p| p.len() > 1 && p[0] == s && p[p.len() - 1] == t).collect();
                let Some(shortest) = between.iter().map(|p| p.len()).min() else { continue };
                let shortest: Vec<&&Vec<usize>> = between.iter().filter(|p| p.len() == shortest).collect();
                for (v, slot) in total.iter_mut().enumerate() {
                    let through = shortest.iter().filter(|p| p[1..p.len() - 1].contains(&v)).count();
                    *slot += through as f64 / shortest.len() as f64;
                }
            }
        }
        total.iter().map(|t| t / ((n - 1) as f64 * (n - 2) as f64)).collect()
    }

    #[test]
    fn degrees_strengths_participation_and_betweenness_match_brute_force() {
        // Three layers of three neurons; each lists a few connections, some from both ends.
        let mut lists = BTreeMap::<NeuronIndex, NeuronConnections>::new();
        let at = |layer, index| NeuronIndex { layer, index };
        lists.insert(
            at(0, 0),
            NeuronConnections { inputs: vec![], outputs: vec![connection(1, 0, 2.0), connection(2, 1, -1.0)] },
        );
        lists.insert(
            at(0, 1),
            NeuronConnections { inputs: vec![], outputs: vec![connection(1, 0, 0.5), connection(1, 2, 1.0)] },
        );
        lists.insert(
            at(1, 0),
            NeuronConnections { inputs: vec![connection(0, 0, 2.0)], outputs: vec![connection(2, 0, -3.0)] },
        );
        lists.insert(
            at(1, 2),
            NeuronConnections { inputs: vec![], outputs: vec![connection(2, 0, 1.0), connection(2, 2, 0.5)] },
        );
        lists.insert(
            at(2, 1),
            NeuronConnections { inputs: vec![connection(0, 0, -1.0), connection(1, 1, 4.0)], outputs: vec![] },
        );
        let graph = WeightGraph::from_connections(3, 3, lists.iter().map(|(&n, c)| (n, c)));
        // Edges as a person lists them: each pair once, whichever list holds it.
        let expected: Vec<(u32, u32, f32)> = vec![
            (0, 3, 2.0),
            (0, 7, 1.0),
            (1, 3, 0.5),
            (1, 5, 1.0),
            (3, 6, 3.0),
            (4, 7, 4.0),
            (5, 6, 1.0),
            (5, 8, 0.5),
        ];
        assert_eq!(graph.edges, expected);
        let (roles, _) = neuron_roles(&graph, &[], &RoleOptions { betweenness_sources: 1000 });
        for node in 0..9u32 {
            let incoming: Vec<&(u32, u32, f32)> = expected.iter().filter(|e| e.1 == node).collect();
            let outgoing: Vec<&(u32, u32, f32)> = expected.iter().filter(|e| e.0 == node).collect();
            let role = &roles[node as usize];
            assert_eq!(role.in_degree as usize, incoming.len(), "node {node}");
            assert_eq!(role.out_degree as usize, outgoing.len(), "node {node}");
            assert_eq!(role.in_strength, incoming.iter().map(|e| e.2).sum::<f32>());
            assert_eq!(role.out_strength, outgoing.iter().map(|e| e.2).sum::<f32>());
            let total: f32 = incoming.iter().chain(&outgoing).map(|e| e.2).sum();
            let share = |layer: u32| -> f32 {
                incoming.iter().filter(|e| e.0 / 3 == layer).map(|e| e.2).sum::<f32>()
                    + outgoing.iter().filter(|e| e.1 / 3 == layer).map(|e| e.2).sum::<f32>()
            };
            let participation =
                if total > 0.0 { 1.0 - (0..3).map(|l| (share(l) / total).powi(2)).sum::<f32>() } else { 0.0 };
            assert!(
                (role.participation - participation).abs() < 1e-6,
                "node {node}: {} vs {participation}",
                role.participation
            );
        }
        let exact = brute_force_betweenness(9, &expected);
        for (node, (role, want)) in roles.iter().zip(&exact).enumerate() {
            assert!((f64::from(role.betweenness) - want).abs() < 1e-7, "node {node}: {} vs {want}", role.betweenness);
        }
        // Node 3 is on 0→6 and on one of 1→6's two shortest paths; node 5 on the other and on 1→8.
        assert_eq!(exact[3], 1.5 / 56.0);
        assert_eq!(exact[5], 1.5 / 56.0);
        assert_eq!(exact[0], 0.0);
    }

    #[test]
    fn hubs_are_labelled_by_strength_within_their_layer() {
        // Layer 0 has 20 neurons; neuron 0 connects strongly to all of layer 1, the rest weakly.
        let mut lists = Vec::new();
        for index in 0..20u32 {
            let weight = if index == 0 { 10.0 } else { 0.1 };
            let outputs = (0..20).map(|to| connection(1, to, weight)).collect();
            lists.push((NeuronIndex { layer: 0, index }, NeuronConnections { inputs: vec![], outputs }));
        }
        let graph = WeightGraph::from_connections(2, 20, lists.iter().map(|(n, c)| (*n, c)));
        let (roles, boundary) = neuron_roles(&graph, &[Some(3)], &RoleOptions::default());
        // Every neuron's weight goes to one layer (participation 0): the 90th percentile is 0.
        assert_eq!(boundary, 0.0);
        assert_eq!(roles[0].role, Role::Hub);
        assert_eq!(roles[0].group, Some(3));
        assert!(roles[1..20].iter().all(|role| role.role == Role::Peripheral && role.group.is_none()));
        // Layer 1's neurons each hear from one layer: participation 0.
        assert!(roles[20..].iter().all(|role| role.participation == 0.0 && role.in_degree == 20));
    }
}
